#!/usr/bin/env python
"""
Segment the persons of images with Pose2Seg, given their keypoints from a COCO keypoint results
file or from a Detectron2 keypoint model, and write one PNG per image (colored masks and
skeletons, the image's stem + ".png") into --output:

    python demo.py --config-file configs/synthetic/pose2seg_R_18_FPN_synthetic.yaml \\
        --input photos/ extra/*.jpg --output output/demo_images --keypoints results.json \\
        --opts MODEL.WEIGHTS output/demo/pose2seg/model_final.pth

    python demo.py --config-file ... --input ... --output ... \\
        --keypoint-config configs/synthetic/keypoint_rcnn_R_18_FPN_synthetic.yaml \\
        --keypoint-weights output/demo/keypoint_rcnn/model_final.pth --opts MODEL.WEIGHTS ...

A --keypoint-config of a BottomUpKeypoints model (configs/synthetic/bottom_up_R_18_FPN_synthetic.yaml)
is run as KEYPOINT_SOURCE "bottom_up"; add --opts MODEL.POSE2SEG.KEYPOINT_MODEL.SHARE_BACKBONE True
to run its head on Pose2Seg's own backbone features.

A results entry's image_id names its image by file stem: 000123.jpg is image_id 123 or "000123".
Exit status: 0 when every image was written, 1 when some image could not be read (the others
are written), 2 for bad arguments, a missing input, or an unusable keypoints file.
"""
import argparse
import glob
import logging
import os
import sys

import cv2

import pose2seg_d2  # noqa: F401  (registers the model)
from pose2seg_d2.config import load_config
from pose2seg_d2.data.builtin import person_metadata
from pose2seg_d2.engine import Pose2SegPredictor, WeightsUnavailableError
from pose2seg_d2.modeling import KeypointsFileError
from pose2seg_d2.modeling.keypoint_sources import image_keys

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

logger = logging.getLogger("pose2seg_d2.demo")


class DemoError(Exception):
    """A problem with the arguments or inputs; the message says which."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help="the Pose2Seg config")
    parser.add_argument("--input", nargs="+", required=True, help="image files, globs or folders")
    parser.add_argument("--output", required=True, help="folder for the PNGs")
    keypoints = parser.add_mutually_exclusive_group()
    keypoints.add_argument("--keypoints", help="a COCO keypoint results file (KEYPOINT_SOURCE json)")
    keypoints.add_argument(
        "--keypoint-config",
        help="a Detectron2 keypoint model config (KEYPOINT_SOURCE model; bottom_up for a BottomUpKeypoints one)",
    )
    parser.add_argument("--keypoint-weights", default="", help="that model's weights")
    parser.add_argument("--score-threshold", type=float, default=0.0, help="draw only masks scoring at least this")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides (KEY VALUE ...)")
    args = parser.parse_args(argv)
    if args.keypoint_weights and not args.keypoint_config:
        parser.error("--keypoint-weights needs --keypoint-config")
    return args


def expand_inputs(patterns):
    """
    Image paths of ``--input``: a folder gives its image files (sorted), a glob its matches
    (sorted), anything else is taken as a file.

    Raises:
        DemoError: a file that does not exist, a glob or folder without images, or two inputs
            that would write the same output PNG.
    """
    paths = []
    for pattern in patterns:
        if os.path.isdir(pattern):
            found = sorted(
                os.path.join(pattern, f) for f in os.listdir(pattern) if f.lower().endswith(IMAGE_EXTENSIONS)
            )
            if not found:
                raise DemoError(f"--input {pattern}: the folder holds no image ({', '.join(IMAGE_EXTENSIONS)})")
            paths += found
        elif glob.has_magic(pattern):
            found = sorted(p for p in glob.glob(os.path.expanduser(pattern)) if os.path.isfile(p))
            if not found:
                raise DemoError(f"--input {pattern}: no file matches")
            paths += found
        elif not os.path.isfile(pattern):
            raise DemoError(f"--input {pattern}: no such file")
        else:
            paths.append(pattern)
    outputs = {}
    for path in paths:
        name = output_name(path)
        if name in outputs and os.path.abspath(outputs[name]) != os.path.abspath(path):
            raise DemoError(f"--input {outputs[name]} and {path} would both be written to {name}")
        outputs[name] = path
    return list(dict.fromkeys(paths))


def output_name(path):
    return os.path.splitext(os.path.basename(path))[0] + ".png"


def is_bottom_up_config(path):
    """Whether the config file ``path`` (if it exists) is a BottomUpKeypoints model's."""
    return os.path.isfile(path) and load_config(path).MODEL.META_ARCHITECTURE == "BottomUpKeypoints"


