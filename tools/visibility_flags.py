#!/usr/bin/env python
"""
What the bottom-up head's visibility flags are worth to Pose2Seg: on each test set, the flags'
accuracy at the ground truth's labeled joints (read at the joint's pixel), and Pose2Seg's mask
AP given the ground-truth skeletons with the true flags, with the head's flags, and with none
(every labeled joint v = 2), all through the `gt` source
(pose2seg_d2/evaluation/visibility.py). Writes OUTPUT_DIR/visibility.md and visibility.json.

    python tools/visibility_flags.py \\
        --bottom-up-config configs/synthetic/bottom_up_R_18_FPN_synthetic.yaml \\
        --bottom-up-weights pose2seg_d2://keypoint_heads/bottom_up_R_18_FPN_synthetic.pth \\
        --pose2seg-config configs/synthetic/pose2seg_R_18_FPN_synthetic.yaml \\
        --pose2seg-weights output/demo/pose2seg/model_final.pth \\
        --datasets synthetic_occluded_all_levels synthetic_occluded_test --output-dir output/visibility_flags
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from detectron2.data import DatasetCatalog, build_detection_test_loader  # noqa: E402
from detectron2.evaluation import inference_on_dataset  # noqa: E402
from detectron2.utils.logger import setup_logger  # noqa: E402

import pose2seg_d2  # noqa: E402,F401  (registers the datasets and models)
from pose2seg_d2.config import load_config  # noqa: E402
from pose2seg_d2.data.dataset_mapper import Pose2SegDatasetMapper  # noqa: E402
from pose2seg_d2.engine import AtomicDetectionCheckpointer, Pose2SegTrainer  # noqa: E402
from pose2seg_d2.evaluation import OcclusionBucketEvaluator  # noqa: E402
from pose2seg_d2.evaluation.visibility import records_with_flags, visibility_accuracy, visibility_at_joints  # noqa: E402

FLAG_ROWS = (
    ("true", "ground truth, true flags (v = 1 / 2 as annotated)"),
    ("predicted", "ground truth, the bottom-up head's flags"),
    ("none", "ground truth, no flags (every labeled joint v = 2)"),
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bottom-up-config", required=True)
    p.add_argument("--bottom-up-weights", required=True)
    p.add_argument("--pose2seg-config", required=True)
    p.add_argument("--pose2seg-weights", required=True)
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--output-dir", required=True)
    return p.parse_args(argv)


def _load(config_file, weights):
    cfg = load_config(config_file, ["MODEL.WEIGHTS", weights])
    model = Pose2SegTrainer.build_model(cfg)
    AtomicDetectionCheckpointer(model).load(weights)
    return cfg, model.eval()


def flag_study(bu_model, bu_cfg, p2s_model, p2s_cfg, dataset, output_dir):
    """One test set's accuracy and its three rows of mask AP (see the module's text)."""
    records = DatasetCatalog.get(dataset)
    threshold = bu_cfg.MODEL.BOTTOM_UP.VISIBILITY_THRESHOLD
    probabilities = visibility_at_joints(bu_model, bu_cfg, records)
    result = {"dataset": dataset, "threshold": threshold, **visibility_accuracy(records, probabilities, threshold)}
    variants = {
        "true": records,
        "predicted": records_with_flags(records, probabilities, threshold),
        "none": records_with_flags(records, None),
    }
    mapper = Pose2SegDatasetMapper(p2s_cfg, False)
    for name, _ in FLAG_ROWS:
        loader = build_detection_test_loader(variants[name], mapper=mapper, num_workers=p2s_cfg.DATALOADER.NUM_WORKERS)
        evaluator = OcclusionBucketEvaluator(dataset, distributed=False, output_dir=os.path.join(output_dir, dataset, name))
        metrics = inference_on_dataset(p2s_model, loader, evaluator)
        result[f"AP_{name}"] = metrics.get("segm", {}).get("AP")
    return result


def table(results):
    head = "| test set | flag accuracy | covered recall | visible recall | " + " | ".join(
        f"AP, {label}" for _, label in FLAG_ROWS
    ) + " |"
    lines = [head, "|" + "---|" * (4 + len(FLAG_ROWS))]
    fmt = lambda v, scale=1.0: "-" if v is None else f"{scale * v:.1f}"  # noqa: E731
    for r in results:
        cells = [fmt(r["accuracy"], 100), fmt(r["covered_recall"], 100), fmt(r["visible_recall"], 100)]
        cells += [fmt(r[f"AP_{name}"]) for name, _ in FLAG_ROWS]
        lines.append(f"| `{r['dataset']}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    setup_logger(output=os.path.join(args.output_dir, "log.txt"))
    bu_cfg, bu_model = _load(args.bottom_up_config, args.bottom_up_weights)
    p2s_cfg, p2s_model = _load(args.pose2seg_config, args.pose2seg_weights)
    if p2s_cfg.MODEL.POSE2SEG.KEYPOINT_SOURCE != "gt":
        raise SystemExit(f"{args.pose2seg_config}: MODEL.POSE2SEG.KEYPOINT_SOURCE must be 'gt' here")
    results = [flag_study(bu_model, bu_cfg, p2s_model, p2s_cfg, d, args.output_dir) for d in args.datasets]
    text = table(results)
    with open(os.path.join(args.output_dir, "visibility.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(args.output_dir, "visibility.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(text)
    return results


if __name__ == "__main__":
    main()
