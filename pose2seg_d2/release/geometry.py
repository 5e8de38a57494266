"""
The geometry of the release's test time (docs/method.md §6) that differs from this project's own: its fixed
square input and the way its windows are sampled. Used by
:class:`pose2seg_d2.release.ReleasePose2Seg`.

Conventions as in :mod:`pose2seg_d2.pose.transforms`: (3, 3) matrices (or batched (N, 3, 3))
with last row (0, 0, 1) mapping column vectors (x, y, 1); pixel (x, y) has its center at integer
coordinates (x, y) (the release's and OpenCV's convention); sizes are (height, width).
"""
import torch
import torch.nn.functional as F

from ..pose import scale_matrix

__all__ = [
    "pixel_from_continuous_matrix",
    "release_input_matrices",
    "feature_from_image_matrices",
    "warp_into_input",
    "input_sampling_grid",
    "align_corners_sampling_matrices",
]


def pixel_from_continuous_matrix(dtype=torch.float64, device=None):
    """(3, 3): Detectron2's continuous coordinates (pixel i spans [i, i + 1]) -> pixel
    coordinates with centers at integers (the release's and COCO's keypoint numbers): x - 0.5."""
    return torch.tensor([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]], dtype=dtype, device=device)


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


def feature_from_image_matrices(image_sizes, input_size, feature_side):
    """
    Args:
        image_sizes (Tensor): (B, 2) (height, width) of the given images.
        input_size (int): S.
        feature_side (int): the side of the square input's feature map, S / stride.

    Returns:
        Tensor (B, 3, 3) float64: image continuous coordinates -> feature-map pixels, the
        release's ``m2 m1`` (:func:`release_input_matrices`, then a plain
        ``feature_side / S`` scale) after Detectron2's +0.5.
    """
    sizes = torch.as_tensor(image_sizes, dtype=torch.float64)
    feature_from_input = scale_matrix(feature_side / input_size, feature_side / input_size, device=sizes.device)
    input_from_image = release_input_matrices(sizes, input_size)
    return feature_from_input @ input_from_image @ pixel_from_continuous_matrix(device=sizes.device)


def warp_into_input(images, input_size):
    """
    The release's input: each image warped by :func:`release_input_matrices` into the S x S
    square, bilinear with zeros outside as cv2.warpAffine, rounded to whole numbers as the
    release's uint8 warp is. (OpenCV's own versions differ from this by a grey level here and
    there: OpenCV 3, which the release ran with, puts samples on a 1/32-pixel grid.)

    Args:
        images (list[Tensor]): B (C, H, W) float32 images, of any sizes, on one device.
        input_size (int): S.

    Returns:
        Tensor (B, C, S, S) float32.
    """
    warped = []
    for image in images:  # one warp per image: sizes differ
        grid = input_sampling_grid(image.shape[-2:], input_size, image.device).to(image.dtype)[None]
        warped.append(F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    return torch.cat(warped).round()


def input_sampling_grid(image_size, input_size, device=None):
    """
    Where each pixel of the S x S input samples its image, for ``grid_sample``.

    Args:
        image_size (tuple[int, int]): (H, W) of the image (ints, or the symbolic sizes of a
            traced graph: only tensor arithmetic follows).
        input_size (int): S.

    Returns:
        Tensor (S, S, 2) float64: input pixel (u, v) -> grid_sample's normalized image
        coordinates (x, y) (``align_corners=False``: image pixel x is at (2x + 1) / W - 1).
    """
    size = torch.tensor([image_size[0], image_size[1]], dtype=torch.float64, device=device)
    input_from_image = release_input_matrices(size[None], input_size)[0]
    # input_from_image only scales by s and shifts by t: image pixel = (input pixel - t) / s
    scale, shift = input_from_image[0, 0], input_from_image[:2, 2]  # shift (x, y)
    normalize = 2.0 / size.flip(0)  # (2 / W, 2 / H)
    pixels = torch.arange(input_size, dtype=torch.float64, device=device)
    # normalized = (2 (u - t) / s + 1) / size - 1, separable in u and v
    offset = normalize * (0.5 - shift / scale) - 1.0  # (2,)
    step = normalize / scale
    x = step[0] * pixels + offset[0]  # (S,) by column u
    y = step[1] * pixels + offset[1]  # (S,) by row v
    return torch.stack([x[None, :].expand(input_size, -1), y[:, None].expand(-1, input_size)], dim=-1)


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
