"""
Affine matrices between image, feature-map and window pixel coordinates.

Conventions: every matrix is (3, 3) (or batched (N, 3, 3)) with last row (0, 0, 1) and maps
column vectors (x, y, 1) of pixel coordinates of one space to another; pixel (x, y) has its
center at integer coordinates (x, y). Sizes are (height, width).
"""
import math

import torch

from ..utils import device_constant, to_device

__all__ = [
    "MAX_COORDINATE",
    "labeled_mask",
    "labeled_keypoint_box",
    "resize_padding_matrix",
    "resize_padding_matrices",
    "per_person_sizes",
    "keypoint_boxes",
    "keypoint_box_matrices",
    "keypoint_box_roi_matrices",
    "scale_matrix",
    "feature_from_input_matrix",
    "continuous_from_pixel_matrices",
    "transform_keypoints",
    "mirror_keypoints",
    "random_window_augmentation",
]


# Keypoints further than this from the origin (in pixels of any of the image, feature-map or
# window spaces) are treated as unlabeled: no image is that large, and bounding the coordinates
# keeps every matrix and mapped keypoint derived from them finite in float32.
MAX_COORDINATE = 1e7


def labeled_mask(keypoints):
    """
    Which keypoints are labeled. This is the single place that decides it, so messy keypoints
    (a pose estimator's NaN, infinite or absurd coordinates) are *treated as unlabeled*
    everywhere: by the template fit, the fallbacks, :func:`transform_keypoints` and the
    skeleton features.

    Args:
        keypoints (Tensor): (..., K, 3) of (x, y, v).

    Returns:
        BoolTensor (..., K): v > 0 with x, y and v finite and ``|x|, |y| <=``
        :data:`MAX_COORDINATE`. Keypoints with a NaN or infinite value, or a coordinate beyond
        that bound, are unlabeled.
    """
    # |x|, |y| <= MAX_COORDINATE and |v| <= the largest float: False for NaN and infinite values
    bounds = (MAX_COORDINATE, MAX_COORDINATE, torch.finfo(torch.float64).max)
    bounds = device_constant(bounds, torch.float64, keypoints.device)
    return (keypoints.abs() <= bounds).all(dim=-1) & (keypoints[..., 2] > 0)


def labeled_keypoint_box(keypoints):
    """
    Args:
        keypoints (Tensor): (N, K, 3).

    Returns:
        tuple: ``low`` and ``high`` (N, 2) float64, the min and max (x, y) of each person's
        labeled keypoints (see :func:`labeled_mask`), and ``any_labeled`` (N,) bool; ``low`` and
        ``high`` are meaningless where ``any_labeled`` is False.
    """
    labeled = labeled_mask(keypoints)
    xy = torch.nan_to_num(keypoints[..., :2].to(torch.float64), nan=0.0, posinf=0.0, neginf=0.0)
    big = torch.finfo(torch.float64).max
    low = torch.where(labeled[..., None], xy, big).amin(dim=1)
    high = torch.where(labeled[..., None], xy, -big).amax(dim=1)
    return low, high, labeled.any(dim=1)


def resize_padding_matrix(src_size, dst_size, dtype=torch.float64, device=None):
    """
    The "whole_map" fallback (the release's): squeeze the whole source into the destination,
    aspect kept, centered.

    Args:
        src_size, dst_size (tuple[int, int]): (height, width).

    Returns:
        Tensor (3, 3): scale ``s = min(dst_w / src_w, dst_h / src_h)`` and a translation that
        centers the scaled source.
    """
    (src_h, src_w), (dst_h, dst_w) = src_size, dst_size
    s = min(dst_w / src_w, dst_h / src_h)
    return torch.tensor(
        [[s, 0.0, (dst_w - src_w * s) / 2.0], [0.0, s, (dst_h - src_h * s) / 2.0], [0.0, 0.0, 1.0]],
        dtype=dtype,
        device=device,
    )


