"""Warping per-person window predictions back into the image (SPEC §2.7)."""
import torch
import torch.nn.functional as F

from .affine_align import safe_inverse

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
    persons' size, not with N times the image. The sampling grid is built in the windows' dtype
    from float64 matrices (for float32 windows, coordinates are off by well under 1e-3 window
    pixels) with one full-size operation, and each crop is pasted as one slice.
    """
    num, h, w = windows.shape
    height, width = int(image_size[0]), int(image_size[1])
    out = windows.new_zeros((num, height, width))
    if num == 0:
        return out
    image_from_window, usable = safe_inverse(window_from_image)
    low, high = window_footprints(image_from_window, (h, w), (height, width))
    crop_w, crop_h = (high - low).amax(dim=0).clamp(min=1).tolist()

    # window_from_crop: crop pixel (x, y) is image pixel (x + low_x, y + low_y). grid_sample's
    # normalized coordinates (align_corners=False) of window pixel u are (2u + 1) / size - 1.
    window_from_crop = window_from_image.to(torch.float64)[:, :2, :].clone()
    window_from_crop[:, :, 2] += (window_from_crop[:, :, :2] @ low.to(torch.float64)[:, :, None])[:, :, 0]
    scale = window_from_crop.new_tensor([2.0 / w, 2.0 / h])[:, None]
    grid_from_crop = window_from_crop * scale
    grid_from_crop[:, :, 2] += scale[:, 0] / 2 - 1
    # Unusable windows sample nothing (their footprint is empty too), nor do windows whose grid
    # could overflow the windows' dtype (absurd matrices: 1e30 window sizes per image pixel).
    bound = (grid_from_crop.abs() * grid_from_crop.new_tensor([crop_w, crop_h, 1.0])).sum(dim=2)  # (N, 2)
    usable = usable & (bound < 1e30).all(dim=1)
    grid_from_crop = torch.where(usable[:, None, None], grid_from_crop, grid_from_crop.new_tensor([0.0, 0.0, -2.0]))
    xs = torch.arange(crop_w, dtype=torch.float64, device=windows.device)
    ys = torch.arange(crop_h, dtype=torch.float64, device=windows.device)
    from_x = grid_from_crop[:, None, None, :, 0] * xs[None, None, :, None] + grid_from_crop[:, None, None, :, 2]
    from_y = grid_from_crop[:, None, None, :, 1] * ys[None, :, None, None]
    grid = from_x.to(windows.dtype) + from_y.to(windows.dtype)  # (N, crop_h, crop_w, 2)
    # One channel per window: grid_sample is the cheap sampler here (affine_align's gather pays
    # for 256-channel features).
    crops = F.grid_sample(windows[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
    # One slice copy per window (N small copies): pasting all crops at once by index_put over
    # N x crop pixels was 10x slower (benchmarks/README.md).
    for n, (x0, y0, x1, y1) in enumerate(torch.cat([low, high], dim=1).tolist()):
        if x1 > x0 and y1 > y0:
            out[n, y0:y1, x0:x1] = crops[n, : y1 - y0, : x1 - x0]
    return out
