#!/usr/bin/env python
"""
Export a Pose2Seg model (any Pose2Seg config, the release's included) as one graph from an image
and its persons' keypoints to their masks and scores, as a torch.export ExportedProgram (.pt2)
or an ONNX model (.onnx):

    python tools/deploy/export_model.py --config-file configs/pose2seg_R_50_FPN_release.yaml \\
        --format onnx --output output/export MODEL.WEIGHTS pose2seg_release.pth

writes ``OUTPUT/model.pt2`` or ``OUTPUT/model.onnx`` and ``OUTPUT/model.json`` (the inputs and
outputs, what the caller does outside the graph: the input format, the test-time resize), then
runs the file on a sample image (--sample-image, else a noise image at the config's test size)
with --persons random persons beside the eager model and prints how well they agree and their
times. The graph and what stays outside it: README.md, "Export".

Exit status: 0 when written (and the check agrees: every mask IoU >= 0.99, scores within 1e-4),
1 when the check disagrees, 2 for bad arguments, a missing file or a model that is not Pose2Seg.
"""
import argparse
import json
import logging
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import torch  # noqa: E402

logger = logging.getLogger("pose2seg_d2.export_model")

MIN_IOU, MAX_SCORE_DIFFERENCE = 0.99, 1e-4


class ExportError(Exception):
    """A problem with the arguments or the model; the message says which."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help="the model's config")
    parser.add_argument("--format", required=True, choices=("pt2", "onnx"), help="the file written")
    parser.add_argument("--output", required=True, help="the folder written to")
    parser.add_argument("--sample-image", help="an image to trace and check with (default: noise at the test size)")
    parser.add_argument("--persons", type=int, default=3, help="random persons of the check (default 3)")
    parser.add_argument("--no-check", action="store_true", help="do not run the file beside the eager model")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="config overrides (KEY VALUE ...)")
    return parser.parse_args(argv)


def build_eval_model(cfg):
    """The config's model with MODEL.WEIGHTS loaded, in eval mode."""
    from detectron2.modeling import build_model

    from pose2seg_d2.engine import AtomicDetectionCheckpointer, check_weights_available
    from pose2seg_d2.modeling import Pose2Seg

    if cfg.MODEL.WEIGHTS:
        check_weights_available(cfg.MODEL.WEIGHTS)
    model = build_model(cfg)
    if not isinstance(model, Pose2Seg):
        raise ExportError(
            f"MODEL.META_ARCHITECTURE {cfg.MODEL.META_ARCHITECTURE!r} is not Pose2Seg: only Pose2Seg and "
            "ReleasePose2Seg export"
        )
    if cfg.MODEL.WEIGHTS:
        AtomicDetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    else:
        logger.warning("MODEL.WEIGHTS is empty: exporting random weights")
    return model.eval()


def resize_of(cfg):
    """The test-time resize the caller applies before the graph (Detectron2's
    ResizeShortestEdge, as Pose2SegPredictor does), or None where there is none."""
    if cfg.INPUT.MIN_SIZE_TEST == 0:
        return None
    return {"min_size_test": cfg.INPUT.MIN_SIZE_TEST, "max_size_test": cfg.INPUT.MAX_SIZE_TEST}


def sample_image(cfg, path):
    """(3, H, W) float32 in INPUT.FORMAT, resized as the predictor resizes; None without a path."""
    if path is None:
        return None
    import cv2
    import detectron2.data.transforms as T

    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ExportError(f"--sample-image {path}: cannot be read as an image")
    if cfg.INPUT.FORMAT == "RGB":
        image = image[:, :, ::-1]
    resize = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    image = resize.get_transform(image).apply_image(image)
    return torch.as_tensor(image.astype("float32").transpose(2, 0, 1).copy())


def check_image_size(cfg):
    """(H, W) of a 4:3 image at the config's test size (640 x 480 without a resize)."""
    short = cfg.INPUT.MIN_SIZE_TEST or 480
    long = min(round(short * 4 / 3), cfg.INPUT.MAX_SIZE_TEST or short * 2)
    return short, long