def resize_padding_matrices(src_sizes, dst_size):
    """
    :func:`resize_padding_matrix` for many sources at once.

    Args:
        src_sizes (Tensor): (N, 2) source (height, width) of each person.
        dst_size (tuple[int, int]): (height, width).

    Returns:
        Tensor (N, 3, 3) float64.
    """
    src_sizes = torch.as_tensor(src_sizes, dtype=torch.float64)
    src_h, src_w = src_sizes[:, 0], src_sizes[:, 1]
    dst_h, dst_w = dst_size
    s = torch.minimum(dst_w / src_w, dst_h / src_h)
    m = torch.zeros(src_sizes.shape[0], 3, 3, dtype=torch.float64, device=src_sizes.device)
    m[:, 0, 0], m[:, 1, 1], m[:, 2, 2] = s, s, 1.0
    m[:, 0, 2] = (dst_w - src_w * s) / 2.0
    m[:, 1, 2] = (dst_h - src_h * s) / 2.0
    return m


def per_person_sizes(size, num, device=None):
    """(N, 2) float64 (height, width): ``size`` as given if it is (N, 2), else repeated."""
    sizes = torch.as_tensor(size, dtype=torch.float64, device=device)
    if sizes.dim() == 1:
        sizes = sizes.expand(num, 2)
    if sizes.shape != (num, 2):
        raise ValueError(f"sizes must be (height, width) or ({num}, 2), got {tuple(sizes.shape)}")
    return sizes


def keypoint_boxes(keypoints, src_sizes, enlarge, min_side_fraction):
    """
    Each person's box of labeled keypoints, grown by ``enlarge`` about its center, each side at
    least ``min_side_fraction`` of the longer source side.

    Args:
        keypoints (Tensor): (N, K, 3) in source pixels.
        src_sizes (Tensor): (N, 2) source (height, width) of each person.

    Returns:
        tuple: ``center`` (N, 2) float64 (x, y) in the keypoints' coordinates, ``side`` (N, 2)
        float64 (width, height) and ``any_labeled`` (N,) bool (see :func:`labeled_mask`). A person
        with no labeled keypoint gets center (0, 0) and the smallest side; one labeled keypoint,
        or several at one point, the smallest box around it.
    """
    low, high, any_labeled = labeled_keypoint_box(keypoints)
    center = torch.where(any_labeled[:, None], (low + high) / 2, low.new_zeros(()))
    min_side = min_side_fraction * src_sizes.amax(dim=1, keepdim=True)
    side = torch.maximum(torch.where(any_labeled[:, None], (high - low) * enlarge, low.new_zeros(())), min_side)
    return center, side, any_labeled


def keypoint_box_matrices(keypoints, src_size, dst_size, enlarge=1.25, min_side_fraction=0.125):
    """
    The "keypoint_box" fallback, which keeps small persons large: each person's
    :func:`keypoint_boxes` fitted into the destination with aspect kept and centered.

    Args:
        keypoints (Tensor): (N, K, 3) in source pixels.
        src_size: source (height, width), or an (N, 2) tensor of one per person.
        dst_size (tuple[int, int]): (height, width).
        enlarge, min_side_fraction (float): as :func:`keypoint_boxes`.

    Returns:
        Tensor (N, 3, 3) float64. A person with no labeled keypoint (NaN, infinite and
        out-of-bound keypoints are unlabeled, see :func:`labeled_mask`) gets
        :func:`resize_padding_matrix`. The matrices are finite and invertible in float32 too,
        for sources of at least one pixel.
    """
    src_sizes = per_person_sizes(src_size, keypoints.shape[0], keypoints.device)
    center, side, any_labeled = keypoint_boxes(keypoints, src_sizes, enlarge, min_side_fraction)
    dst_h, dst_w = dst_size
    scale = torch.minimum(dst_w / side[:, 0], dst_h / side[:, 1])
    matrices = torch.zeros(keypoints.shape[0], 3, 3, dtype=torch.float64, device=keypoints.device)
    matrices[:, 0, 0] = scale
    matrices[:, 1, 1] = scale
    matrices[:, 0, 2] = dst_w / 2.0 - scale * center[:, 0]
    matrices[:, 1, 2] = dst_h / 2.0 - scale * center[:, 1]
    matrices[:, 2, 2] = 1.0
    whole_map = resize_padding_matrices(src_sizes, dst_size)
    return torch.where(any_labeled[:, None, None], matrices, whole_map)


