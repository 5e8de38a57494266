#!/usr/bin/env python
"""
Time the ops around Pose2Seg's network for one image: PoseTemplates.fit + skeleton_features
+ affine_align, batched (this package) against the straightforward per-person NumPy path
(tests/reference.py), measured side by side in one run.

    python benchmarks/bench_ops.py [--persons 1 10 30] [--repeats 5] [--device cpu|cuda]

Setting: 3 pose templates (6 with mirrors), a 512x512 image, its stride-4 feature map of
256 channels (128x128), 64x64 windows. affine_align gathers channel vectors, so it wants the
map channels-last; the Pose2Seg model runs its backbone channels-last and gets that for free
(same backbone speed on the CPU). The "NCHW" column adds the layout copy a NCHW map needs.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pose2seg_d2.layers import affine_align  # noqa: E402
from pose2seg_d2.pose import PoseTemplates, scale_matrix, skeleton_features, transform_keypoints  # noqa: E402
from tests.reference import ref_affine_align_one, ref_fit_one, ref_skeleton_one  # noqa: E402

IMAGE = (512, 512)
STRIDE = 4
FEATURE = (IMAGE[0] // STRIDE, IMAGE[1] // STRIDE)
WINDOW = (64, 64)
CHANNELS = 256


def make_templates(rng):
    t = np.zeros((3, 17, 3))
    t[..., :2] = rng.uniform(0.15, 0.85, (3, 17, 2))
    t[..., 2] = rng.uniform(0.3, 1.0, (3, 17))
    return PoseTemplates(t, vis_threshold=0.4)


def make_people(rng, templates, n):
    """Noisy, rotated, scaled copies of the templates in image pixels; ~15% of keypoints unlabeled."""
    people = np.zeros((n, 17, 3))
    for i in range(n):
        tpl = templates.templates[rng.integers(len(templates))].numpy()
        size = rng.uniform(60, 300)
        angle = rng.uniform(-0.4, 0.4)
        c, s = np.cos(angle) * size, np.sin(angle) * size
        xy = tpl[:, :2] @ np.array([[c, s], [-s, c]]) + rng.uniform(50, 400, 2)
        people[i, :, :2] = xy + rng.normal(0, 3, (17, 2))
        people[i, :, 2] = np.where(tpl[:, 2] > 0, rng.choice([1, 2], 17, p=[0.3, 0.7]), 0)
        people[i, rng.random(17) < 0.15, 2] = 0
    return people


def batched(templates, features, people, device, nchw_features=None):
    keypoints = torch.from_numpy(people).float().to(device)
    to_feature = scale_matrix(1.0 / STRIDE, 1.0 / STRIDE, device=device)
    fit = templates.fit(transform_keypoints(keypoints, to_feature), FEATURE, WINDOW)
    t1 = _sync(device)
    window_keypoints = transform_keypoints(transform_keypoints(keypoints, to_feature), fit.matrices)
    skeleton = skeleton_features(window_keypoints, WINDOW)
    t2 = _sync(device)
    batch_index = torch.zeros(len(people), dtype=torch.long, device=device)
    aligned = affine_align(features, fit.matrices, batch_index, WINDOW)
    t3 = _sync(device)
    if nchw_features is not None:
        affine_align(nchw_features, fit.matrices, batch_index, WINDOW)
        return (skeleton, aligned), (t1, t2, t3, _sync(device))
    return (skeleton, aligned), (t1, t2, t3)


def per_person(templates, features, people):
    tpl = templates.templates.numpy()
    feature = np.ascontiguousarray(features[0].cpu().numpy())  # (C, H, W), NumPy's usual layout
    fits, skeletons, aligned = [], [], []
    t0 = time.perf_counter()
    for kpt in people:
        kf = kpt.copy()
        kf[:, :2] /= STRIDE
        fits.append(ref_fit_one(kf, tpl, FEATURE, WINDOW))
    t1 = time.perf_counter()
    for kpt, (matrix, _, _) in zip(people, fits):
        kw = kpt.copy()
        kw[:, :2] = kpt[:, :2] / STRIDE @ matrix[:2, :2].T + matrix[:2, 2]
        kw[kpt[:, 2] <= 0] = 0
        skeletons.append(ref_skeleton_one(kw, WINDOW))
    t2 = time.perf_counter()
    for matrix, _, _ in fits:
        aligned.append(ref_affine_align_one(feature, matrix, WINDOW, dtype=np.float32))
    t3 = time.perf_counter()
    return t0, (t1, t2, t3)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def best_of(fn, repeats):
    """Per-stage seconds of the fastest repeat (by the sum of the first three stages)."""
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _, stamps = fn()
        stamps = (t0,) + tuple(stamps)
        runs.append(tuple(b - a for a, b in zip(stamps[:-1], stamps[1:])))
    return min(runs, key=lambda r: sum(r[:3]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    templates = make_templates(rng)
    nchw = torch.randn(1, CHANNELS, *FEATURE, device=device)
    features = nchw.contiguous(memory_format=torch.channels_last)
    print(f"device={device} threads={torch.get_num_threads()} image={IMAGE} feature map={CHANNELS}x{FEATURE} "
          f"window={WINDOW} templates={len(templates)}")  # fmt: skip
    header = (
        "persons | batched ms: fit / skeleton / align = total | align, total with NCHW map | "
        "per-person ms: fit / skeleton / align = total | speed-up: fit+skeleton, total, total NCHW"
    )
    print(header)
    print("-" * len(header))
    for n in args.persons:
        people = make_people(rng, templates, n)
        batched(templates, features, people, device, nchw)  # warm-up
        fast = best_of(lambda: batched(templates, features, people, device, nchw), args.repeats)
        slow = best_of(lambda: per_person(templates, features, people), max(1, args.repeats // 2))
        f = [1000 * x for x in fast]
        s = [1000 * x for x in slow]
        total, total_nchw = sum(f[:3]), f[0] + f[1] + f[3]
        print(
            f"{n:7d} | {f[0]:6.2f} / {f[1]:6.2f} / {f[2]:7.2f} = {total:7.2f} | {f[3]:7.2f}, {total_nchw:7.2f} | "
            f"{s[0]:7.2f} / {s[1]:7.2f} / {s[2]:8.2f} = {sum(s):8.2f} | "
            f"{(s[0] + s[1]) / (f[0] + f[1]):5.1f}x, {sum(s) / total:5.1f}x, {sum(s) / total_nchw:5.1f}x"
        )


if __name__ == "__main__":
    main()
