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

A video goes through the same way, frame by frame, into a video of the same frame rate and size
(--output a .mp4, .avi or .mkv file, or a folder: the video's stem + ".mp4"); --webcam shows the
webcam's frames drawn in a window (Esc or q ends it) and writes them to --output if given:

    python demo.py --config-file ... --video-input street.mp4 --output output/demo_videos \\
        --keypoint-config ... --keypoint-weights ... --opts MODEL.WEIGHTS ...

A results entry's image_id names its image by file stem: 000123.jpg is image_id 123 or "000123";
a video frame by its index, from 0. Persons scoring below --confidence-threshold are not drawn.
Exit status: 0 when every image or frame was written, 1 when some image could not be read (the
others are written) or a video frame could not be decoded (the video ends there), 2 for bad
arguments, a missing input or video, or an unusable keypoints file.
"""
import argparse
import glob
import logging
import os
import sys

import cv2

import pose2seg_d2  # noqa: F401  (registers the model)
from pose2seg_d2.config import load_config
from pose2seg_d2.engine import Pose2SegPredictor, WeightsUnavailableError
from pose2seg_d2.modeling import KeypointsFileError
from pose2seg_d2.modeling.keypoint_sources import image_keys
from pose2seg_d2.visualization import (
    CONFIDENCE_THRESHOLD,
    DEFAULT_FPS,
    FrameDecodeError,
    PersonColors,
    VideoError,
    VideoSink,
    draw_persons,
    open_video,
    palette_colors,
    read_frames,
    score_labels,
    video_output_path,
)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

logger = logging.getLogger("pose2seg_d2.demo")

WEBCAM_WINDOW = "pose2seg_d2 webcam (Esc or q: quit)"


class DemoError(Exception):
    """A problem with the arguments or inputs; the message says which."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help="the Pose2Seg config")
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--input", nargs="+", help="image files, globs or folders")
    inputs.add_argument("--video-input", help="a video file")
    inputs.add_argument("--webcam", action="store_true", help="the webcam (device 0)")
    parser.add_argument(
        "--output", help="folder for the PNGs; for a video, a .mp4/.avi/.mkv file or a folder (optional with --webcam)"
    )
    keypoints = parser.add_mutually_exclusive_group()
    keypoints.add_argument("--keypoints", help="a COCO keypoint results file (KEYPOINT_SOURCE json)")
    keypoints.add_argument(
        "--keypoint-config",
        help="a Detectron2 keypoint model config (KEYPOINT_SOURCE model; bottom_up for a BottomUpKeypoints one)",
    )
    parser.add_argument("--keypoint-weights", default="", help="that model's weights")
    parser.add_argument(
        "--confidence-threshold", type=float, default=CONFIDENCE_THRESHOLD,
        help=f"draw only the persons scoring at least this (default {CONFIDENCE_THRESHOLD})",
    )  # fmt: skip
    parser.add_argument("--score-threshold", type=float, help="deprecated: --confidence-threshold")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides (KEY VALUE ...)")
    args = parser.parse_args(argv)
    if args.keypoint_weights and not args.keypoint_config:
        parser.error("--keypoint-weights needs --keypoint-config")
    if args.output is None and not args.webcam:
        parser.error("--output is required (with --input or --video-input)")
    if args.score_threshold is not None:
        logger.warning("--score-threshold is deprecated: use --confidence-threshold")
        args.confidence_threshold = args.score_threshold
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


def draw(image_bgr, instances, score_threshold, colors=None):
    """
    The image with the persons scoring at least ``score_threshold``: their masks (each in its
    color), skeletons and scores; (H, W, 3) uint8 BGR. ``colors``: a :class:`PersonColors` that
    gives the persons their colors (a video's, from frame to frame); None: the palette's, in
    score order.
    """
    kept = instances[instances.scores >= score_threshold]
    if colors is not None:
        indices = colors(kept.pred_keypoints, kept.pred_masks.flatten(1).sum(1))
    else:
        indices = range(len(kept))
    drawn = draw_persons(
        image_bgr[:, :, ::-1],
        palette_colors(indices),
        masks=kept.pred_masks.numpy() if kept.has("pred_masks") else None,
        keypoints=kept.pred_keypoints.numpy() if kept.has("pred_keypoints") else None,
        labels=score_labels(kept.scores) if kept.has("pred_boxes") else None,
        label_boxes=kept.pred_boxes.tensor.numpy() if kept.has("pred_boxes") else None,
    )
    return drawn[:, :, ::-1]


def run(args):
    """Returns the exit status."""
    if args.video_input or args.webcam:
        return run_video(args)
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
        cv2.imwrite(out_path, draw(image, instances, args.confidence_threshold))
        logger.info(f"{path}: {len(instances)} persons -> {out_path}")
    if unreadable:
        logger.error(f"{len(unreadable)} of {len(paths)} images could not be read: {', '.join(unreadable)}")
        return 1
    return 0


def run_video(args):
    """--video-input or --webcam; returns the exit status."""
    if args.webcam:
        capture, frame_count = cv2.VideoCapture(0), None
        if not capture.isOpened():
            raise DemoError("--webcam: cannot open the webcam (device 0)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        fps = fps if fps and fps > 0 else None
        name = "the webcam"
        show = _has_window()
        if not show and not args.output:
            raise DemoError("--webcam: this OpenCV cannot show a window (opencv-python-headless); give --output")
        out_path = video_output_path(args.output, "webcam") if args.output else None
    else:
        out_path = video_output_path(args.output, args.video_input)  # a bad --output before the video is read
        capture, fps, frame_count = open_video(args.video_input)
        name, show = args.video_input, False
    try:
        cfg = setup_cfg(args)
        predictor = Pose2SegPredictor(cfg)
        if fps is None:
            fps = DEFAULT_FPS
            if out_path:
                logger.warning(f"{name} does not tell its frame rate; writing {out_path} at {fps:g} frames per second")
        sink = VideoSink(out_path, fps) if out_path else None
        try:
            frames = read_frames(capture, frame_count)
            return segment_video(predictor, frames, sink, args.confidence_threshold, name, frame_count, show)
        finally:
            if sink is not None:
                sink.close()
            if show:
                cv2.destroyWindow(WEBCAM_WINDOW)
    finally:
        capture.release()


def _has_window():
    try:
        cv2.namedWindow(WEBCAM_WINDOW)
    except cv2.error:
        return False
    return True


def segment_video(predictor, frames, sink, score_threshold, name, frame_count=None, show=False):
    """
    Segment and draw ``frames`` one at a time, each person in its color from frame to frame
    (:class:`PersonColors`), and write them to ``sink`` (a :class:`VideoSink`, or None) and the
    webcam window (``show``). A frame the keypoints file has no entries for (image_id = the
    frame's index) is written without masks; those frames are counted in a warning.

    Args:
        frames (iterable): (H, W, 3) uint8 BGR frames; a :class:`FrameDecodeError` from it ends
            the video there.
        name (str): the video, for the messages.

    Returns:
        int: the exit status, 0, or 1 when a frame could not be decoded.
    """
    from tqdm import tqdm

    source = predictor.model.keypoint_source
    colors = PersonColors()
    without_entries = []
    status = 0
    bar = tqdm(total=frame_count and int(frame_count), unit="frame", desc=os.path.basename(name), dynamic_ncols=True)
    try:
        for index, frame in enumerate(frames):
            if hasattr(source, "entries") and source.entries({"image_id": index}) is None:
                without_entries.append(index)
            instances = predictor(frame, image_id=index)["instances"].to("cpu")
            drawn = draw(frame, instances, score_threshold, colors)
            if sink is not None:
                sink.write(drawn)
            bar.update(1)
            if show:
                cv2.imshow(WEBCAM_WINDOW, drawn)
                if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                    break
    except FrameDecodeError as e:
        if bar.n == 0:
            raise VideoError(f"{name}: no frame could be decoded ({e})") from e
        logger.error(f"{name}: {e}; the video ends there, after {bar.n} frames")
        status = 1
    except KeyboardInterrupt:
        logger.info(f"{name}: interrupted")
    finally:
        bar.close()
    if bar.n == 0:
        raise VideoError(f"{name}: no frame could be decoded")
    if without_entries:
        shown = ", ".join(map(str, without_entries[:10])) + (", ..." if len(without_entries) > 10 else "")
        logger.warning(
            f"{name}: {len(without_entries)} of {bar.n} frames have no entries in "
            f"{predictor.cfg.MODEL.POSE2SEG.KEYPOINTS_FILE} (image_id = frame index: {shown}); written without masks"
        )
    if sink is not None:
        logger.info(f"{name}: {sink.frames_written} frames -> {sink.path}")
    return status


def main(argv=None):
    from detectron2.utils.logger import setup_logger

    setup_logger(name="pose2seg_d2")
    args = parse_args(argv)
    try:
        return run(args)
    except (DemoError, VideoError, KeypointsFileError, FileNotFoundError, WeightsUnavailableError) as e:
        print(f"demo.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
