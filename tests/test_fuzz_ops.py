"""
Bad keypoints never crash the pose and layer ops: property-based tests with NaN and infinite
coordinates, nothing or one or two keypoints labeled, identical and collinear points,
coordinates far outside the image, tiny and huge persons, zero persons and one-pixel maps.
Each op must return finite outputs and apply its documented fallback.
"""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pose2seg_d2.layers import affine_align, warp_windows_to_image
from pose2seg_d2.pose import (
    FALLBACKS,
    MIN_SPREAD,
    NUM_KEYPOINTS,
    NUM_SKELETON_CHANNELS,
    COCO_PERSON_LIMBS,
    PoseTemplates,
    keypoint_box_matrices,
    resize_padding_matrices,
    skeleton_features,
    transform_keypoints,
)

from .fixtures import ARMS_UP, STANDING
from .fuzz_strategies import finite_labeled, many_persons

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Source (feature map) sizes: one pixel, thin, small, usual.
SRC_SIZES = st.sampled_from([(1, 1), (1, 9), (7, 1), (3, 5), (24, 32), (120, 160)])
WINDOWS = st.sampled_from([(1, 1), (2, 5), (16, 16), (64, 48)])


def _templates():
    t = np.zeros((2, NUM_KEYPOINTS, 3))
    for i, pose in enumerate((STANDING, ARMS_UP)):
        t[i, :, 0] = 0.25 + 0.5 * pose[:, 0]
        t[i, :, 1] = pose[:, 1]
        t[i, :, 2] = 1.0
    t[1, 3:5, 2] = 0.2  # the second template lacks the ears
    return PoseTemplates(t)


TEMPLATES = _templates()


def _assert_invertible_finite(matrices):
    m = matrices.to(torch.float64)
    assert torch.isfinite(m).all(), m
    assert torch.equal(m[:, 2], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand(len(m), 3))
    det = torch.linalg.det(m[:, :2, :2])
    assert (det.abs() > 0).all(), det
    assert torch.isfinite(torch.linalg.inv(m)).all()


