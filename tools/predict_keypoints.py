#!/usr/bin/env python
"""
Run a keypoint model over a registered dataset and write its COCO keypoint results file (a JSON
list of image_id, category_id 1, keypoints as 51 numbers x, y, confidence in pixel-index
coordinates, score), the file MODEL.POSE2SEG.KEYPOINTS_FILE (inference) and
MODEL.POSE2SEG.TRAIN_KEYPOINTS_FILE (training) read.

Any Detectron2 model whose outputs' Instances hold ``pred_keypoints`` (N, K, 3) and ``scores``
(N,) in the original image's continuous coordinates works: a Keypoint R-CNN, or a bottom-up
estimator with the same outputs. Every predicted person is written; the readers filter them.

Example (the demo's Keypoint R-CNN on the training split, for TRAIN_KEYPOINTS_FILE):

    python tools/predict_keypoints.py --config-file configs/synthetic/keypoint_rcnn_R_18_FPN_synthetic.yaml \\
        --dataset synthetic_occluded_train --output output/demo/keypoint_rcnn/train_keypoints.json \\
        --opts MODEL.WEIGHTS output/demo/keypoint_rcnn/model_final.pth
"""
import argparse
import json
import logging
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
from detectron2.utils.logger import setup_logger  # noqa: E402

import pose2seg_d2  # noqa: E402,F401  (registers the datasets and models)
from pose2seg_d2.config import load_config  # noqa: E402
from pose2seg_d2.engine import AtomicDetectionCheckpointer, Pose2SegTrainer  # noqa: E402
from pose2seg_d2.modeling.keypoint_sources import PERSON_CATEGORY_ID  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", required=True, help="the keypoint model's config")
    p.add_argument("--dataset", required=True, help="a registered dataset, e.g. synthetic_occluded_train")
    p.add_argument("--output", required=True, help="the results JSON to write")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides (MODEL.WEIGHTS ...)")
    return p.parse_args(argv)


def results_entries(inputs, outputs, decimals=3):
    """
    COCO keypoint results of one batch.

    Args:
        inputs (list[dict]): the model's inputs, with ``image_id``.
        outputs (list[dict]): its outputs, ``instances`` with ``pred_keypoints`` (N, K, 3) of
            (x, y, confidence) in continuous coordinates of the original image, and ``scores``.
        decimals (int): coordinates are rounded to this many decimals (and confidences and
            scores to ``decimals + 3``), which keeps a training split's file small.

    Returns:
        list[dict]: entries with x and y in COCO's pixel-index coordinates (continuous - 0.5).
    """
    entries = []
    for x, out in zip(inputs, outputs):
        instances = out["instances"].to("cpu")
        if not instances.has("pred_keypoints"):
            raise ValueError(
                f"the model's outputs for {x.get('file_name')} have no pred_keypoints: it is not a keypoint model"
            )
        keypoints = instances.pred_keypoints.to(torch.float64).clone()
        keypoints[..., :2] -= 0.5
        scores = instances.scores.to(torch.float64) if instances.has("scores") else torch.ones(len(keypoints))
        for kpt, score in zip(keypoints.tolist(), scores.tolist()):
            values = [
                round(v, decimals + 3) if i % 3 == 2 else round(v, decimals)
                for i, v in enumerate(c for joint in kpt for c in joint)
            ]
            entries.append({
                "image_id": x["image_id"], "category_id": PERSON_CATEGORY_ID, "keypoints": values,
                "score": round(score, decimals + 3),
            })  # fmt: skip
    return entries


def predict_keypoints(cfg, dataset):
    """The results entries of ``cfg``'s model (MODEL.WEIGHTS loaded) on every image of ``dataset``."""
    model = Pose2SegTrainer.build_model(cfg).eval()
    if cfg.MODEL.WEIGHTS:
        AtomicDetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    else:
        logging.getLogger("pose2seg_d2").warning("MODEL.WEIGHTS is empty: the keypoints are a random model's")
    loader = Pose2SegTrainer.build_test_loader(cfg, dataset)
    entries = []
    with torch.no_grad():
        for inputs in loader:
            entries += results_entries(inputs, model(inputs))
    return entries


def main(argv=None):
    args = parse_args(argv)
    setup_logger(name="pose2seg_d2")
    cfg = load_config(args.config_file, args.opts)
    entries = predict_keypoints(cfg, args.dataset)
    folder = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(folder, exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(entries, f)
    images = len({e["image_id"] for e in entries})
    print(f"{len(entries)} persons on {images} images of {args.dataset} -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
