#!/usr/bin/env python
"""
Test-time horizontal flip (TEST.AUG.ENABLED, :class:`Pose2SegWithTTA`): mask AP, overall and
by MaxIoU bucket, and the time per image of a trained Pose2Seg without and with it, on each test
set, in one run (without, then with, on each test set in turn):

    python benchmarks/bench_tta.py --config-file configs/synthetic/pose2seg_R_18_FPN_synthetic.yaml \\
        --weights output/demo/pose2seg/model_final.pth \\
        --datasets synthetic_occluded_all_levels synthetic_occluded_test \\
        [--keypoint-config output/demo/keypoint_model/config.yaml \\
         --keypoint-weights output/demo/keypoint_model/model_final.pth] \\
        [--output-dir output/bench_tta] [--opts KEY VALUE ...]

Rows: the "gt" keypoint source and, with ``--keypoint-config``, the images-alone one (the
keypoint model run inside the forward pass, once per image with or without the flip: its time
is in both). The evaluation is the demo's (``pose2seg_d2.comparison.evaluate_run``: one pass of
the test loader, ``OcclusionBucketEvaluator``, the time per image over the model's calls after
the first two). Prints a markdown table and writes it with the figures to OUTPUT_DIR/results.md
and results.json.
"""
import argparse
import json
import logging
import os
import platform
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from detectron2.utils.logger import setup_logger  # noqa: E402

import pose2seg_d2  # noqa: E402,F401  (registers the models and the datasets)
from pose2seg_d2.comparison.runner import ModelRun, describe_config, evaluate_run, train_or_load  # noqa: E402
from pose2seg_d2.config import load_config  # noqa: E402
from pose2seg_d2.evaluation import MAX_IOU_BUCKETS  # noqa: E402
from pose2seg_d2.modeling import Pose2SegWithTTA  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help="the Pose2Seg config")
    parser.add_argument("--weights", required=True, help="its trained weights (MODEL.WEIGHTS)")
    parser.add_argument("--datasets", nargs="+", required=True, help="registered test sets")
    parser.add_argument("--keypoint-config", default="", help="a keypoint model's config: adds the images-alone rows")
    parser.add_argument("--keypoint-weights", default="", help="its weights ('' = its config's MODEL.WEIGHTS)")
    parser.add_argument("--output-dir", default="output/bench_tta")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config KEY VALUE pairs")
    return parser.parse_args(argv)


def _fmt(value, digits=1):
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows):
    buckets = [name for name, _, _ in MAX_IOU_BUCKETS]
    lines = [
        "| test set | keypoints | flip | AP | AP50 | AP75 | " + " | ".join(f"MaxIoU {b}" for b in buckets) + " | ms / image |",
        "|---" * (7 + len(buckets)) + "|",
    ]
    for r in rows:
        by_bucket = " | ".join(_fmt(r["AP_by_max_iou"][b]) for b in buckets)
        lines.append(
            f"| `{r['dataset']}` | {r['keypoints']} | {'yes' if r['tta'] else 'no'} | {_fmt(r['AP'])} | "
            f"{_fmt(r['AP50'])} | {_fmt(r['AP75'])} | {by_bucket} | {_fmt(r['ms_per_image'], 0)} |"
        )
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    setup_logger(output=os.path.join(args.output_dir, "log.txt"), name="pose2seg_d2")
    logger = logging.getLogger("pose2seg_d2")
    sources = [("gt", [])]
    if args.keypoint_config:
        sources.append((
            "predicted",
            ["MODEL.POSE2SEG.KEYPOINT_SOURCE", "model", "MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE", args.keypoint_config,
             "MODEL.POSE2SEG.KEYPOINT_MODEL.WEIGHTS", args.keypoint_weights],
        ))  # fmt: skip
    rows = []
    for keypoints, source_opts in sources:
        cfg = load_config(args.config_file, [*args.opts, *source_opts, "OUTPUT_DIR", os.path.join(args.output_dir, keypoints)])
        model, _, _ = train_or_load(cfg, args.weights)
        tta_cfg = cfg.clone()
        tta_cfg.defrost()
        tta_cfg.TEST.AUG.ENABLED = True
        tta_cfg.OUTPUT_DIR = os.path.join(cfg.OUTPUT_DIR, "tta")
        tta = Pose2SegWithTTA(tta_cfg, model).eval()
        for dataset in args.datasets:
            for flip, (run_cfg, run_model) in ((False, (cfg, model)), (True, (tta_cfg, tta))):
                logger.info(f"==> {dataset}, keypoints {keypoints}, flip {'on' if flip else 'off'}")
                run = ModelRun(model="pose2seg", keypoints=keypoints, label="Pose2Seg", config=describe_config(run_cfg))
                with torch.no_grad():
                    evaluate_run(run, run_model, run_cfg, dataset)
                rows.append({**run.row(), "tta": flip})
        del model, tta
    text = table(rows)
    print(text)
    device = cfg.MODEL.DEVICE if cfg.MODEL.DEVICE != "cpu" else f"cpu ({platform.processor() or platform.machine()})"
    with open(os.path.join(args.output_dir, "results.md"), "w") as f:
        f.write(f"{text}\n\nweights {args.weights}, device {device}, torch threads {torch.get_num_threads()}\n")
    with open(os.path.join(args.output_dir, "results.json"), "w") as f:
        json.dump({"args": vars(args), "rows": rows}, f, indent=1)
    print(f"Results: {os.path.join(args.output_dir, 'results.md')} and results.json")
    return rows


if __name__ == "__main__":
    main()
