#!/usr/bin/env python
"""
Mask AP of one Pose2Seg model as its keypoints move from the ground truth towards a pose
estimator's: the ground truth through the `gt` source, with the visibility removed, through the
`json` source, with random person scores, with Gaussian noise of 0.5, 1 and 2 x COCO's OKS
sigma x sqrt(area) and with dropped joints (pose2seg_d2/evaluation/keypoint_robustness.py; the
noise functions are those MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE trains with). Writes
OUTPUT_DIR/robustness.md and robustness.json, and each row's results file and evaluation in
OUTPUT_DIR/<row>/.

Example (the demo's Pose2Seg on the OCHuman-like test set):

    python tools/keypoint_robustness.py --config-file configs/synthetic/pose2seg_R_18_FPN_synthetic.yaml \\
        --dataset synthetic_occluded_test --output-dir output/keypoint_robustness \\
        --opts MODEL.WEIGHTS output/demo/pose2seg/model_final.pth
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from detectron2.utils.logger import setup_logger  # noqa: E402

import pose2seg_d2  # noqa: E402,F401  (registers the datasets and models)
from pose2seg_d2.config import load_config  # noqa: E402
from pose2seg_d2.engine import AtomicDetectionCheckpointer, Pose2SegTrainer  # noqa: E402
from pose2seg_d2.evaluation.keypoint_robustness import (  # noqa: E402
    JSON_CONFIDENCE_THRESHOLD,
    ROBUSTNESS_ROWS,
    evaluate_robustness,
    robustness_table,
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", required=True, help="the Pose2Seg model's config")
    p.add_argument("--dataset", required=True, help="a registered test set, e.g. synthetic_occluded_test")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--seed", type=int, default=0, help="seed of the random scores and the noise")
    p.add_argument(
        "--rows", nargs="+", default=None, choices=[r.name for r in ROBUSTNESS_ROWS], help="a subset of the rows"
    )
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides (MODEL.WEIGHTS ...)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    setup_logger(output=os.path.join(args.output_dir, "log.txt"), name="pose2seg_d2")
    cfg = load_config(args.config_file, args.opts)
    model = Pose2SegTrainer.build_model(cfg).eval()
    if not hasattr(model, "keypoint_source"):
        raise SystemExit(f"error: {cfg.MODEL.META_ARCHITECTURE} takes no keypoints (no keypoint_source)")
    if cfg.MODEL.WEIGHTS:
        AtomicDetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    rows = [r for r in ROBUSTNESS_ROWS if args.rows is None or r.name in args.rows]
    results = evaluate_robustness(model, cfg, args.dataset, args.output_dir, rows, args.seed)

    table = robustness_table(results)
    left_out = {r["name"]: r["persons_left_out"] for r in results if "persons_left_out" in r}
    notes = [
        f"Mask AP (%) of `{cfg.MODEL.WEIGHTS or 'random weights'}` ({args.config_file}) on `{args.dataset}`, "
        f"{results[0]['persons'] if results else 0} ground-truth persons; seed {args.seed}.",
        "Every row gives the ground-truth skeletons; each `...` row adds its change to the row above. "
        f"The `json` rows write labeled joints with confidence 1 and read them back with "
        f"KEYPOINT_CONFIDENCE_THRESHOLD {JSON_CONFIDENCE_THRESHOLD} and MIN_PERSON_SCORE 0; the `json` "
        f"source leaves out persons with fewer than {cfg.MODEL.POSE2SEG.MIN_CONFIDENT_KEYPOINTS} labeled "
        f"joints (MIN_CONFIDENT_KEYPOINTS): {left_out} by row.",
        "Noise: each labeled joint's x and y move by independent Gaussians of standard deviation "
        "scale x sigma_k x sqrt(area), sigma_k COCO's per-joint OKS constant (0.026 for the nose) and area "
        "the person's segment area; drops unlabel joints at random; all from one seeded generator per row.",
    ]
    with open(os.path.join(args.output_dir, "robustness.md"), "w") as f:
        f.write(table + "\n\n" + "\n\n".join(notes) + "\n")
    payload = {
        "config_file": args.config_file,
        "weights": cfg.MODEL.WEIGHTS,
        "dataset": args.dataset,
        "seed": args.seed,
        "rows": results,
    }
    with open(os.path.join(args.output_dir, "robustness.json"), "w") as f:
        json.dump(payload, f, indent=1)
    print(table)
    print(f"-> {os.path.join(args.output_dir, 'robustness.md')} and robustness.json")
    return results


if __name__ == "__main__":
    main()