def keypoint_box_roi_matrices(keypoints, src_size, window_size, enlarge=1.2, min_side_fraction=0.125):
    """
    ROIAlign over each person's :func:`keypoint_boxes` as an affine map (the paper's box-based
    ablation); persons with no labeled keypoint get the whole source.

    The box is stretched to the window (aspect not kept), as ROIAlign does: window pixel u
    samples the box at ``x1 + (u + 0.5) * box_w / w`` in continuous coordinates (source pixel i
    spans [i, i + 1]), which is torchvision's ``roi_align(..., aligned=True, sampling_ratio=1)``.

    Args:
        keypoints (Tensor): (N, K, 3) in source pixel coordinates (centers at integers).
        src_size: source (height, width), or an (N, 2) tensor of one per person.
        window_size (tuple[int, int]): (h, w).
        enlarge, min_side_fraction (float): as :func:`keypoint_boxes`.

    Returns:
        Tensor (N, 3, 3) float64: source pixels -> window pixels.
    """
    num = keypoints.shape[0]
    sizes = per_person_sizes(src_size, num, keypoints.device)
    center, side, any_labeled = keypoint_boxes(keypoints, sizes, enlarge, min_side_fraction)
    whole = sizes.flip(-1)  # (w, h) of the source
    # continuous coordinates: the pixel centers' box center + 0.5
    center = torch.where(any_labeled[:, None], center + 0.5, whole / 2)
    side = torch.where(any_labeled[:, None], side, whole)
    h, w = window_size
    scale = torch.stack([w / side[:, 0], h / side[:, 1]], dim=1)
    matrices = torch.zeros(num, 3, 3, dtype=torch.float64, device=keypoints.device)
    matrices[:, 0, 0], matrices[:, 1, 1], matrices[:, 2, 2] = scale[:, 0], scale[:, 1], 1.0
    # u = (x + 0.5 - x1) * scale - 0.5, with x1 = center - side / 2
    matrices[:, :2, 2] = (0.5 - (center - side / 2)) * scale - 0.5
    return matrices


def scale_matrix(sx, sy, dtype=torch.float64, device=None):
    """
    The matrix scaling x by ``sx`` and y by ``sy`` (e.g. input image -> feature map: 1 / stride).

    Args:
        sx, sy (float or Tensor): numbers, giving a (3, 3) matrix; or (N,) tensors, giving
            (N, 3, 3) matrices (on their device, in ``dtype``).
    """
    if isinstance(sx, torch.Tensor):
        sx, sy = sx.to(dtype), sy.to(dtype)
        return torch.diag_embed(torch.stack([sx, sy, torch.ones_like(sx)], dim=-1))
    return torch.tensor([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]], dtype=dtype, device=device)


def feature_from_input_matrix(stride, dtype=torch.float64, device=None):
    """
    (3, 3) map from input-image continuous coordinates (pixel i spans [i, i + 1], Detectron2's
    keypoint convention) to feature-map pixel coordinates (centers at integers): feature pixel
    j covers input [stride * j, stride * (j + 1)), so j = x / stride - 0.5.
    """
    s = 1.0 / stride
    return torch.tensor([[s, 0.0, -0.5], [0.0, s, -0.5], [0.0, 0.0, 1.0]], dtype=dtype, device=device)


def continuous_from_pixel_matrices(scales):
    """
    Maps from pixel coordinates (centers at integers) of an image to continuous coordinates
    (pixel i spans [i, i + 1]) of a copy resized by ``scales``: x -> (x + 0.5) * scale_x.

    Args:
        scales (Tensor): (N, 2) (scale_x, scale_y).

    Returns:
        Tensor (N, 3, 3) in the scales' dtype, on their device.
    """
    sx, sy = scales.unbind(1)
    zero, one = torch.zeros_like(sx), torch.ones_like(sx)
    return torch.stack([sx, zero, 0.5 * sx, zero, sy, 0.5 * sy, zero, zero, one], dim=1).view(-1, 3, 3)


