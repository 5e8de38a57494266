"""Warping per-person window predictions back into the image (docs/method.md §2.7)."""
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..utils import device_constant, to_device
from .affine_align import safe_inverse
from .boxes import boxes_from_masks

__all__ = [
    "warp_windows_to_image",
    "paste_masks",
    "paste_plan",
    "paste_masks_in_crops",
    "paste_image_masks",
    "read_crop_sizes",
    "window_footprints",
]


def window_footprints(image_from_window, window_size, image_size):
    """
    The image pixels a window can reach.

    Args:
        image_from_window (Tensor): (N, 3, 3) float64 window pixels -> image pixels (NaN rows
            for unusable windows, see :func:`safe_inverse`).
        window_size (tuple[int, int]): (h, w).
        image_size: (H, W), or an (N, 2) tensor with one (H, W) per window.

    Returns:
        tuple: ``low`` and ``high`` (N, 2) long (x, y): image pixels ``low <= p < high`` hold
        every pixel whose bilinear sample of the window can be non-zero (the window's pixels
        reach one pixel beyond their centers, -1 < x < w); clipped to the image, empty
        (``low == high``) for unusable windows.
    """
    h, w = window_size
    dtype, device = image_from_window.dtype, image_from_window.device
    corners = device_constant(((-1.0, -1.0), (w, -1.0), (-1.0, h), (w, h)), dtype, device)  # (4, 2)
    mapped = corners @ image_from_window[:, :2, :2].transpose(1, 2) + image_from_window[:, None, :2, 2]
    if isinstance(image_size, torch.Tensor):
        limit = image_size.to(dtype).flip(-1)  # (N, 2) as (W, H)
    else:
        limit = to_device(torch.tensor([float(image_size[1]), float(image_size[0])], dtype=dtype), device)
    finite = torch.isfinite(mapped).all(dim=2).all(dim=1, keepdim=True)
    low = torch.minimum(mapped.amin(dim=1).floor().clamp(min=0), limit)
    high = torch.minimum((mapped.amax(dim=1).floor() + 1).clamp(min=0), limit)
    low = torch.where(finite, low, 0.0).long()
    high = torch.maximum(torch.where(finite, high, 0.0).long(), low)
    return low, high


class _Footprints(NamedTuple):
    """What the warp-back of a set of windows needs of their matrices, computed once."""

    image_from_window: torch.Tensor  # (N, 3, 3) float64, NaN where unusable
    usable: torch.Tensor  # (N,) bool
    low: torch.Tensor  # (N, 2) long (x, y), see window_footprints
    high: torch.Tensor

    @classmethod
    def of(cls, window_from_image, window_size, image_size):
        image_from_window, usable = safe_inverse(window_from_image)
        return cls(image_from_window, usable, *window_footprints(image_from_window, window_size, image_size))

    def __getitem__(self, index):
        if isinstance(index, slice):
            return _Footprints(*(t[index] for t in self))
        return tuple.__getitem__(self, index)

    def largest_extents(self, batch_index, num_images):
        """(B, 2) long: the largest footprint (height, width) of each image's windows, at least
        1 x 1, on the device."""
        extent = (self.high - self.low).flip(-1)  # (N, 2) as (h, w)
        largest = extent.new_ones((num_images, 2))
        return largest.scatter_reduce(0, batch_index[:, None].expand(-1, 2), extent, "amax")

    def largest(self, batch_index, num_images):
        """:meth:`largest_extents` read on the host: one synchronization for all the images."""
        return read_crop_sizes(self.largest_extents(batch_index, num_images))


def read_crop_sizes(extents):
    """(B, 2) crop sizes on the device -> B (height, width) tuples on the host: the warp-back's
    one synchronization."""
    return [tuple(s) for s in extents.tolist()]


def paste_plan(window_from_image, window_size, image_sizes, batch_index, num_images):
    """
    Everything the warp-back of several images' windows computes before the host must know the
    crops' sizes; pure tensor work on the device, without a synchronization (the part
    :class:`~pose2seg_d2.modeling.Pose2Seg` can compile together with its scoring).

    Args:
        window_from_image (Tensor): (N, 3, 3) each window's image pixels -> window pixels.
        window_size (tuple[int, int]): (h, w).
        image_sizes (Tensor): (N, 2) (H, W) of each window's image.
        batch_index (Tensor): (N,) long, the image of each window, ascending.
        num_images (int): B.

    Returns:
        tuple: the windows' footprints (for :func:`paste_masks_in_crops`) and ``extents`` (B, 2)
        long, each image's crop size (the largest footprint, :func:`window_footprints`, of the
        image's windows, at least 1 x 1), to be read on the host with :func:`read_crop_sizes`.
    """
    footprints = _Footprints.of(window_from_image, window_size, image_sizes)
    return footprints, footprints.largest_extents(batch_index, num_images)


