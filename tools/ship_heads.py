#!/usr/bin/env python
"""
Train a keypoint model on the synthetic models' shared, frozen backbone and ship its heads
alone (one command):

    python tools/ship_heads.py                                   # the bottom-up head, from scratch
    python tools/ship_heads.py --config-file configs/synthetic/keypoint_rcnn_R_18_FPN_synthetic.yaml \\
        --output pose2seg_d2/assets/keypoint_heads/keypoint_rcnn_R_18_FPN_synthetic.pth
    python tools/ship_heads.py SEED 1                            # config overrides last

trains the config with train_net.py's trainer (or, with --weights, takes a checkpoint trained
before), measures its keypoint AP on the test sets, and writes every weight but the backbone's
as a partial checkpoint over the config's MODEL.WEIGHTS (the shipped backbone, which the
config keeps frozen; pose2seg_d2/engine/partial_checkpoints.py), with a JSON record (command,
config, seed, iterations, time, losses, keypoint AP, sha256) beside it. The default output:

    pose2seg_d2/assets/keypoint_heads/bottom_up_R_18_FPN_synthetic.pth   (`make demo`'s
        --keypoint-weights "pose2seg_d2://keypoint_heads/bottom_up_R_18_FPN_synthetic.pth")
    pose2seg_d2/assets/keypoint_heads/bottom_up_R_18_FPN_synthetic.json
"""
import argparse
import json
import logging
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
from detectron2.utils.logger import setup_logger  # noqa: E402

import pose2seg_d2  # noqa: E402, F401  (registers the models and the datasets)
from pose2seg_d2.comparison import keypoint_ap  # noqa: E402
from pose2seg_d2.config import load_config  # noqa: E402
from pose2seg_d2.engine import (  # noqa: E402
    AtomicDetectionCheckpointer,
    Pose2SegTrainer,
    file_sha256,
    save_partial_checkpoint,
)
from pose2seg_d2.utils import resolve_path  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(ROOT, "configs", "synthetic", "bottom_up_R_18_FPN_synthetic.yaml")
DEFAULT_OUTPUT = os.path.join(ROOT, "pose2seg_d2", "assets", "keypoint_heads", "bottom_up_R_18_FPN_synthetic.pth")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", default=DEFAULT_CONFIG)
    p.add_argument("--output", default=DEFAULT_OUTPUT, help="the shipped heads (.pth)")
    p.add_argument("--weights", default="", help="ship this checkpoint of the config's model instead of training")
    p.add_argument(
        "--train-seconds", type=float, default=None,
        help="with --weights: how long its training took, for the record (default: unknown)",
    )  # fmt: skip
    p.add_argument(
        "--eval-datasets", nargs="*", default=["synthetic_occluded_all_levels", "synthetic_occluded_test"],
        help="keypoint AP measured on these (none: skip)",
    )  # fmt: skip
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides (KEY VALUE ...)")
    return p.parse_args(argv)


def _frozen_backbone(cfg):
    """Whether the config keeps its whole backbone at MODEL.WEIGHTS (what shipping heads needs)."""
    return cfg.MODEL.BACKBONE.FREEZE_AT >= 5 and bool(cfg.MODEL.BACKBONE.get("FREEZE_FPN", False))


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config_file, args.opts)
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    setup_logger(output=os.path.join(cfg.OUTPUT_DIR, "log.txt"))
    setup_logger(output=os.path.join(cfg.OUTPUT_DIR, "log.txt"), name="pose2seg_d2")
    logger = logging.getLogger("pose2seg_d2")
    if not cfg.MODEL.WEIGHTS or not _frozen_backbone(cfg):
        raise SystemExit(
            f"{args.config_file}: heads are shipped over a frozen backbone checkpoint: MODEL.WEIGHTS must name it "
            f"(got {cfg.MODEL.WEIGHTS!r}) and MODEL.BACKBONE.FREEZE_AT >= 5 with FREEZE_FPN True"
        )

    seconds, losses = args.train_seconds, {}
    if args.weights:
        model = Pose2SegTrainer.build_model(cfg)
        AtomicDetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
        iteration = AtomicDetectionCheckpointer(model).load(args.weights).get("iteration")
        logger.info("shipping %s (iteration %s)", args.weights, iteration)
    else:
        trainer = Pose2SegTrainer(cfg)
        trainer.resume_or_load(resume=False)
        start = time.perf_counter()
        trainer.train()
        seconds = round(time.perf_counter() - start, 1)
        model = trainer.model
        iteration = trainer.iter - 1  # the last iteration run (Detectron2 leaves iter at MAX_ITER)
        history = trainer.storage.histories()
        losses = {k: round(v.median(20), 5) for k, v in history.items() if k.startswith("loss_") or k == "total_loss"}

    model.eval()
    aps = {d: keypoint_ap(model, cfg, d) for d in args.eval_datasets}
    names = save_partial_checkpoint(args.output, model.state_dict(), cfg.MODEL.WEIGHTS)
    record = {
        "command": "python tools/ship_heads.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "config_file": os.path.relpath(os.path.abspath(args.config_file), ROOT),
        "config": cfg.dump(),
        "seed": cfg.SEED,
        "iterations": None if iteration is None else int(iteration) + 1,
        "images_per_batch": cfg.SOLVER.IMS_PER_BATCH,
        "device": cfg.MODEL.DEVICE if not cfg.MODEL.DEVICE.startswith("cuda") else torch.cuda.get_device_name(),
        "train_seconds": seconds,
        "final_losses_median_of_20": losses,
        "keypoint_AP": aps,
        "base_weights": cfg.MODEL.WEIGHTS,
        "base_sha256": file_sha256(resolve_path(cfg.MODEL.WEIGHTS)),
        "tensors": len(names),
        "sha256": file_sha256(args.output),
    }
    with open(os.path.splitext(args.output)[0] + ".json", "w") as f:
        json.dump(record, f, indent=1)
    logger.info(
        "shipped %d tensors (%.2f MB) to %s, sha256 %s; keypoint AP %s",
        len(names), os.path.getsize(args.output) / 1e6, args.output, record["sha256"], aps,
    )  # fmt: skip
    return record


if __name__ == "__main__":
    main()
