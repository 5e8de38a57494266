import numpy as np
import pytest
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


def test_paste_masks_equal_the_thresholded_warp_and_their_boxes():
    from detectron2.structures import BitMasks

    from pose2seg_d2.layers import paste_masks, paste_masks_in_crops, paste_plan, read_crop_sizes

    rng = np.random.default_rng(1)
    windows = torch.from_numpy(rng.uniform(0, 1, (7, 12, 10))).float()
    window_from_image = torch.from_numpy(random_matrices(rng, 7, "similarity"))
    window_from_image[:, :2] *= torch.from_numpy(rng.uniform(0.2, 1.5, (7, 1, 1)))
    window_from_image[6, :2, 2] += 500.0  # nothing in the image: an empty mask, a zero box
    for size in ((40, 56), (33, 21)):
        masks, boxes = paste_masks(windows, window_from_image, size, 0.5)
        expected = warp_windows_to_image(windows, window_from_image, size) >= 0.5
        assert masks.dtype == torch.bool and torch.equal(masks, expected)
        assert expected[:6].any() and not expected[6].any()
        assert torch.equal(boxes, BitMasks(expected).get_bounding_boxes().tensor)
    # several images at once, as the model's inference pastes them: the same as one call per image
    sizes, counts = [(40, 56), (30, 20), (33, 21)], [4, 0, 3]
    repeats = torch.tensor(counts)
    batch_index = torch.arange(len(counts)).repeat_interleave(repeats)
    window_sizes = torch.tensor(sizes).repeat_interleave(repeats, dim=0)
    footprints, extents = paste_plan(window_from_image, (12, 10), window_sizes, batch_index, len(counts))
    crops = read_crop_sizes(extents)
    per_image = paste_masks_in_crops(windows, window_from_image, footprints, sizes, counts, crops, 0.5)
    assert [m.shape for m, _ in per_image] == [(4, 40, 56), (0, 30, 20), (3, 33, 21)]
    for (masks, boxes), size, members in zip(per_image, sizes, (slice(0, 4), slice(4, 4), slice(4, 7))):
        ours = paste_masks(windows[members], window_from_image[members], size, 0.5)
        assert torch.equal(masks, ours[0]) and torch.equal(boxes, ours[1])
    with pytest.raises(ValueError, match="counts"):
        paste_masks_in_crops(windows, window_from_image, footprints, sizes, [4, 0, 2], crops, 0.5)


def test_boxes_from_masks_equal_detectron2s():
    from detectron2.structures import BitMasks

    from pose2seg_d2.layers import boxes_from_masks

    masks = torch.from_numpy(np.random.default_rng(2).random((6, 9, 13)) < 0.02)
    masks[0] = False
    masks[1, 4, 7] = True
    masks[2, :, -1] = True
    assert torch.equal(boxes_from_masks(masks), BitMasks(masks).get_bounding_boxes().tensor)
    shifted = boxes_from_masks(masks, offsets=torch.tensor([[3, 5]] * 6))
    expected = BitMasks(masks).get_bounding_boxes().tensor + torch.tensor([3.0, 5.0, 3.0, 5.0])
    expected[~masks.flatten(1).any(dim=1)] = 0  # empty masks (0 and 5): no offset
    assert (expected[[0, 5]] == 0).all() and (expected[1:5] > 0).all()
    assert torch.equal(shifted, expected)
