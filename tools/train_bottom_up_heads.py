#!/usr/bin/env python
"""
Train the synthetic bottom-up keypoint head on the shared, frozen backbone and ship it (one
command):

    python tools/train_bottom_up_heads.py                      # the shipped file, from scratch
    python tools/train_bottom_up_heads.py SEED 1               # config overrides last

trains ``configs/synthetic/bottom_up_R_18_FPN_synthetic.yaml`` (BottomUpKeypoints on
synthetic_occluded_train), measures its keypoint AP on the test sets, and writes the head alone
as a partial checkpoint over the config's MODEL.WEIGHTS (the shipped backbone;
pose2seg_d2/engine/partial_checkpoints.py) with a JSON record (command, config, seed,
iterations, time, losses, keypoint AP, sha256) next to it:

    pose2seg_d2/assets/keypoint_heads/bottom_up_R_18_FPN_synthetic.pth   (the demo's
        --keypoint-weights "pose2seg_d2://keypoint_heads/bottom_up_R_18_FPN_synthetic.pth")
    pose2seg_d2/assets/keypoint_heads/bottom_up_R_18_FPN_synthetic.json

--export-only exports OUTPUT_DIR's last checkpoint without training.
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
from pose2seg_d2.engine import AtomicDetectionCheckpointer, Pose2SegTrainer, file_sha256, save_partial_checkpoint  # noqa: E402
from pose2seg_d2.utils import resolve_path  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(ROOT, "configs", "synthetic", "bottom_up_R_18_FPN_synthetic.yaml")
DEFAULT_OUTPUT = os.path.join(ROOT, "pose2seg_d2", "assets", "keypoint_heads", "bottom_up_R_18_FPN_synthetic.pth")
HEAD_PREFIXES = ("head.",)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", default=DEFAULT_CONFIG)
    p.add_argument("--output", default=DEFAULT_OUTPUT, help="the exported head (.pth)")
    p.add_argument("--export-only", action="store_true", help="export OUTPUT_DIR's last checkpoint, do not train")
    p.add_argument(
        "--eval-datasets", nargs="*", default=["synthetic_occluded_all_levels", "synthetic_occluded_test"],
        help="keypoint AP measured on these (none: skip)",
    )  # fmt: skip
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides (KEY VALUE ...)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config_file, args.opts)
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    setup_logger(output=os.path.join(cfg.OUTPUT_DIR, "log.txt"))
    setup_logger(output=os.path.join(cfg.OUTPUT_DIR, "log.txt"), name="pose2seg_d2")
    logger = logging.getLogger("pose2seg_d2")
    if cfg.MODEL.META_ARCHITECTURE != "BottomUpKeypoints":
        raise SystemExit(f"{args.config_file}: MODEL.META_ARCHITECTURE must be BottomUpKeypoints")
    if not cfg.MODEL.WEIGHTS:
        raise SystemExit(f"{args.config_file}: MODEL.WEIGHTS is empty; the head is shipped over a backbone checkpoint")

    seconds, losses = None, {}
    if args.export_only:
        model = Pose2SegTrainer.build_model(cfg)
        checkpointer = AtomicDetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR)
        if not checkpointer.has_checkpoint():
            raise SystemExit(f"--export-only: no checkpoint in {cfg.OUTPUT_DIR}")
        last = checkpointer.get_checkpoint_file()
        iteration = checkpointer.load(last).get("iteration")
        logger.info("exporting %s (iteration %s)", last, iteration)
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
    names = save_partial_checkpoint(args.output, model.state_dict(), HEAD_PREFIXES, cfg.MODEL.WEIGHTS)
    record = {
        "command": "python tools/train_bottom_up_heads.py " + " ".join(argv if argv is not None else sys.argv[1:]),
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
        "exported %d head tensors (%.2f MB) to %s, sha256 %s; keypoint AP %s",
        len(names), os.path.getsize(args.output) / 1e6, args.output, record["sha256"], aps,
    )  # fmt: skip
    return record


if __name__ == "__main__":
    main()