def _sample_crops(windows, window_from_image, image_size, crop_size, footprints):
    """
    Each window bilinearly sampled over a crop of the image of size ``crop_size`` that holds
    its footprint and lies inside the image.

    Returns:
        tuple: ``crops`` (N, ch, cw) in the windows' dtype and ``low`` (N, 2) long, the image
        pixel (x, y) of each crop's top-left pixel.
    """
    num, h, w = windows.shape
    height, width = image_size
    crop_h, crop_w = crop_size
    if not (1 <= crop_h <= height and 1 <= crop_w <= width):
        raise ValueError(f"crop size {tuple(crop_size)} must lie within the image size {tuple(image_size)}")
    device = windows.device
    # Move each crop left and up until it lies inside the image: it still holds the footprint
    # (no wider than the crop), and every crop pixel is an image pixel, so pasting needs no
    # clipping.
    low = torch.minimum(footprints.low, to_device(torch.tensor([width - crop_w, height - crop_h]), device))

    # window_from_crop: crop pixel (x, y) is image pixel (x + low_x, y + low_y). grid_sample's
    # normalized coordinates (align_corners=False) of window pixel u are (2u + 1) / size - 1.
    window_from_crop = window_from_image.to(torch.float64)[:, :2, :].clone()
    window_from_crop[:, :, 2] += (window_from_crop[:, :, :2] @ low.to(torch.float64)[:, :, None])[:, :, 0]
    scale = device_constant(((2.0 / w,), (2.0 / h,)), torch.float64, device)  # (2, 1)
    grid_from_crop = window_from_crop * scale
    grid_from_crop[:, :, 2] += scale[:, 0] / 2 - 1
    # Unusable windows sample nothing (their footprint is empty too), nor do windows whose grid
    # could overflow the windows' dtype (absurd matrices: 1e30 window sizes per image pixel).
    extent = to_device(torch.tensor([crop_w, crop_h, 1.0], dtype=torch.float64), device)
    bound = (grid_from_crop.abs() * extent).sum(dim=2)  # (N, 2)
    usable = footprints.usable & (bound < 1e30).all(dim=1)
    outside = device_constant(((0.0, 0.0, -2.0), (0.0, 0.0, -2.0)), torch.float64, device)
    grid_from_crop = torch.where(usable[:, None, None], grid_from_crop, outside)
    xs = torch.arange(crop_w, dtype=torch.float64, device=device)
    ys = torch.arange(crop_h, dtype=torch.float64, device=device)
    from_x = grid_from_crop[:, None, None, :, 0] * xs[None, None, :, None] + grid_from_crop[:, None, None, :, 2]
    from_y = grid_from_crop[:, None, None, :, 1] * ys[None, :, None, None]
    grid = from_x.to(windows.dtype) + from_y.to(windows.dtype)  # (N, crop_h, crop_w, 2)
    # One channel per window: grid_sample is the cheap sampler here (affine_align's gather pays
    # for 256-channel features).
    crops = F.grid_sample(windows[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return crops[:, 0], low


def _paste(crops, low, image_size, out):
    """Write each crop into ``out`` (N, H * W) at its ``low`` (N, 2) (x, y): one scatter."""
    num, crop_h, crop_w = crops.shape
    width = image_size[1]
    rows = (low[:, 1:2] + torch.arange(crop_h, device=crops.device)) * width  # (N, ch)
    cols = low[:, 0:1] + torch.arange(crop_w, device=crops.device)  # (N, cw)
    index = (rows[:, :, None] + cols[:, None, :]).view(num, crop_h * crop_w)
    return out.scatter_(1, index, crops.reshape(num, crop_h * crop_w)).view(num, *image_size)


def warp_windows_to_image(windows, window_from_image, image_size, crop_size=None):
    """
    Args:
        windows (Tensor): (N, h, w) values in each person's window (e.g. probabilities).
        window_from_image (Tensor): (N, 3, 3) mapping image pixel coordinates to window pixel
            coordinates (pixel centers at integers in both).
        image_size (tuple[int, int]): (H, W) of the image.
        crop_size (tuple[int, int]): the (height, width) of the crops sampled, at least every
            window's footprint (as :func:`paste_plan` gives); None: computed here, which reads
            one value from the device.

    Returns:
        Tensor (N, H, W): ``out[n, y, x]`` = bilinear sample of ``windows[n]`` at
        ``window_from_image[n] @ (x, y, 1)``, 0 outside the window. All 0 for a matrix that is
        not finite or not invertible (see :func:`safe_inverse`).

    Only a crop around each window's footprint in the image (:func:`window_footprints`) is
    sampled, all crops of one size, and the crops are pasted into the zeroed output with one
    scatter: the cost grows with the persons' size, not with N times the image, and nothing
    but ``crop_size`` is read on the host. The sampling grid is built in the windows' dtype
    from float64 matrices (for float32 windows, coordinates are off by well under 1e-3 window
    pixels).
    """
    num, h, w = windows.shape
    height, width = int(image_size[0]), int(image_size[1])
    out = windows.new_zeros((num, height * width))
    if num == 0:
        return out.view(num, height, width)
    footprints = _Footprints.of(window_from_image, (h, w), (height, width))
    if crop_size is None:
        crop_size = footprints.largest(torch.zeros(num, dtype=torch.long, device=windows.device), 1)[0]
    crops, low = _sample_crops(windows, window_from_image, (height, width), crop_size, footprints)
    return _paste(crops, low, (height, width), out)


def paste_masks(windows, window_from_image, image_size, threshold, crop_size=None):
    """
    Masks in the image from probabilities in the windows: :func:`warp_windows_to_image`
    thresholded, without the full-size float tensor, with the masks' boxes.

    Args:
        windows, window_from_image, image_size, crop_size: as :func:`warp_windows_to_image`.
        threshold (float): a pixel belongs to the mask where the warped value is >= this; must
            be > 0 (pixels no window reaches are 0).

    Returns:
        tuple: ``masks`` (N, H, W) bool, equal to ``warp_windows_to_image(...) >= threshold``,
        and ``boxes`` (N, 4) float32 (x1, y1, x2, y2): each mask's tight box in pixel edges
        (``BitMasks.get_bounding_boxes``), all 0 for an empty mask.
    """
    if not threshold > 0:
        raise ValueError(f"paste_masks: the threshold must be > 0, got {threshold}")
    num, h, w = windows.shape
    height, width = int(image_size[0]), int(image_size[1])
    if num == 0:
        empty = torch.zeros((0, height, width), dtype=torch.bool, device=windows.device)
        return empty, torch.zeros(0, 4, device=windows.device)
    footprints = _Footprints.of(window_from_image, (h, w), (height, width))
    if crop_size is None:
        crop_size = footprints.largest(torch.zeros(num, dtype=torch.long, device=windows.device), 1)[0]
    return paste_image_masks(windows, window_from_image, (height, width), threshold, crop_size, footprints)


def paste_image_masks(windows, window_from_image, image_size, threshold, crop_size, footprints):
    """
    :func:`paste_masks` of one image's windows, given the crop size and the footprints
    (:func:`paste_plan`): tensor work alone, no value read on the host.

    Returns:
        tuple: ``masks`` (n, H, W) bool and ``boxes`` (n, 4) float32.
    """
    crops, low = _sample_crops(windows, window_from_image, image_size, crop_size, footprints)
    inside = crops >= threshold
    out = torch.zeros((windows.shape[0], image_size[0] * image_size[1]), dtype=torch.bool, device=windows.device)
    return _paste(inside, low, image_size, out), boxes_from_masks(inside, offsets=low)


def _check_per_image(windows, image_sizes, counts, threshold):
    if not threshold > 0:
        raise ValueError(f"paste_masks: the threshold must be > 0, got {threshold}")
    if sum(counts) != len(windows) or len(counts) != len(image_sizes):
        raise ValueError(
            f"paste_masks_in_crops: counts {counts} do not match {len(windows)} windows and {len(image_sizes)} images"
        )


def paste_masks_in_crops(
    windows, window_from_image, footprints, image_sizes, counts, crops, threshold, windows_per_chunk=0
):
    """
    :func:`paste_masks` for the windows of several images, once the host knows the crops'
    sizes: :func:`paste_plan`, then :func:`read_crop_sizes` (one synchronization for all the
    images, whatever the numbers of windows and images), then this.

    Args:
        windows (Tensor): (N, h, w), the windows of image 0, then those of image 1, ...
        window_from_image (Tensor): (N, 3, 3), each window's image pixels -> window pixels.
        footprints: from :func:`paste_plan`.
        image_sizes (list[tuple[int, int]]): (H, W) of each image.
        counts (list[int]): the number of windows of each image (sum N).
        crops (list[tuple[int, int]]): each image's crop size (:func:`read_crop_sizes`).
        threshold (float): as :func:`paste_masks`.
        windows_per_chunk (int): an image's windows are sampled and pasted this many at a time
            (0: all at once), so that one chunk's crops and sampling grids are held at a time;
            the masks are the same.

    Returns:
        list[tuple]: per image, ``masks`` (n, H, W) bool and ``boxes`` (n, 4) float32.
    """
    _check_per_image(windows, image_sizes, counts, threshold)
    device = windows.device
    out, start = [], 0
    for size, count, crop in zip(image_sizes, counts, crops):
        size = (int(size[0]), int(size[1]))
        members = slice(start, start + count)
        start += count
        if count == 0:
            out.append((torch.zeros(0, *size, dtype=torch.bool, device=device), torch.zeros(0, 4, device=device)))
            continue
        step = windows_per_chunk or count
        if count <= step:
            out.append(
                paste_image_masks(windows[members], window_from_image[members], size, threshold, crop, footprints[members])
            )
            continue
        masks = torch.empty((count, *size), dtype=torch.bool, device=device)
        boxes = torch.empty((count, 4), device=device)
        for low in range(0, count, step):
            chunk = slice(members.start + low, members.start + min(low + step, count))
            masks[low : low + step], boxes[low : low + step] = paste_image_masks(
                windows[chunk], window_from_image[chunk], size, threshold, crop, footprints[chunk]
            )
        out.append((masks, boxes))
    return out