def setup_cfg(args):
    opts = list(args.opts)
    if args.keypoints:
        opts += ["MODEL.POSE2SEG.KEYPOINT_SOURCE", "json", "MODEL.POSE2SEG.KEYPOINTS_FILE", args.keypoints]
    elif args.keypoint_config:
        source = "bottom_up" if is_bottom_up_config(args.keypoint_config) else "model"
        opts += ["MODEL.POSE2SEG.KEYPOINT_SOURCE", source, "MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE", args.keypoint_config]
        opts += ["MODEL.POSE2SEG.KEYPOINT_MODEL.WEIGHTS", args.keypoint_weights]
    if not os.path.isfile(args.config_file):
        raise DemoError(f"--config-file {args.config_file}: no such file")
    cfg = load_config(args.config_file, opts)
    if cfg.MODEL.POSE2SEG.KEYPOINT_SOURCE == "gt":
        raise DemoError(
            "Pose2Seg needs keypoints for images without annotations: give --keypoints results.json "
            "or --keypoint-config (and --keypoint-weights) of a Detectron2 keypoint model"
        )
    if not cfg.MODEL.WEIGHTS:
        logger.warning("MODEL.WEIGHTS is empty: Pose2Seg has random weights (give --opts MODEL.WEIGHTS ...)")
    cfg.freeze()
    return cfg


def draw(image_bgr, instances, score_threshold):
    """The image with the masks (each in its color) and the skeletons; (H, W, 3) uint8 BGR."""
    from detectron2.data import MetadataCatalog
    from detectron2.utils.visualizer import Visualizer

    metadata = MetadataCatalog.get("__pose2seg_demo")
    if not metadata.get("keypoint_names"):
        metadata.set(**person_metadata())
    instances = instances[instances.scores >= score_threshold]
    visualizer = Visualizer(image_bgr[:, :, ::-1], metadata, scale=1.0)
    out = visualizer.draw_instance_predictions(instances)
    drawn = out.get_image()[:, :, ::-1]
    if drawn.shape[:2] != image_bgr.shape[:2]:
        drawn = cv2.resize(drawn, (image_bgr.shape[1], image_bgr.shape[0]))
    return drawn


def run(args):
    """Returns the exit status."""
    paths = expand_inputs(args.input)
    cfg = setup_cfg(args)
    predictor = Pose2SegPredictor(cfg)
    source = predictor.model.keypoint_source
    os.makedirs(args.output, exist_ok=True)
    unreadable = []
    for path in paths:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            logger.error(f"{path}: cannot read the image (missing, empty or not an image format OpenCV reads)")
            unreadable.append(path)
            continue
        if hasattr(source, "entries") and source.entries({"file_name": path}) is None:
            logger.warning(
                f"{path}: {cfg.MODEL.POSE2SEG.KEYPOINTS_FILE} has no entries for image_id "
                f"{' or '.join(repr(k) for k in image_keys({'file_name': path}))}; writing it without masks"
            )
        instances = predictor(image, file_name=path)["instances"].to("cpu")
        out_path = os.path.join(args.output, output_name(path))
        cv2.imwrite(out_path, draw(image, instances, args.score_threshold))
        logger.info(f"{path}: {len(instances)} persons -> {out_path}")
    if unreadable:
        logger.error(f"{len(unreadable)} of {len(paths)} images could not be read: {', '.join(unreadable)}")
        return 1
    return 0


def main(argv=None):
    from detectron2.utils.logger import setup_logger

    setup_logger(name="pose2seg_d2")
    args = parse_args(argv)
    try:
        return run(args)
    except (DemoError, KeypointsFileError, FileNotFoundError, WeightsUnavailableError) as e:
        print(f"demo.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
