import math

import numpy as np
import pytest
import torch

from pose2seg_d2.pose import COCO_PERSON_LIMBS, skeleton_features

from .reference import ref_limb_boundary_distance, ref_skeleton_one

SIZE = (64, 48)


def one_person(points):
    """points: {keypoint index: (x, y, v)} -> (1, 17, 3)."""
    kpt = torch.zeros(1, 17, 3)
    for k, value in points.items():
        kpt[0, k] = torch.tensor(value, dtype=torch.float32)
    return kpt


def test_peaks_signs_and_cutoff():
    kpt = one_person({0: (10, 12, 2), 5: (30, 40, 1)})
    out = skeleton_features(kpt, SIZE, sigma=3.0)
    assert out.shape == (1, 55, 64, 48)
    assert out[0, 0, 12, 10].item() == pytest.approx(1.0)
    assert out[0, 5, 40, 30].item() == pytest.approx(-1.0)
    assert out[0, 0].max().item() == pytest.approx(1.0) and out[0, 0].min().item() >= 0
    # d^2 / 18 = 4.5 < 4.6025 at d = 9: inside; d = 10 -> 5.55: cut to 0
    assert out[0, 0, 12, 19].item() == pytest.approx(math.exp(-4.5), rel=1e-5)
    assert out[0, 0, 12, 20].item() == 0.0
    assert out[0, 0, 22, 10].item() == 0.0
    unsigned = skeleton_features(kpt, SIZE, signed_occluded=False)
    assert unsigned[0, 5, 40, 30].item() == pytest.approx(1.0)
    # every other keypoint channel is empty
    others = [k for k in range(17) if k not in (0, 5)]
    assert out[0, others].abs().sum() == 0


def test_limb_field_holds_the_unit_direction():
    # limb (5, 7): left_shoulder -> left_elbow, index of that pair in the skeleton
    limb = COCO_PERSON_LIMBS.index((5, 7))
    kpt = one_person({5: (10, 10, 2), 7: (34, 28, 2)})  # direction (24, 18) / 30
    out = skeleton_features(kpt, SIZE)
    fx, fy = out[0, 17 + 2 * limb], out[0, 17 + 2 * limb + 1]
    on = fx != 0
    assert on.sum() > 30
    assert torch.allclose(fx[on], torch.tensor(0.8)) and torch.allclose(fy[on], torch.tensor(0.6))
    assert fx[10, 10] == pytest.approx(0.8) and fx[28, 34] == pytest.approx(0.8)  # both ends
    assert fx[19, 22] == pytest.approx(0.8)  # on the segment
    assert fx[10, 20] == 0  # 6 px off the line
    assert fx[37, 46] == 0  # on the line beyond the end's box
    assert out[0, 17:].abs().sum().item() == pytest.approx(on.sum().item() * 1.4)  # no other limb


def test_limbs_with_an_unlabeled_end_are_zero():
    kpt = one_person({5: (10, 10, 2), 7: (30, 30, 0), 8: (20, 20, 2), 10: (20, 20, 2)})
    out = skeleton_features(kpt, SIZE)
    assert out[0, 17:].abs().sum() == 0  # (5, 7) lacks an end; (8, 10) has zero length


def test_nan_keypoints_count_as_unlabeled():
    kpt = one_person({0: (float("nan"), 5, 2), 1: (5, float("inf"), 2), 2: (20, 20, 2)})
    out = skeleton_features(kpt, SIZE)
    assert torch.isfinite(out).all()
    assert out[0, 0].abs().sum() == 0 and out[0, 1].abs().sum() == 0 and out[0, 2].max() == 1


def test_equals_per_person_reference():
    rng = np.random.default_rng(0)
    n = 12
    kpt = np.zeros((n, 17, 3))
    kpt[..., 0] = rng.uniform(-10, SIZE[1] + 10, (n, 17))
    kpt[..., 1] = rng.uniform(-10, SIZE[0] + 10, (n, 17))
    kpt[..., 2] = rng.choice([0, 1, 2], (n, 17))
    kpt[0, 3, :2] = kpt[0, 1, :2]  # a zero-length limb (1, 3)
    for signed in (True, False):
        out = skeleton_features(torch.from_numpy(kpt).float(), SIZE, sigma=2.5, paf_width=1.5,
                                signed_occluded=signed).numpy()  # fmt: skip
        for p in range(n):
            ref = ref_skeleton_one(kpt[p], SIZE, sigma=2.5, width=1.5, signed_occluded=signed)
            # ... and a Gaussian pixel lying within rounding of the cut-off
            e = ((np.arange(SIZE[1]) - kpt[p, :, 0, None, None]) ** 2
                 + (np.arange(SIZE[0])[:, None] - kpt[p, :, 1, None, None]) ** 2) / (2 * 2.5**2)  # fmt: skip
            on_edge = np.abs(e - 4.6025) < 1e-6
            assert not ((np.abs(out[p, :17] - ref[:17]) > 1e-6) & ~on_edge).any(), p
            # float32 may decide a pixel lying within 1e-4 px of a field's edge differently
            ambiguous = ref_limb_boundary_distance(kpt[p], SIZE, width=1.5) < 1e-4
            ambiguous = np.repeat(ambiguous, 2, axis=0)
            diff = np.abs(out[p, 17:] - ref[17:]) > 1e-6
            assert not (diff & ~ambiguous).any(), p
            assert np.abs(ref[17:]).sum() > 0


def test_empty_batch():
    assert skeleton_features(torch.zeros(0, 17, 3), SIZE).shape == (0, 55, 64, 48)
