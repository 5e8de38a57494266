"""Warping per-person window predictions back into the image (SPEC §2.7)."""
import torch

from .affine_align import affine_align, safe_inverse

__all__ = ["warp_windows_to_image"]


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
    """
    num = windows.shape[0]
    if num == 0:
        return windows.new_zeros((0, int(image_size[0]), int(image_size[1])))
    image_from_window, _ = safe_inverse(window_from_image)
    batch_index = torch.arange(num, device=windows.device)
    return affine_align(windows[:, None], image_from_window, batch_index, image_size)[:, 0]
