"""
The geometry of the release's test time (SPEC §6) that differs from this project's own: its fixed
square input and the way its windows are sampled. Used by
:class:`pose2seg_d2.modeling.ReleasePose2Seg`.

Conventions as in :mod:`pose2seg_d2.pose.transforms`: (3, 3) matrices (or batched (N, 3, 3))
with last row (0, 0, 1) mapping column vectors (x, y, 1); pixel (x, y) has its center at integer
coordinates (x, y) (the release's and OpenCV's convention); sizes are (height, width).
"""
import torch

__all__ = ["release_input_matrices", "align_corners_sampling_matrices"]


def release_input_matrices(image_sizes, input_size):
    """
    The release's input transform (its ``get_aug_matrix`` with no augmentation): each image
    scaled by ``s = min(S / W, S / H)`` about its center (W / 2, H / 2), which lands on the
    center (S / 2, S / 2) of the S x S input: ``x' = s x + S / 2 - s W / 2``, likewise in y.

    Args:
        image_sizes (Tensor): (B, 2) (height, width) of the images.
        input_size (int): S.

    Returns:
        Tensor (B, 3, 3) float64: image pixels -> input pixels (centers at integers in both).
    """
    sizes = torch.as_tensor(image_sizes, dtype=torch.float64)
    height, width = sizes[:, 0], sizes[:, 1]
    s = torch.minimum(input_size / width, input_size / height)
    m = torch.zeros(sizes.shape[0], 3, 3, dtype=torch.float64, device=sizes.device)
    m[:, 0, 0], m[:, 1, 1], m[:, 2, 2] = s, s, 1.0
    m[:, 0, 2] = input_size / 2.0 - s * width / 2.0
    m[:, 1, 2] = input_size / 2.0 - s * height / 2.0
    return m


def align_corners_sampling_matrices(window_from_feature, feature_size):
    """
    The matrices that sample the windows as the release did, for :func:`affine_align`.

    The release turns each window matrix M (feature pixels -> window pixels) into a grid over
    the *whole* (H, W) feature map with PyTorch 1.0's ``affine_grid`` (normalizing by
    ``[[2 / W, 0, -1], [0, 2 / H, -1]]``), crops the grid to the window, and samples with
    ``grid_sample``. Both aligned corners then: window pixel j stands for ``j W / (W - 1)`` in
    M's frame, and the point p found there is read at feature pixel ``p (W - 1) / W`` (likewise
    in y with H). The window it sampled is therefore that of ``D M D^-1``,
    ``D = diag((W - 1) / W, (H - 1) / H, 1)``.

    Args:
        window_from_feature (Tensor): (N, 3, 3) M.
        feature_size (tuple[int, int]): (H, W) of the feature map.

    Returns:
        Tensor (N, 3, 3) float64: ``D M D^-1``.
    """
    h, w = int(feature_size[0]), int(feature_size[1])
    d = window_from_feature.new_tensor([(w - 1) / w, (h - 1) / h, 1.0], dtype=torch.float64)
    return d[:, None] * window_from_feature.to(torch.float64) / d
