import numpy as np
import pytest
import torch

from pose2seg_d2.layers import AffineAlign, affine_align

from .reference import ref_affine_align_one

cv2 = pytest.importorskip("cv2")


def random_matrices(rng, n, kind, lattice=None):
    """(n, 3, 3) feature -> window matrices. `lattice`: make the *inverse* hold multiples of
    1/lattice, so every window pixel maps onto source coordinates on that lattice."""
    out = []
    for _ in range(n):
        if kind == "similarity":
            angle, scale = rng.uniform(-np.pi, np.pi), rng.uniform(0.4, 2.5)
            lin = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        else:
            lin = rng.uniform(-1.5, 1.5, (2, 2)) + np.eye(2) * 0.5
        inv = np.eye(3)
        inv[:2, :2] = np.linalg.inv(lin)
        inv[:2, 2] = rng.uniform(-8, 40, 2)  # partly outside the map too
        if lattice:
            inv[:2] = np.round(inv[:2] * lattice) / lattice
        if abs(np.linalg.det(inv[:2, :2])) < 1e-2:
            inv[:2, :2] += np.eye(2)
        out.append(np.linalg.inv(inv))
    return np.stack(out)


@pytest.mark.parametrize("kind", ["similarity", "affine"])
def test_matches_exact_float64_reference(kind):
    rng = np.random.default_rng(1)
    features = rng.standard_normal((3, 5, 37, 45))
    matrices = random_matrices(rng, 9, kind)
    batch_index = rng.integers(0, 3, 9)
    out = affine_align(
        torch.from_numpy(features), torch.from_numpy(matrices), torch.from_numpy(batch_index), (16, 24)
    )
    assert out.shape == (9, 5, 16, 24) and out.dtype == torch.float64
    for n in range(9):
        ref = ref_affine_align_one(features[batch_index[n]], matrices[n], (16, 24))
        assert np.abs(out[n].numpy() - ref).max() < 1e-5, n
    # the windows reach outside the map, so the zero padding was exercised
    assert (out == 0).any()


def test_float32_matches_reference_at_feature_map_size():
    # coordinates and weights are float64 inside the op: float32 features lose nothing more
    # than their own rounding, even far from the origin
    rng = np.random.default_rng(2)
    features = rng.standard_normal((2, 16, 128, 128)).astype(np.float32)
    matrices = random_matrices(rng, 6, "similarity") @ np.diag([0.5, 0.5, 1.0])
    batch_index = np.array([0, 1, 1, 0, 1, 0])
    out = affine_align(
        torch.from_numpy(features), torch.from_numpy(matrices), torch.from_numpy(batch_index), (64, 64)
    )
    assert out.dtype == torch.float32
    for n in range(6):
        ref = ref_affine_align_one(features[batch_index[n]], matrices[n], (64, 64))
        assert np.abs(out[n].numpy() - ref).max() < 1e-5


@pytest.mark.parametrize("kind", ["similarity", "affine"])
def test_matches_cv2_warp_affine(kind):
    # cv2.warpAffine rounds source coordinates to 1/32 pixel (INTER_BITS = 5). Matrices whose
    # inverse lies on that lattice make its rounding exact, so only its float32 weights remain.
    rng = np.random.default_rng(3)
    features = rng.standard_normal((1, 8, 40, 50)).astype(np.float32)
    matrices = random_matrices(rng, 6, kind, lattice=32)
    out = affine_align(
        torch.from_numpy(features), torch.from_numpy(matrices), torch.zeros(6, dtype=torch.long), (32, 40)
    ).numpy()
    image = np.ascontiguousarray(features[0].transpose(1, 2, 0))
    for n in range(6):
        warped = cv2.warpAffine(
            image, matrices[n][:2], (40, 32), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )  # fmt: skip
        assert np.abs(out[n] - warped.transpose(2, 0, 1)).max() < 1e-3


def test_gradcheck_float64():
    rng = np.random.default_rng(4)
    features = torch.from_numpy(rng.standard_normal((2, 2, 7, 9))).requires_grad_(True)
    matrices = torch.from_numpy(random_matrices(rng, 3, "similarity") @ np.diag([0.3, 0.3, 1.0]))
    batch_index = torch.tensor([1, 0, 1])
    assert torch.autograd.gradcheck(lambda f: affine_align(f, matrices, batch_index, (5, 6)), (features,))


def test_gradient_reaches_only_the_sampled_image():
    features = torch.randn(2, 3, 10, 10, requires_grad=True)
    matrices = torch.eye(3)[None]
    affine_align(features, matrices, torch.tensor([1]), (4, 4)).sum().backward()
    assert features.grad[0].abs().sum() == 0
    assert features.grad[1].abs().sum() > 0


def test_identity_copies_the_top_left_corner():
    features = torch.randn(1, 4, 10, 12)
    out = AffineAlign((6, 7))(features, torch.eye(3)[None], torch.zeros(1, dtype=torch.long))
    assert torch.allclose(out[0], features[0, :, :6, :7])


def test_empty_and_bad_input():
    features = torch.randn(2, 3, 8, 8)
    out = affine_align(features, torch.zeros(0, 3, 3), torch.zeros(0, dtype=torch.long), (4, 5))
    assert out.shape == (0, 3, 4, 5)
    with pytest.raises(ValueError, match="batch_index"):
        affine_align(features, torch.eye(3)[None], torch.tensor([2]), (4, 4))
    with pytest.raises(ValueError, match="matrices"):
        affine_align(features, torch.eye(2)[None], torch.tensor([0]), (4, 4))
