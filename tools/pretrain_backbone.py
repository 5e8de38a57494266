#!/usr/bin/env python
"""
Pretrain the synthetic models' shared backbone and export it (one command):

    python tools/pretrain_backbone.py                      # the shipped file, from scratch
    python tools/pretrain_backbone.py MODEL.DEVICE cuda    # the same on a GPU (config overrides last)

trains ``configs/synthetic/pretrain_R_18_FPN_synthetic.yaml`` (DenseHumanPretraining: person /
background and keypoint heatmaps on synthetic_occluded_train; no task separates persons), measures
its person/background IoU on synthetic_occluded_val, and writes the backbone's weights in float16
with a JSON record (config, seed, iterations, losses, IoU, sha256) next to them:

    pose2seg_d2/assets/backbones/R_18_FPN_synthetic_dense.pth   (MODEL.WEIGHTS
        "pose2seg_d2://backbones/R_18_FPN_synthetic_dense.pth" in configs/synthetic/*)
    pose2seg_d2/assets/backbones/R_18_FPN_synthetic_dense.json

--resume continues from OUTPUT_DIR's last checkpoint; --export-only exports that checkpoint
without training.
"""
import argparse
import hashlib
import json
import logging
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.data import DatasetCatalog  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402
from detectron2.utils.logger import setup_logger  # noqa: E402

import pose2seg_d2  # noqa: E402, F401  (registers the models and the datasets)
from pose2seg_d2.config import load_config  # noqa: E402
from pose2seg_d2.data import decode_segmentation  # noqa: E402
from pose2seg_d2.engine import Pose2SegTrainer, input_kind  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(ROOT, "configs", "synthetic", "pretrain_R_18_FPN_synthetic.yaml")
DEFAULT_OUTPUT = os.path.join(ROOT, "pose2seg_d2", "assets", "backbones", "R_18_FPN_synthetic_dense.pth")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", default=DEFAULT_CONFIG)
    p.add_argument("--output", default=DEFAULT_OUTPUT, help="the exported backbone (.pth)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR's last checkpoint")
    p.add_argument("--export-only", action="store_true", help="export OUTPUT_DIR/model_final.pth, do not train")
    p.add_argument("--eval-dataset", default="synthetic_occluded_val", help="'' skips the IoU measurement")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides (KEY VALUE ...)")
    return p.parse_args(argv)


def backbone_state_dict(model_state, dtype=torch.float16):
    """The ``backbone.*`` entries of a model's state dict, floating tensors cast to ``dtype``."""
    out = {}
    for name, value in model_state.items():
        if name.startswith("backbone."):
            value = value.detach().cpu()  # loadable without a GPU
            out[name] = value.to(dtype) if value.is_floating_point() else value
    if not out:
        raise ValueError("the checkpoint holds no backbone.* weights")
    return out


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@torch.no_grad()
def person_iou(model, cfg, dataset):
    """Person/background IoU (probability >= 0.5 against the union of the persons' masks) over
    ``dataset``."""
    model.eval()
    loader = Pose2SegTrainer.build_test_loader(cfg, dataset)
    records = {r["image_id"]: r for r in DatasetCatalog.get(dataset)}
    inter = union = 0
    for inputs in loader:
        for x, out in zip(inputs, model(inputs)):
            record = records[x["image_id"]]
            h, w = record["height"], record["width"]
            truth = torch.zeros(h, w, dtype=torch.bool)
            for ann in record["annotations"]:
                truth |= torch.from_numpy(decode_segmentation(ann["segmentation"], h, w).astype(bool))
            predicted = out["sem_seg"][0].cpu() >= 0.5
            inter += int((predicted & truth).sum())
            union += int((predicted | truth).sum())
    return inter / max(union, 1)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config_file, args.opts)
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    setup_logger(output=os.path.join(cfg.OUTPUT_DIR, "log.txt"))
    setup_logger(output=os.path.join(cfg.OUTPUT_DIR, "log.txt"), name="pose2seg_d2")
    logger = logging.getLogger("pose2seg_d2")
    if input_kind(cfg) != "dense":
        raise SystemExit(
            f"{args.config_file}: MODEL.META_ARCHITECTURE must be a dense pretraining model "
            f"(input_kind 'dense', e.g. DenseHumanPretraining), got {cfg.MODEL.META_ARCHITECTURE}"
        )

    seconds, losses, iteration = 0.0, {}, None
    if args.export_only:
        model = build_model(cfg)
        checkpointer = DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR)
        if not checkpointer.has_checkpoint():
            raise SystemExit(f"--export-only: no checkpoint in {cfg.OUTPUT_DIR}")
        last = checkpointer.get_checkpoint_file()
        iteration = checkpointer.load(last).get("iteration")
        logger.info("exporting %s (iteration %s)", last, iteration)
    else:
        trainer = Pose2SegTrainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        model = trainer.model
        iteration = trainer.iter - 1  # the last iteration run (Detectron2 leaves iter at MAX_ITER)
        history = trainer.storage.histories()
        losses = {k: round(v.median(20), 4) for k, v in history.items() if k.startswith("loss_") or k == "total_loss"}

    iou = person_iou(model, cfg, args.eval_dataset) if args.eval_dataset else None
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    weights = backbone_state_dict(model.state_dict())
    torch.save({"model": weights, "__author__": "pose2seg_d2 tools/pretrain_backbone.py"}, args.output)
    record = {
        "command": "python tools/pretrain_backbone.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "config_file": os.path.relpath(os.path.abspath(args.config_file), ROOT),
        "config": cfg.dump(),
        "seed": cfg.SEED,
        "iterations": None if iteration is None else int(iteration) + 1,
        "images_per_batch": cfg.SOLVER.IMS_PER_BATCH,
        "device": cfg.MODEL.DEVICE if not cfg.MODEL.DEVICE.startswith("cuda") else torch.cuda.get_device_name(),
        "train_seconds": round(seconds, 1),
        "final_losses_median_of_20": losses,
        "person_iou": None if iou is None else {args.eval_dataset: round(iou, 4)},
        "tensors": len(weights),
        "parameters": sum(v.numel() for v in weights.values()),
        "sha256": sha256(args.output),
    }
    with open(os.path.splitext(args.output)[0] + ".json", "w") as f:
        json.dump(record, f, indent=1)
    logger.info(
        "exported %d backbone tensors (%.1f MB) to %s, sha256 %s; person IoU on %s: %s",
        len(weights), os.path.getsize(args.output) / 1e6, args.output, record["sha256"], args.eval_dataset, iou,
    )  # fmt: skip
    return record


if __name__ == "__main__":
    main()
