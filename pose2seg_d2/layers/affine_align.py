"""Affine-Align: sample a window of a feature map through a per-person affine transform."""
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["affine_align", "AffineAlign", "window_to_source_coordinates"]


def window_to_source_coordinates(matrices, output_size):
    """
    Where each window pixel comes from in the source map.

    Args:
        matrices (Tensor): (N, 3, 3) affine matrices mapping source pixel coordinates to
            window pixel coordinates (last row 0, 0, 1).
        output_size (tuple[int, int]): window (h, w).

    Returns:
        Tensor: (N, h, w, 2) float64 source coordinates (x, y) of window pixel (x, y), i.e.
        ``matrices[n]^-1 @ (x, y, 1)``. Pixel (x, y) has its center at integer coordinates
        (x, y) in both spaces, as in OpenCV.
    """
    h, w = output_size
    inverse = torch.linalg.inv(matrices.to(torch.float64))
    ys = torch.arange(h, dtype=torch.float64, device=matrices.device)
    xs = torch.arange(w, dtype=torch.float64, device=matrices.device)
    a = inverse[:, :2, :]  # (N, 2, 3)
    # separable: source = A[:, :, 0] * x + A[:, :, 1] * y + A[:, :, 2]
    from_x = a[:, None, None, :, 0] * xs[None, None, :, None]  # (N, 1, w, 2)
    from_y = a[:, None, None, :, 1] * ys[None, :, None, None]  # (N, h, 1, 2)
    return from_x + from_y + a[:, None, None, :, 2]


def affine_align(features, matrices, batch_index, output_size):
    """
    Bilinear sampling of per-person windows from batched feature maps.

    ``output[n, :, y, x]`` is the bilinear interpolation of ``features[batch_index[n]]`` at
    ``matrices[n]^-1 @ (x, y, 1)``, with pixel centers at integer coordinates and zero outside
    the map (a neighbor outside contributes 0, as cv2.warpAffine with INTER_LINEAR and
    BORDER_CONSTANT 0 does, without its 1/32-pixel coordinate rounding).

    Args:
        features (Tensor): (B, C, H, W).
        matrices (Tensor): (N, 3, 3) mapping feature pixel coordinates to window pixel
            coordinates. Must be invertible.
        batch_index (Tensor): (N,) long, the image of each window.
        output_size (tuple[int, int]): window (h, w).

    Returns:
        Tensor: (N, C, h, w), differentiable with respect to ``features``. N = 0 gives an
        empty (0, C, h, w) tensor.
    """
    if features.dim() != 4:
        raise ValueError(f"affine_align: features must be (B, C, H, W), got {tuple(features.shape)}")
    if matrices.dim() != 3 or matrices.shape[1:] != (3, 3):
        raise ValueError(f"affine_align: matrices must be (N, 3, 3), got {tuple(matrices.shape)}")
    if batch_index.shape != matrices.shape[:1]:
        raise ValueError(
            f"affine_align: batch_index {tuple(batch_index.shape)} does not match "
            f"{matrices.shape[0]} matrices"
        )
    h, w = int(output_size[0]), int(output_size[1])
    _, channels, height, width = features.shape
    if matrices.shape[0] == 0:
        return features.new_zeros((0, channels, h, w))

    source = window_to_source_coordinates(matrices.to(features.device), (h, w))
    # grid_sample's align_corners=False maps pixel center i to (2i + 1) / size - 1.
    scale = source.new_tensor([2.0 / width, 2.0 / height])
    grid = (source * scale + (scale / 2 - 1)).to(features.dtype)

    batch_index = batch_index.to(features.device)
    if int(batch_index.min()) < 0 or int(batch_index.max()) >= features.shape[0]:
        raise ValueError(
            f"affine_align: batch_index holds values outside [0, {features.shape[0]}): "
            f"{batch_index.tolist()}"
        )
    windows, order = [], []
    for image in torch.unique(batch_index).tolist():
        members = (batch_index == image).nonzero()[:, 0]
        # expand() shares the image's memory across its windows; grid_sample then runs
        # all of them in one call, parallel over windows.
        image_features = features[image : image + 1].expand(len(members), -1, -1, -1)
        windows.append(
            F.grid_sample(
                image_features, grid[members], mode="bilinear", padding_mode="zeros", align_corners=False
            )
        )
        order.append(members)
    if len(windows) == 1:  # one image: members is 0..N-1 already
        return windows[0]
    return torch.cat(windows)[torch.argsort(torch.cat(order))]


class AffineAlign(nn.Module):
    """Module form of :func:`affine_align` with a fixed window size."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = (int(output_size[0]), int(output_size[1]))

    def forward(self, features, matrices, batch_index):
        return affine_align(features, matrices, batch_index, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"
