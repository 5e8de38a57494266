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
is in both). One pass of the test loader per test set and keypoint source: each batch goes
through the model without and with the flip in turn (which one first alternates), each timed
(after the first two batches) and its outputs evaluated by its own ``OcclusionBucketEvaluator``
(COCO mask AP, overall and by MaxIoU bucket, as the demo's), so that a shared machine's load
falls on both alike. Prints a markdown table and writes it with the figures to
OUTPUT_DIR/results.md and results.json.
"""
import argparse
import json
import logging
import math
import os
import platform
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from detectron2.utils.logger import setup_logger  # noqa: E402

import pose2seg_d2  # noqa: E402,F401  (registers the models and the datasets)
from pose2seg_d2.comparison.runner import train_or_load  # noqa: E402
from pose2seg_d2.config import load_config  # noqa: E402
from pose2seg_d2.engine import Pose2SegTrainer  # noqa: E402
from pose2seg_d2.evaluation import MAX_IOU_BUCKETS, OcclusionBucketEvaluator  # noqa: E402
from pose2seg_d2.modeling import Pose2SegWithTTA  # noqa: E402

WARMUP_BATCHES = 2  # not timed


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


def evaluate_side_by_side(models, cfg, dataset, output_dir):
    """
    Every batch of ``dataset``'s test loader through each of ``models`` (name -> model, in eval
    mode) in turn, the first alternating; returns name -> (metrics, ms per image).
    """
    loader = Pose2SegTrainer.build_test_loader(cfg, dataset)
    evaluators = {
        name: OcclusionBucketEvaluator(dataset, distributed=False, output_dir=os.path.join(output_dir, name, dataset))
        for name in models
    }
    for evaluator in evaluators.values():
        evaluator.reset()
    seconds = dict.fromkeys(models, 0.0)
    timed_images = 0
    cuda = cfg.MODEL.DEVICE.startswith("cuda")
    names = list(models)
    with torch.no_grad():
        for index, batch in enumerate(loader):
            for name in names if index % 2 == 0 else names[::-1]:
                if cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                outputs = models[name](batch)
                if cuda:
                    torch.cuda.synchronize()
                if index >= WARMUP_BATCHES:
                    seconds[name] += time.perf_counter() - start
                evaluators[name].process(batch, outputs)
            if index >= WARMUP_BATCHES:
                timed_images += len(batch)
    return {
        name: (evaluators[name].evaluate(), 1000.0 * seconds[name] / timed_images if timed_images else math.nan)
        for name in names
    }


def _row(dataset, keypoints, tta, metrics, ms_per_image):
    def finite(value):
        return value if isinstance(value, (int, float)) and math.isfinite(value) else None

    segm, by_max_iou = metrics.get("segm", {}), metrics.get("segm_by_max_iou", {})
    return {
        "dataset": dataset,
        "keypoints": keypoints,
        "tta": tta,
        "AP": finite(segm.get("AP")),
        "AP50": finite(segm.get("AP50")),
        "AP75": finite(segm.get("AP75")),
        "AP_by_max_iou": {name: finite(by_max_iou.get(f"AP_{name}")) for name, _, _ in MAX_IOU_BUCKETS},
        "ms_per_image": finite(ms_per_image),
    }


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
        output_dir = os.path.join(args.output_dir, keypoints)
        cfg = load_config(args.config_file, [*args.opts, *source_opts, "OUTPUT_DIR", output_dir, "TEST.AUG.ENABLED", True])
        model, _, _ = train_or_load(cfg, args.weights)
        models = {"plain": model, "tta": Pose2SegWithTTA(cfg, model).eval()}
        for dataset in args.datasets:
            logger.info(f"==> {dataset}, keypoints {keypoints}: without and with the flip")
            results = evaluate_side_by_side(models, cfg, dataset, output_dir)
            for name, (metrics, ms) in results.items():
                rows.append(_row(dataset, keypoints, name == "tta", metrics, ms))
                logger.info(f"{dataset} {keypoints} {name}: AP {rows[-1]['AP']}, {ms:.1f} ms / image")
        del model, models
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
