#!/usr/bin/env python
"""
The frozen backbone of the synthetic configs (ResNet-18 FPN, 64 channels) in float32 and with
MODEL.BACKBONE.FROZEN_AUTOCAST, side by side in one run: time of one forward pass of a training
batch, and how far the reduced-precision features are from the float32 ones.

Timings are the best of ``--repeats`` calls after one warm-up, the variants taking turns in each
round so that a busy machine slows them alike.

    python benchmarks/bench_frozen_backbone.py [--batch 4] [--size 256 352] [--repeats 5]
        [--device cpu] [--threads N]
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pose2seg_d2.config import load_config  # noqa: E402
from pose2seg_d2.engine import Pose2SegTrainer  # noqa: E402

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs/synthetic/mask_rcnn_R_18_FPN_synthetic.yaml")


def build_backbone(dtype_name, device, state_dict=None):
    cfg = load_config(CONFIG, ["MODEL.DEVICE", device, "MODEL.BACKBONE.FROZEN_AUTOCAST", dtype_name])
    model = Pose2SegTrainer.build_model(cfg).eval()  # MODEL.WEIGHTS is loaded by the caller
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, nargs=2, default=(256, 352), metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from detectron2.checkpoint import DetectionCheckpointer

    reference = build_backbone("", args.device)
    DetectionCheckpointer(reference).load(load_config(CONFIG).MODEL.WEIGHTS)
    variants = {"float32": reference}
    for name in ("bf16", "fp16"):
        variants[name] = build_backbone(name, args.device, reference.state_dict())

    torch.manual_seed(0)
    images = torch.rand(args.batch, 3, *args.size, device=args.device) * 255 - 110
    best = {name: float("inf") for name in variants}
    outputs = {}
    with torch.no_grad():
        for name, model in variants.items():
            outputs[name] = model.backbone(images)  # warm-up
        for _ in range(args.repeats):
            for name, model in variants.items():
                if args.device != "cpu":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                model.backbone(images)
                if args.device != "cpu":
                    torch.cuda.synchronize()
                best[name] = min(best[name], time.perf_counter() - start)

    print(f"frozen ResNet-18 FPN, {args.batch} images {args.size[0]}x{args.size[1]}, {args.device}, "
          f"{torch.get_num_threads()} threads, best of {args.repeats}")
    print("| FROZEN_AUTOCAST | ms / batch | speed-up | max |error| / max |feature| (worst level) |")
    print("|---|---|---|---|")
    for name in variants:
        error = max(
            ((outputs[name][level] - outputs["float32"][level]).abs().max() / outputs["float32"][level].abs().max()).item()
            for level in outputs["float32"]
        )
        label = '"" (float32)' if name == "float32" else f'"{name}"'
        print(f"| {label} | {best[name] * 1000:.1f} | "
              f"{best['float32'] / best[name]:.2f}x | {error:.1e} |")


if __name__ == "__main__":
    main()
