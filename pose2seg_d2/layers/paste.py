"""Warping per-person window predictions back into the image (SPEC §2.7)."""
import torch
import torch.nn.functional as F

from .affine_align import safe_inverse, window_to_source_coordinates

__all__ = ["warp_windows_to_image", "window_footprints"]


def window_footprints(image_from_window, window_size, image_size):
    """
    The image pixels a window can reach.

    Args:
        image_from_window (Tensor): (N, 3, 3) float64 window pixels -> image pixels (NaN rows
            for unusable windows, see :func:`safe_inverse`).
        window_size (tuple[int, int]): (h, w).
        image_size (tuple[int, int]): (H, W).

    Returns:
        tuple: ``low`` and ``high`` (N, 2) long (x, y): image pixels ``low <= p < high`` hold
        every pixel whose bilinear sample of the window can be non-zero (the window's pixels
        reach one pixel beyond their centers, -1 < x < w); clipped to the image, empty
        (``low == high``) for unusable windows.
    """
    h, w = window_size
    corners = image_from_window.new_tensor([[-1.0, -1.0], [w, -1.0], [-1.0, h], [w, h]])  # (4, 2)
    mapped = corners @ image_from_window[:, :2, :2].transpose(1, 2) + image_from_window[:, None, :2, 2]
    limit = image_from_window.new_tensor([image_size[1], image_size[0]])
    finite = torch.isfinite(mapped).all(dim=2).all(dim=1, keepdim=True)
    low = torch.minimum(torch.maximum(mapped.amin(dim=1).floor(), limit.new_zeros(())), limit)
    high = torch.minimum(torch.maximum(mapped.amax(dim=1).floor() + 1, limit.new_zeros(())), limit)
    low = torch.where(finite, low, 0.0).long()
    high = torch.maximum(torch.where(finite, high, 0.0).long(), low)
    return low, high


def warp_windows_to_image(windows, window_from_image, image_size):
    """
    Args:
        windows (Tensor): (N, h, w) values in each person's window (e.g. probabilities).
        window_from_image (Tensor): (N, 3, 3) mapping image pixel coordinates to window pixel
            coordinates (pixel centers at integers in both).
        image_size (tuple[int, int]): (H, W) of the image.

    Returns:
        Tensor (N, H, W): ``out[n, y, x]`` = bilinear sample of ``windows[n]`` at
        ``window_from_image[n] @ (x, y, 1)``, 0 outside the window. All 0 for a matrix that is
        not finite or not invertible (see :func:`safe_inverse`).

    Only each window's footprint in the image (:func:`window_footprints`) is sampled, in crops of
    the largest footprint's size, and pasted into the zeroed output: the cost grows with the
    persons' size, not with N times the image.
    """
    num, h, w = windows.shape
    height, width = int(image_size[0]), int(image_size[1])
    out = windows.new_zeros((num, height, width))
    if num == 0:
        return out
    image_from_window, _ = safe_inverse(window_from_image)
    low, high = window_footprints(image_from_window, (h, w), (height, width))
    crop_w, crop_h = (high - low).amax(dim=0).clamp(min=1).tolist()
    crop_from_window = image_from_window.clone()
    crop_from_window[:, :2, 2] -= low.to(torch.float64)
    # One channel per window: grid_sample is the cheap sampler here (affine_align's gather pays
    # for 256-channel features). align_corners=False maps pixel center i to (2i + 1) / size - 1.
    source = window_to_source_coordinates(crop_from_window, (crop_h, crop_w))  # window pixels
    scale = source.new_tensor([2.0 / w, 2.0 / h])
    grid = torch.nan_to_num(source * scale + (scale / 2 - 1), nan=-2.0, posinf=-2.0, neginf=-2.0)
    crops = F.grid_sample(
        windows[:, None], grid.to(windows.dtype), mode="bilinear", padding_mode="zeros", align_corners=False
    )[:, 0]
    batch_index = torch.arange(num, device=windows.device)

    ys = low[:, 1, None] + torch.arange(crop_h, device=windows.device)  # (N, crop_h)
    xs = low[:, 0, None] + torch.arange(crop_w, device=windows.device)  # (N, crop_w)
    inside = (ys < high[:, 1, None])[:, :, None] & (xs < high[:, 0, None])[:, None, :]
    n = batch_index[:, None, None].expand_as(inside)
    out[n[inside], ys[:, :, None].expand_as(inside)[inside], xs[:, None, :].expand_as(inside)[inside]] = crops[inside]
    return out