def describe(model, cfg, args, path):
    from pose2seg_d2.export import min_image_side

    side = min_image_side(model)
    return {
        "format": args.format,
        "file": os.path.basename(path),
        "config_file": args.config_file,
        "weights": cfg.MODEL.WEIGHTS,
        "meta_architecture": cfg.MODEL.META_ARCHITECTURE,
        "input_format": cfg.INPUT.FORMAT,
        "resize": resize_of(cfg),
        "inputs": {
            "image": {"shape": [3, "H", "W"], "dtype": "float32", "min_side": side,
                      "values": f"pixel values 0-255 in {cfg.INPUT.FORMAT} order, after the resize"},
            "keypoints": {"shape": ["N", 17, 3], "dtype": "float32",
                          "values": "(x, y, v) in the image's continuous coordinates (COCO's + 0.5); v > 0 labeled"},
        },  # fmt: skip
        "outputs": {
            "masks": {"shape": ["N", "H", "W"], "dtype": "bool"},
            "scores": {"shape": ["N"], "dtype": "float32",
                       "values": f"MODEL.POSE2SEG.SCORE {model.score!r} with person scores 1, in the persons' order"},
        },  # fmt: skip
        "mask_threshold": model.mask_threshold,
    }


def timed(function, *args):
    start = time.perf_counter()
    with torch.no_grad():
        out = function(*args)
    return out, 1000 * (time.perf_counter() - start)


def check(model, path, fmt, image, keypoints):
    """Run the written file and the eager model on one image; returns the check's record."""
    from pose2seg_d2.export import load_onnx, load_pt2
    from pose2seg_d2.export.compare import agreement, eager_outputs

    run = load_pt2(path) if fmt == "pt2" else load_onnx(path)
    expected, eager_ms = timed(eager_outputs, model, image, keypoints)
    actual, exported_ms = timed(run, image, keypoints)
    iou, difference = agreement(expected, actual)
    return {
        "image_size": list(image.shape[-2:]),
        "persons": len(keypoints),
        "min_iou": float(iou.min()) if len(iou) else None,
        "max_score_difference": float(difference.max()) if len(difference) else None,
        "eager_ms": round(eager_ms, 1),
        "exported_ms": round(exported_ms, 1),
    }


def export(args):
    import pose2seg_d2  # noqa: F401  (registers the models)
    from pose2seg_d2.config import load_config
    from pose2seg_d2.engine import WeightsUnavailableError
    from pose2seg_d2.export import example_inputs, export_program, save_onnx, save_pt2

    if not os.path.isfile(args.config_file):
        raise ExportError(f"--config-file {args.config_file}: no such file")
    if args.persons < 0:
        raise ExportError(f"--persons must be >= 0, got {args.persons}")
    cfg = load_config(args.config_file, args.opts)
    try:
        model = build_eval_model(cfg)
    except WeightsUnavailableError as e:
        raise ExportError(str(e)) from e
    image = sample_image(cfg, args.sample_image)
    size = tuple(image.shape[-2:]) if image is not None else check_image_size(cfg)
    noise, keypoints = example_inputs(model, size, num_persons=max(args.persons, 2))
    image = noise if image is None else image.to(model.device)

    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, f"model.{args.format}")
    start = time.perf_counter()
    program = export_program(model, (image, keypoints))  # two persons at least: see example_inputs
    (save_pt2 if args.format == "pt2" else save_onnx)(program, path)
    logger.info(f"Wrote {path} in {time.perf_counter() - start:.0f} s")
    info = describe(model, cfg, args, path)
    if not args.no_check:
        info["check"] = check(model, path, args.format, image, keypoints[: args.persons])
    with open(os.path.join(args.output, "model.json"), "w") as f:
        json.dump(info, f, indent=1)
    return path, info


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    try:
        path, info = export(args)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = info.get("check")
    if report is None:
        print(f"{path}: written, not checked")
        return 0
    print(
        f"{path}: {report['persons']} persons on a {report['image_size'][0]}x{report['image_size'][1]} image: "
        f"mask IoU with the eager model {report['min_iou']} at least, scores within "
        f"{report['max_score_difference']}; eager {report['eager_ms']} ms, exported {report['exported_ms']} ms"
    )
    agrees = report["persons"] == 0 or (
        report["min_iou"] >= MIN_IOU and report["max_score_difference"] <= MAX_SCORE_DIFFERENCE
    )
    if not agrees:
        print(f"error: {path} disagrees with the eager model (IoU >= {MIN_IOU}, scores within {MAX_SCORE_DIFFERENCE})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
