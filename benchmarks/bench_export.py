#!/usr/bin/env python
"""
Pose2Seg exported (pose2seg_d2/export) against the eager model, side by side in one run: time per
image of

- ``eager``: the model's own inference (``model([input])``, the project's Pose2Seg);
- ``pt2``: the ``.pt2`` ExportedProgram run by torch (``torch.export.load(...).module()``);
- ``onnxruntime``: the ONNX file run by onnxruntime on the CPU, with as many threads as torch.

Random weights with calibrated FrozenBatchNorm statistics (benchmarks/inference_bench), a noise
image of the short side given (4:3) with ground-truth persons. Each model is exported once (the
export times are printed too); timings are the best of ``--repeats`` calls after one warm-up,
the three taking turns in each round so that a busy machine slows them alike.

    python benchmarks/bench_export.py [--models pose2seg_light pose2seg_release]
        [--persons 1 10] [--short-side 512] [--repeats 3] [--threads N]
"""
import argparse
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from inference_bench.inputs import make_input  # noqa: E402  (puts this checkout first on sys.path)
from inference_bench.models import MODELS, build, model_label  # noqa: E402

from pose2seg_d2.export import export_program, load_onnx, load_pt2, save_onnx, save_pt2  # noqa: E402
from pose2seg_d2.export.compare import agreement  # noqa: E402

RUNTIMES = ("eager", "pt2", "onnxruntime")


def best_times(functions, repeats):
    """Best time in ms of each function, after one warm-up, the functions taking turns."""
    results = {name: fn() for name, fn in functions.items()}
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], 1000 * (time.perf_counter() - start))
    return best, results


def export_files(model, folder):
    """Both files of ``model``, and the seconds of each step: the trace, writing the .pt2, and
    the ONNX export of the traced program."""
    start = time.perf_counter()
    program = export_program(model)
    traced = time.perf_counter() - start
    start = time.perf_counter()
    pt2 = save_pt2(program, os.path.join(folder, "model.pt2"))
    saved = time.perf_counter() - start
    start = time.perf_counter()
    onnx = save_onnx(program, os.path.join(folder, "model.onnx"))
    return (pt2, onnx), {"torch.export": traced, "writing the .pt2": saved, "ONNX from the program": time.perf_counter() - start}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["pose2seg_light", "pose2seg_release"],
                        choices=[m for m in MODELS if m != "mask_rcnn"])  # fmt: skip
    parser.add_argument("--persons", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--short-side", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    print(f"CPU, {threads} threads (torch and onnxruntime), short side {args.short_side}, best of {args.repeats} (ms per image)")
    rows = []
    for name in args.models:
        model = build(name, "cpu")
        with tempfile.TemporaryDirectory() as folder:
            (pt2_file, onnx_file), seconds = export_files(model, folder)
            sizes = {k: os.path.getsize(f) / 2**20 for k, f in (("pt2", pt2_file), ("onnx", onnx_file))}
            print(
                f"{model_label(name)}: export " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
                + "; files " + ", ".join(f"{k} {v:.0f} MiB" for k, v in sizes.items())
            )  # fmt: skip
            pt2, ort = load_pt2(pt2_file), load_onnx(onnx_file, threads=threads)
            for persons in args.persons:
                inputs = make_input(args.short_side, persons, seed=persons)
                image = inputs["image"].float()
                keypoints = inputs["instances"].gt_keypoints.tensor
                with torch.no_grad():
                    best, results = best_times(
                        {"eager": lambda: model([dict(inputs)]), "pt2": lambda: pt2(image, keypoints),
                         "onnxruntime": lambda: ort(image, keypoints)},
                        args.repeats,
                    )  # fmt: skip
                # the exported files give the same masks as each other (the eager ones: tests/test_export.py)
                iou, _ = agreement(results["pt2"], results["onnxruntime"])
                rows.append((model_label(name), persons, *(best[r] for r in RUNTIMES), float(iou.min()) if persons else 1.0))
                print(f"  {persons} persons: " + ", ".join(f"{r} {best[r]:.0f}" for r in RUNTIMES), flush=True)
    print()
    print("| model | persons | eager | pt2 | onnxruntime | pt2 / eager | onnxruntime / eager |")
    print("|---|---|---|---|---|---|---|")
    for label, persons, eager, pt2_ms, ort_ms, _ in rows:
        print(f"| {label} | {persons} | {eager:.0f} | {pt2_ms:.0f} | {ort_ms:.0f} | {pt2_ms / eager:.2f} | {ort_ms / eager:.2f} |")
    worst = min(r[-1] for r in rows)
    print(f"\nmasks of pt2 and onnxruntime: IoU {worst:.4f} at least")


if __name__ == "__main__":
    main()
