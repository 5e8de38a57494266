#!/usr/bin/env python
"""
Warping per-person mask windows back into the image, side by side in one run:

- ``footprint``: pose2seg_d2.layers.warp_windows_to_image (probabilities, each window sampled
  over a crop around its footprint, the crops pasted with one scatter);
- ``masks+boxes``: pose2seg_d2.layers.paste_masks, what Pose2Seg's inference runs: the same
  crops thresholded, pasted as bool masks, with the masks' boxes;
- ``whole image``: every window sampled over the whole image (tests/reference.py);
- with ``--baseline DIR`` (another checkout of the project, e.g. the commit before a change):
  its ``warp_windows_to_image``, and its mask path as its Pose2Seg ran it (warp, threshold,
  ``BitMasks.get_bounding_boxes``).

Timings are the best of ``--repeats`` calls after one warm-up, the implementations taking
turns in each round so that a busy machine slows them alike.

    python benchmarks/bench_paste.py [--persons 1 10 20] [--image 800 1200] [--repeats 5]
        [--baseline /path/to/old/checkout] [--threads N]
"""
import argparse
import importlib.util
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pose2seg_d2.layers import paste_masks, warp_windows_to_image  # noqa: E402
from tests.reference import ref_whole_image_warp  # noqa: E402


def load_baseline_layers(root):
    """``pose2seg_d2.layers`` of another checkout, imported as the package ``baseline_layers``
    (its modules may import each other, not the rest of that package)."""
    path = os.path.join(root, "pose2seg_d2", "layers")
    spec = importlib.util.spec_from_file_location(
        "baseline_layers", os.path.join(path, "__init__.py"), submodule_search_locations=[path]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_layers"] = module
    spec.loader.exec_module(module)
    return module


def timings(functions, repeats):
    """Best time in ms of each function, the functions taking turns in each round."""
    for fn in functions.values():
        fn()
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], 1000 * (time.perf_counter() - start))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, nargs="+", default=[1, 10, 20])
    parser.add_argument("--image", type=int, nargs=2, default=[800, 1200], metavar=("H", "W"))
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--baseline", default=None, help="another checkout to compare with")
    parser.add_argument("--no-whole-image", action="store_true", help="skip the slow whole-image reference")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    height, width = args.image
    baseline = load_baseline_layers(args.baseline) if args.baseline else None
    generator = torch.Generator().manual_seed(0)
    print(
        f"image {height}x{width}, window {args.window}, persons 150-400 px tall, threads {torch.get_num_threads()}, "
        f"best of {args.repeats} (ms)" + (f"; baseline: {args.baseline}" if baseline else "")
    )
    columns = ["persons", "footprint", "masks+boxes"]
    if baseline:
        columns += ["baseline footprint", "baseline masks+boxes"]
    if not args.no_whole_image:
        columns += ["whole image"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for n in args.persons:
        windows = torch.rand(n, args.window, args.window, generator=generator)
        scale = args.window / (150 + 250 * torch.rand(n, generator=generator, dtype=torch.float64))
        m = torch.zeros(n, 3, 3, dtype=torch.float64)
        m[:, 0, 0], m[:, 1, 1], m[:, 2, 2] = scale, scale, 1.0
        m[:, 0, 2] = -scale * (width - 300) * torch.rand(n, generator=generator, dtype=torch.float64)
        m[:, 1, 2] = -scale * (height - 300) * torch.rand(n, generator=generator, dtype=torch.float64)
        size = (height, width)
        functions = {
            "footprint": lambda: warp_windows_to_image(windows, m, size),
            "masks+boxes": lambda: paste_masks(windows, m, size, args.threshold),
        }
        if baseline:
            from detectron2.structures import BitMasks

            def baseline_masks():
                masks = baseline.warp_windows_to_image(windows, m, size) >= args.threshold
                return masks, BitMasks(masks).get_bounding_boxes()

            functions["baseline footprint"] = lambda: baseline.warp_windows_to_image(windows, m, size)
            functions["baseline masks+boxes"] = baseline_masks
            # the same values up to float32 rounding of the sampling grids (the crops lie
            # differently); masks that differ only at pixels within that rounding of the threshold
            new_values, old_values = warp_windows_to_image(windows, m, size), baseline.warp_windows_to_image(windows, m, size)
            assert torch.allclose(new_values, old_values, atol=1e-5, rtol=0)
            ours, theirs = paste_masks(windows, m, size, args.threshold), baseline_masks()
            assert ((new_values - args.threshold).abs()[ours[0] != theirs[0]] < 1e-5).all()
        if not args.no_whole_image:
            functions["whole image"] = lambda: ref_whole_image_warp(windows, m, size)
        best = timings(functions, args.repeats)
        print("| " + " | ".join([str(n)] + [f"{best[c]:.1f}" for c in columns[1:]]) + " |", flush=True)


if __name__ == "__main__":
    main()