def transform_keypoints(keypoints, matrices):
    """
    Args:
        keypoints (Tensor): (N, K, 3) of (x, y, v).
        matrices (Tensor): (N, 3, 3) or (3, 3).

    Returns:
        Tensor (N, K, 3) in the keypoints' dtype: (x, y) mapped by the matrices, v unchanged.
        Unlabeled keypoints (see :func:`labeled_mask`) become (0, 0, 0).
    """
    matrices = matrices.to(device=keypoints.device, dtype=torch.float64)
    if matrices.dim() == 2:
        matrices = matrices.expand(keypoints.shape[0], 3, 3)
    labeled = labeled_mask(keypoints)
    xy = keypoints[..., :2].to(torch.float64)
    mapped = xy @ matrices[:, :2, :2].transpose(1, 2) + matrices[:, None, :2, 2]
    out = torch.cat([mapped, keypoints[..., 2:3].to(torch.float64)], dim=-1)
    return torch.where(labeled[..., None], out, out.new_zeros(())).to(keypoints.dtype)


def mirror_keypoints(keypoints, widths, flip_indices):
    """
    Persons' keypoints in the horizontal mirror image of their image: x -> W - x in continuous
    coordinates (pixel i spans [i, i + 1], so it becomes pixel W - 1 - i, as ``image.flip(-1)``
    moves it), and the rows permuted by the flip map, so that the left wrist of the mirrored
    person (the original right wrist) is in the left wrist's row.

    Args:
        keypoints (Tensor): (N, K, 3) of (x, y, v) in the image's continuous coordinates.
        widths (Tensor or float): (N,) or one width W of each person's image.
        flip_indices (sequence[int]): K indices, ``mirrored[:, k] = keypoints[:, flip_indices[k]]``
            (:func:`~pose2seg_d2.pose.keypoints.flip_permutation`).

    Returns:
        Tensor (N, K, 3) in the keypoints' dtype and device; y and v unchanged; unlabeled
        keypoints (see :func:`labeled_mask`) are (0, 0, 0).
    """
    if len(flip_indices) != keypoints.shape[1]:
        raise ValueError(f"mirror_keypoints: {len(flip_indices)} flip indices for {keypoints.shape[1]} keypoints")
    widths = torch.as_tensor(widths, dtype=torch.float64, device=keypoints.device).expand(keypoints.shape[0])
    mirror_from_image = scale_matrix(-torch.ones_like(widths), torch.ones_like(widths)).clone()
    mirror_from_image[:, 0, 2] = widths
    index = torch.as_tensor(list(flip_indices), dtype=torch.long, device=keypoints.device)
    return transform_keypoints(keypoints, mirror_from_image)[:, index]


def random_window_augmentation(
    num, dst_size, angle_range, scale_range, translate_range, generator=None, device=None
):
    """
    Random similarity transforms of the window about its center (training augmentation).

    Args:
        num (int): how many.
        dst_size (tuple[int, int]): window (h, w).
        angle_range (tuple[float, float]): rotation in degrees.
        scale_range (tuple[float, float]): uniform scale factor.
        translate_range (tuple[float, float]): shift as a fraction of the window side.
        generator (torch.Generator): draws the numbers, on its device; None: the default
            generator of ``device``.
        device: where the result goes (None: the CPU).

    Returns:
        Tensor (num, 3, 3) float64 mapping window coordinates to augmented window coordinates:
        ``T(center + t * size) @ R(angle) S(scale) @ T(-center)``.
    """
    h, w = dst_size
    # drawn where the generator draws (the device, without one), so that no host data is copied
    draw_device = generator.device if generator is not None else torch.device(device or "cpu")

    def uniform(bounds, *shape):
        lo, hi = float(bounds[0]), float(bounds[1])
        return lo + (hi - lo) * torch.rand(*shape, generator=generator, dtype=torch.float64, device=draw_device)

    angle = uniform(angle_range, num) * (math.pi / 180.0)
    scale = uniform(scale_range, num)
    shift = uniform(translate_range, num, 2) * device_constant((float(w), float(h)), torch.float64, draw_device)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    m = torch.zeros(num, 3, 3, dtype=torch.float64, device=draw_device)
    m[:, 0, 0], m[:, 0, 1] = cos, -sin
    m[:, 1, 0], m[:, 1, 1] = sin, cos
    m[:, 0, 2] = cx + shift[:, 0] - (cos * cx - sin * cy)
    m[:, 1, 2] = cy + shift[:, 1] - (sin * cx + cos * cy)
    m[:, 2, 2] = 1.0
    return m if device is None else to_device(m, device)
