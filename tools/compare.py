#!/usr/bin/env python
"""
Pose2Seg against Mask R-CNN on one test set: trains both (or loads given weights), evaluates
mask AP overall and by MaxIoU bucket, times inference on the same images, and writes
results.md, results.json, a grid PNG per figure image and ap_by_max_iou.png into --output-dir.

    python tools/compare.py \\
        --pose2seg-config configs/synthetic/pose2seg_R_18_FPN_synthetic.yaml \\
        --mask-rcnn-config configs/synthetic/mask_rcnn_R_18_FPN_synthetic.yaml \\
        --dataset synthetic_occluded_test --output-dir output/demo

With --keypoint-config (a Detectron2 keypoint model, trained here unless --keypoint-weights),
a third row is Pose2Seg from images alone: the same Pose2Seg weights as the ground-truth row,
with the keypoint model run inside its forward pass (MODEL.POSE2SEG.KEYPOINT_SOURCE "model").
"""
import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from detectron2.data import DatasetCatalog  # noqa: E402
from detectron2.utils.logger import setup_logger  # noqa: E402

import pose2seg_d2  # noqa: E402, F401  (registers the model and the datasets)
from pose2seg_d2.config import load_config  # noqa: E402
from pose2seg_d2.evaluation.comparison import (  # noqa: E402
    ModelRun,
    describe_config,
    run_model,
    train_keypoint_model,
    write_figures,
    write_results,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pose2seg-config", required=True)
    parser.add_argument("--mask-rcnn-config", required=True)
    parser.add_argument("--dataset", required=True, help="a registered test dataset")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--pose2seg-weights", default="", help="skip training Pose2Seg; load these")
    parser.add_argument("--mask-rcnn-weights", default="", help="skip training Mask R-CNN; load these")
    parser.add_argument("--keypoint-config", default="", help="a keypoint model: adds the predicted-keypoints row")
    parser.add_argument("--keypoint-weights", default="", help="skip training the keypoint model; load these")
    parser.add_argument("--keypoint-max-iter", type=int, default=0, help="override its SOLVER.MAX_ITER (0: keep)")
    parser.add_argument("--max-iter", type=int, default=0, help="override SOLVER.MAX_ITER of both (0: keep)")
    parser.add_argument("--timing-images", type=int, default=50, help="images timed per model")
    parser.add_argument("--num-figures", type=int, default=4, help="test images drawn in grids")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides for both models")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    setup_logger(output=os.path.join(args.output_dir, "log.txt"))
    setup_logger(output=os.path.join(args.output_dir, "log.txt"), name="pose2seg_d2")
    logger = logging.getLogger("pose2seg_d2")

    num_images = len(DatasetCatalog.get(args.dataset))
    figures = list(range(min(args.num_figures, num_images)))
    plans = [  # in the order of the figure panels
        ("mask_rcnn", None, "Mask R-CNN", args.mask_rcnn_config, args.mask_rcnn_weights),
        ("pose2seg", "gt", "Pose2Seg (GT keypoints)", args.pose2seg_config, args.pose2seg_weights),
    ]
    runs = []
    for model, keypoints, label, config_file, weights in plans:
        cfg = _config(args, config_file, model, args.max_iter)
        logger.info(f"==> {label}: {'loading ' + weights if weights else 'training'} ({config_file})")
        runs.append(_evaluate(args, cfg, model, keypoints, label, weights, figures))

    note = ""
    if args.keypoint_config:
        keypoint_cfg = _config(args, args.keypoint_config, "keypoint_model", args.keypoint_max_iter)
        logger.info(f"==> keypoint model: {'loading ' + args.keypoint_weights if args.keypoint_weights else 'training'}")
        keypoints = train_keypoint_model(keypoint_cfg, args.dataset, args.keypoint_weights or None)
        # the keypoint model as trained, with --opts applied, for Pose2Seg to rebuild it
        keypoint_config = os.path.join(keypoint_cfg.OUTPUT_DIR, "config.yaml")
        with open(keypoint_config, "w") as f:
            f.write(keypoint_cfg.dump())
        pose2seg_weights = args.pose2seg_weights or os.path.join(args.output_dir, "pose2seg", "model_final.pth")
        source = [
            "MODEL.POSE2SEG.KEYPOINT_SOURCE", "model",
            "MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE", keypoint_config,
            "MODEL.POSE2SEG.KEYPOINT_MODEL.WEIGHTS", keypoints["weights"],
        ]  # fmt: skip
        cfg = _config(args, args.pose2seg_config, "pose2seg_predicted", args.max_iter, source)
        label = "Pose2Seg (predicted keypoints)"
        logger.info(f"==> {label}: {pose2seg_weights} with the keypoint model")
        run = _evaluate(args, cfg, "pose2seg", "predicted", label, pose2seg_weights, figures)
        run.train_iters, run.train_seconds = keypoints["iters"], keypoints["seconds"]
        runs.append(run)
        ap = keypoints["keypoint_AP"]
        note = (
            f"The predicted-keypoints row uses the ground-truth row's Pose2Seg weights ({pose2seg_weights}) "
            f"with the keypoint model {describe_keypoint_model(keypoint_cfg)} run inside the forward pass "
            f"(its time per image is included); its train columns are the keypoint model's. The keypoint "
            f"model's keypoint AP on `{args.dataset}`: {'-' if ap is None else f'{ap:.1f}'} (COCO OKS)."
        )

    table = write_results(args.output_dir, args.dataset, runs, settings_note=note)
    grids, plot = write_figures(args.output_dir, args.dataset, runs, figures)
    print(table)
    print(f"Results: {os.path.join(args.output_dir, 'results.md')} and results.json")
    print(f"Figures: {plot} and {len(grids)} grids ({', '.join(os.path.basename(g) for g in grids)})")
    return runs


def _config(args, config_file, output_name, max_iter=0, extra_opts=()):
    """``config_file`` with --opts, then OUTPUT_DIR under --output-dir, ``extra_opts`` and MAX_ITER (0: keep)."""
    opts = list(args.opts) + ["OUTPUT_DIR", os.path.join(args.output_dir, output_name), *extra_opts]
    if max_iter:
        opts += ["SOLVER.MAX_ITER", max_iter]
    return load_config(config_file, opts)


def _evaluate(args, cfg, model, keypoints, label, weights, figures):
    """One row: train (unless ``weights``) and evaluate ``cfg`` on --dataset."""
    run = ModelRun(model=model, keypoints=keypoints, label=label, config=describe_config(cfg))
    run.config["iterations"] = cfg.SOLVER.MAX_ITER
    run_model(run, cfg, args.dataset, weights or None, args.timing_images, figures)
    return run


def describe_keypoint_model(cfg):
    return (
        f"{cfg.MODEL.META_ARCHITECTURE} R-{cfg.MODEL.RESNETS.DEPTH}-FPN, short side {cfg.INPUT.MIN_SIZE_TEST}, "
        f"{cfg.SOLVER.MAX_ITER} iterations at batch {cfg.SOLVER.IMS_PER_BATCH} on {', '.join(cfg.DATASETS.TRAIN)}"
    )


if __name__ == "__main__":
    main()