@FUZZ
@given(
    keypoints=many_persons(image_size=(120.0, 160.0)),
    src_size=SRC_SIZES,
    dst_size=WINDOWS,
    hard=st.booleans(),
    fallback=st.sampled_from(FALLBACKS),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_fit_never_fails_and_falls_back_as_documented(keypoints, src_size, dst_size, hard, fallback, dtype):
    kpt = torch.from_numpy(keypoints).to(dtype)
    fit = TEMPLATES.fit(kpt, src_size, dst_size, hard=hard, fallback=fallback)
    n = len(kpt)
    assert fit.matrices.shape == (n, 3, 3) and fit.matrices.dtype == torch.float32
    assert fit.scores.shape == (n,) and fit.template_index.shape == (n,)
    _assert_invertible_finite(fit.matrices)
    assert torch.isfinite(fit.scores).all() and (fit.scores >= 0).all() and (fit.scores <= 1).all()
    assert ((fit.template_index >= -1) & (fit.template_index < len(TEMPLATES))).all()
    fell_back = fit.template_index == -1
    assert torch.equal(fell_back, fit.scores == 0)

    # fewer than 3 labeled keypoints, or all of them at one point: no template can fit
    labeled = torch.from_numpy(finite_labeled(kpt.numpy()))
    assert fell_back[labeled.sum(1) < 3].all()
    xy = torch.where(labeled[..., None], kpt[..., :2].double(), torch.nan)
    diagonal = torch.hypot(*(xy.nan_to_num(-1e300).amax(1) - xy.nan_to_num(1e300).amin(1)).unbind(-1))
    assert fell_back[labeled.any(1) & (diagonal <= MIN_SPREAD)].all()
    # the documented fallback, exactly; persons with nothing labeled get the release's
    sizes = torch.tensor(src_size, dtype=torch.float64).expand(n, 2)
    release = resize_padding_matrices(sizes, dst_size).float()
    expected = release if fallback == "whole_map" else keypoint_box_matrices(kpt, sizes, dst_size).float()
    assert torch.equal(fit.matrices[fell_back], expected[fell_back])
    nothing = ~labeled.any(1)
    assert torch.equal(fit.matrices[nothing], release[nothing])
    # an accepted template enlarges more than the release fallback does
    chosen = ~fell_back
    scale = torch.hypot(fit.matrices[chosen, 0, 0].double(), fit.matrices[chosen, 0, 1].double())
    assert (scale > release[chosen, 0, 0].double() * (1 - 1e-6)).all()


@FUZZ
@given(
    keypoints=many_persons(image_size=(40.0, 30.0)),
    size=st.sampled_from([(1, 1), (1, 4), (3, 1), (17, 13), (40, 30)]),
    signed=st.booleans(),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_skeleton_features_are_finite_and_blank_for_unlabeled_keypoints(keypoints, size, signed, dtype):
    kpt = torch.from_numpy(keypoints).to(dtype)
    out = skeleton_features(kpt, size, signed_occluded=signed)
    assert out.shape == (len(kpt), NUM_SKELETON_CHANNELS, *size) and out.dtype == dtype
    assert torch.isfinite(out).all()
    assert (out.abs() <= 1).all()
    labeled = torch.from_numpy(finite_labeled(kpt.numpy()))
    # an unlabeled (or NaN / infinite) keypoint has a blank part map ...
    assert (out[:, :NUM_KEYPOINTS][~labeled] == 0).all()
    # ... and so do its limbs' fields, and limbs whose ends coincide
    limbs = torch.tensor(COCO_PERSON_LIMBS)
    xy = kpt[..., :2].double()
    same = (xy[:, limbs[:, 0]] == xy[:, limbs[:, 1]]).all(-1)
    blank = ~labeled[:, limbs[:, 0]] | ~labeled[:, limbs[:, 1]] | same  # (N, 19)
    fields = out[:, NUM_KEYPOINTS:].reshape(len(kpt), len(limbs), 2, *size)
    assert (fields[blank] == 0).all()
    # directions on the fields are unit vectors
    norm = fields.double().pow(2).sum(2)
    assert ((norm == 0) | ((norm - 1).abs() < 1e-5)).all()


def _odd_matrices(draw_kind, rng, n):
    """(n, 3, 3) float64 feature -> window matrices, some of them singular or not finite."""
    out = np.tile(np.eye(3), (n, 1, 1))
    kinds = []
    for i in range(n):
        kind = draw_kind()
        kinds.append(kind)
        if kind == "similarity":
            s, a = 10 ** rng.uniform(-3, 3), rng.uniform(-np.pi, np.pi)
            out[i, :2, :2] = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            out[i, :2, 2] = rng.uniform(-50, 50, 2)
        elif kind == "tiny":
            out[i, :2, :2] *= 1e-30
            out[i, :2, 2] = 1e20
        elif kind == "huge":
            out[i, :2, :2] *= 1e30
            out[i, :2, 2] = -1e32
        elif kind == "far":
            out[i, :2, 2] = rng.choice([-1e300, 1e18, 3e38], 2)
        elif kind == "singular":
            out[i, :2, :2] = rng.choice([0.0, 1.0]) * np.array([[1.0, 2.0], [2.0, 4.0]])
        elif kind == "nan":
            out[i, rng.integers(0, 2), rng.integers(0, 3)] = np.nan
        elif kind == "inf":
            out[i, rng.integers(0, 2), rng.integers(0, 3)] = rng.choice([np.inf, -np.inf])
    return out, kinds


MATRIX_KINDS = ("similarity", "tiny", "huge", "far", "singular", "nan", "inf")


@FUZZ
@given(
    data=st.data(),
    feature_size=st.sampled_from([(1, 1), (1, 6), (5, 1), (9, 12)]),
    window=WINDOWS,
    num=st.integers(0, 5),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_affine_align_is_finite_and_zero_for_unusable_matrices(data, feature_size, window, num, dtype):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    matrices, _ = _odd_matrices(lambda: data.draw(st.sampled_from(MATRIX_KINDS)), rng, num)
    matrices = torch.from_numpy(matrices)
    if data.draw(st.booleans()):
        matrices = matrices.float()  # float32 over/underflows: 1e-30 squared and 3e38
    features = torch.randn(2, 3, *feature_size, dtype=dtype, requires_grad=True)
    batch_index = torch.from_numpy(rng.integers(0, 2, num))
    out = affine_align(features, matrices, batch_index, window)
    assert out.shape == (num, 3, *window) and out.dtype == dtype
    assert torch.isfinite(out).all()
    # documented fallback: a matrix that is not finite or not invertible gives a zero window
    m = matrices.double()
    unusable = ~torch.isfinite(m).flatten(1).all(1)
    unusable |= torch.linalg.det(torch.nan_to_num(m[:, :2, :2])) == 0
    assert (out[unusable] == 0).all()
    if num:
        out.sum().backward()
        assert torch.isfinite(features.grad).all()


@FUZZ
@given(
    data=st.data(),
    image_size=st.sampled_from([(1, 1), (1, 5), (6, 1), (13, 17)]),
    num=st.integers(0, 4),
)
def test_warp_windows_to_image_is_finite(data, image_size, num):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    matrices, _ = _odd_matrices(lambda: data.draw(st.sampled_from(MATRIX_KINDS)), rng, num)
    windows = torch.rand(num, 8, 8)
    out = warp_windows_to_image(windows, torch.from_numpy(matrices), image_size)
    assert out.shape == (num, *image_size) and torch.isfinite(out).all()
    assert ((out >= 0) & (out <= 1 + 1e-6)).all()


@FUZZ
@given(keypoints=many_persons(image_size=(50.0, 50.0)), src_size=SRC_SIZES, window=WINDOWS)
def test_fit_then_align_then_skeleton_pipeline_is_finite(keypoints, src_size, window):
    """The chain the model runs: fit on the feature map, map keypoints, render, sample."""
    kpt = torch.from_numpy(keypoints).float()
    fit = TEMPLATES.fit(kpt, src_size, window, fallback="keypoint_box")
    window_keypoints = transform_keypoints(kpt, fit.matrices)
    assert not torch.isnan(window_keypoints).any()
    skeleton = skeleton_features(window_keypoints, window)
    features = torch.randn(1, 4, *src_size)
    aligned = affine_align(features, fit.matrices, torch.zeros(len(kpt), dtype=torch.long), window)
    assert torch.isfinite(skeleton).all() and torch.isfinite(aligned).all()


def test_a_matrix_the_fit_accepts_samples_the_same_as_before():
    """The guards for unusable matrices leave ordinary sampling bit-identical."""
    torch.manual_seed(0)
    features = torch.randn(1, 2, 9, 11, dtype=torch.float64)
    m = torch.tensor([[[1.7, -0.3, 2.5], [0.3, 1.7, -1.25], [0, 0, 1]]], dtype=torch.float64)
    out = affine_align(features, m, torch.zeros(1, dtype=torch.long), (20, 24))
    # bilinear sampling with zeros outside, by torch's grid_sample (align_corners=True grid)
    inv = torch.linalg.inv(m[0])
    ys, xs = torch.meshgrid(
        torch.arange(20.0, dtype=torch.float64), torch.arange(24.0, dtype=torch.float64), indexing="ij"
    )
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    grid = torch.stack([sx / (11 - 1) * 2 - 1, sy / (9 - 1) * 2 - 1], -1)[None]
    expected = torch.nn.functional.grid_sample(
        features, grid, mode="bilinear", padding_mode="zeros", align_corners=True
    )
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("fallback", FALLBACKS)
def test_zero_persons(fallback):
    fit = TEMPLATES.fit(torch.zeros(0, NUM_KEYPOINTS, 3), (1, 1), (64, 64), fallback=fallback)
    assert fit.matrices.shape == (0, 3, 3) and fit.scores.shape == (0,) and fit.template_index.shape == (0,)
    assert skeleton_features(torch.zeros(0, NUM_KEYPOINTS, 3), (1, 1)).shape == (0, NUM_SKELETON_CHANNELS, 1, 1)
    out = affine_align(torch.randn(1, 3, 1, 1), torch.zeros(0, 3, 3), torch.zeros(0, dtype=torch.long), (4, 4))
    assert out.shape == (0, 3, 4, 4)
