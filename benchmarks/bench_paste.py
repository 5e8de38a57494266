#!/usr/bin/env python
"""
Warping per-person mask windows back into the image: sampling only each window's footprint
(pose2seg_d2.layers.warp_windows_to_image) against sampling the whole image for every person,
side by side in one run.

    python benchmarks/bench_paste.py [--persons 1 10 20] [--image 800 1200] [--repeats 3]
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pose2seg_d2.layers import warp_windows_to_image  # noqa: E402
from tests.reference import ref_whole_image_warp  # noqa: E402


def best_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, nargs="+", default=[1, 10, 20])
    parser.add_argument("--image", type=int, nargs=2, default=[800, 1200], metavar=("H", "W"))
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    height, width = args.image
    generator = torch.Generator().manual_seed(0)
    print(f"image {height}x{width}, window {args.window}, persons 150-400 px tall, threads {torch.get_num_threads()}")
    print("persons | footprint ms | whole image ms | speed-up")
    for n in args.persons:
        windows = torch.rand(n, args.window, args.window, generator=generator)
        scale = args.window / (150 + 250 * torch.rand(n, generator=generator, dtype=torch.float64))
        m = torch.zeros(n, 3, 3, dtype=torch.float64)
        m[:, 0, 0], m[:, 1, 1], m[:, 2, 2] = scale, scale, 1.0
        m[:, 0, 2] = -scale * (width - 300) * torch.rand(n, generator=generator, dtype=torch.float64)
        m[:, 1, 2] = -scale * (height - 300) * torch.rand(n, generator=generator, dtype=torch.float64)
        fast = best_ms(lambda: warp_windows_to_image(windows, m, (height, width)), args.repeats)
        slow = best_ms(lambda: ref_whole_image_warp(windows, m, (height, width)), args.repeats)
        print(f"{n:7d} | {fast:12.1f} | {slow:14.1f} | {slow / fast:7.1f}x")


if __name__ == "__main__":
    main()
