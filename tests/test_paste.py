import numpy as np
import torch

from pose2seg_d2.layers import warp_windows_to_image

from .reference import ref_whole_image_warp
from .test_affine_align import random_matrices


def test_footprint_warp_equals_the_whole_image_warp():
    rng = np.random.default_rng(0)
    windows = torch.from_numpy(rng.uniform(0, 1, (7, 12, 10)))
    # windows of persons of several sizes, some partly or wholly outside the image
    window_from_image = torch.from_numpy(random_matrices(rng, 7, "similarity"))
    window_from_image[:, :2] *= torch.from_numpy(rng.uniform(0.2, 1.5, (7, 1, 1)))
    window_from_image[6, :2, 2] += 500.0  # maps the image far away from the window
    for size in ((40, 56), (33, 21)):
        ours = warp_windows_to_image(windows, window_from_image, size)
        reference = ref_whole_image_warp(windows, window_from_image, size)
        assert ours.shape == (7, *size)
        assert torch.allclose(ours, reference, atol=1e-9)
        assert (reference[:6] > 0).any() and (ours[6] == 0).all()


def test_window_covering_the_whole_image_and_singular_matrix():
    windows = torch.ones(2, 8, 8)
    window_from_image = torch.stack([torch.diag(torch.tensor([0.1, 0.1, 1.0])), torch.zeros(3, 3)])
    out = warp_windows_to_image(windows, window_from_image, (50, 60))
    assert torch.allclose(out[0], ref_whole_image_warp(windows[:1], window_from_image[:1], (50, 60))[0])
    assert (out[1] == 0).all()
