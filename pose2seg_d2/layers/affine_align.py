"""Affine-Align: sample a window of a feature map through a per-person affine transform."""
import torch
import torch.nn.functional as F
from torch import nn

from ..utils import device_constant, to_device

__all__ = ["affine_align", "AffineAlign", "bilinear_taps", "safe_inverse", "window_to_source_coordinates"]


def safe_inverse(matrices):
    """
    Inverse of (N, 3, 3) matrices that never raises, and never reads a value on the host.

    The inverse is the adjugate over the determinant (rows of the adjugate's transpose are
    cross products of the matrix's rows), a handful of batched element-wise ops: a linear
    algebra solver would launch many more kernels for 3 x 3 matrices, and may synchronize.

    Returns:
        tuple: ``inverse`` (N, 3, 3) float64, all NaN where a matrix is unusable, and
        ``usable`` (N,) bool: the matrix is finite, its determinant is not 0 and its inverse is
        finite.
    """
    m = matrices.to(torch.float64)
    finite = torch.isfinite(m).flatten(1).all(dim=1)
    m = torch.where(finite[:, None, None], m, 0.0)
    # cofactors[:, i] = row (i + 1) x row (i + 2): the adjugate, transposed
    cofactors = torch.linalg.cross(m.roll(-1, dims=1), m.roll(-2, dims=1), dim=2)
    determinant = (m[:, 0] * cofactors[:, 0]).sum(dim=1)
    inverse = cofactors.transpose(1, 2) / torch.where(determinant == 0, 1.0, determinant)[:, None, None]
    usable = finite & (determinant != 0) & torch.isfinite(inverse).flatten(1).all(dim=1)
    return torch.where(usable[:, None, None], inverse, float("nan")), usable


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
        (x, y) in both spaces, as in OpenCV. NaN for a matrix that is not finite or not
        invertible (see :func:`safe_inverse`).
    """
    h, w = output_size
    inverse, _ = safe_inverse(matrices)
    ys = torch.arange(h, dtype=torch.float64, device=matrices.device)
    xs = torch.arange(w, dtype=torch.float64, device=matrices.device)
    a = inverse[:, :2, :]  # (N, 2, 3)
    # separable: source = A[:, :, 0] * x + A[:, :, 1] * y + A[:, :, 2]
    from_x = a[:, None, None, :, 0] * xs[None, None, :, None]  # (N, 1, w, 2)
    from_y = a[:, None, None, :, 1] * ys[None, :, None, None]  # (N, h, 1, 2)
    return from_x + from_y + a[:, None, None, :, 2]


# up to this many channels, a plain gather of the four taps beats embedding_bag
_SMALL_CHANNELS = 4


def bilinear_taps(source, height, width):
    """
    The four bilinear neighbors of each source point and their weights.

    Args:
        source (Tensor): (..., 2) float64 pixel coordinates (x, y), centers at integers.
        height, width (int): the map's size.

    Returns:
        tuple: ``index`` (..., 4) long, flat pixel index ``y * width + x`` of the neighbors
        (clamped into the map), and ``weight`` (..., 4) float64, 0 for neighbors outside the map.
        A point that is NaN or infinite, or that lies a pixel or more outside the map, gets four
        zero weights.
    """
    # Points further out than one pixel beyond the map have only outside neighbors: moving them
    # to two pixels beyond changes no weight and keeps the integer conversion in range.
    finite = torch.isfinite(source).all(dim=-1, keepdim=True)
    upper = to_device(torch.tensor([width + 1.0, height + 1.0], dtype=source.dtype), source.device)
    source = torch.minimum(torch.where(finite, source, -2.0).clamp(min=-2.0), upper)
    base = source.floor()
    frac = source - base
    x0, y0 = base[..., 0].long(), base[..., 1].long()
    fx, fy = frac[..., 0], frac[..., 1]
    # The four taps at once, along a leading axis (dx, dy) = (0, 0), (1, 0), (0, 1), (1, 1): few
    # kernels, each over whole contiguous maps.
    dx, dy = (device_constant(d, torch.long, source.device).view(4, *[1] * x0.dim()) for d in _TAPS)
    x, y = x0 + dx, y0 + dy  # (4, ...)
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    index = y.clamp_(0, height - 1).mul_(width).add_(x.clamp_(0, width - 1))
    weight = torch.where(dx == 1, fx, 1 - fx) * torch.where(dy == 1, fy, 1 - fy)  # fx or 1 - fx, ...
    weight = torch.where(inside, weight, 0.0)
    return index.movedim(0, -1).contiguous(), weight.movedim(0, -1).contiguous()


# dx and dy of the four bilinear taps, in the order of bilinear_taps' last axis
_TAPS = ((0, 1, 0, 1), (0, 0, 1, 1))


def affine_align(features, matrices, batch_index, output_size, check_batch_index=True):
    """
    Bilinear sampling of per-person windows from batched feature maps.

    ``output[n, :, y, x]`` is the bilinear interpolation of ``features[batch_index[n]]`` at
    ``matrices[n]^-1 @ (x, y, 1)``, with pixel centers at integer coordinates and zero outside
    the map (a neighbor outside contributes 0, as cv2.warpAffine with INTER_LINEAR and
    BORDER_CONSTANT 0 does, without its 1/32-pixel rounding of the coordinates). Coordinates
    and weights are computed in float64, so the result is exact up to the features' dtype.

    The sampling is one weighted gather of channel vectors (``F.embedding_bag``) over the
    features in channels-last order: pass channels-last features
    (``x.contiguous(memory_format=torch.channels_last)``) to skip a copy of the whole map.
    The output has channels-last strides too.

    Unusable matrices never fail: the window of a matrix that is not finite or not invertible
    is all zeros (and passes no gradient), as is every window pixel that maps outside the map,
    however far (NaN and infinite coordinates included).

    Args:
        features (Tensor): (B, C, H, W).
        matrices (Tensor): (N, 3, 3) mapping feature pixel coordinates to window pixel
            coordinates.
        batch_index (Tensor): (N,) long, the image of each window.
        output_size (tuple[int, int]): window (h, w).
        check_batch_index (bool): raise a ValueError for a ``batch_index`` outside
            [0, B). This reads two values on the host (a synchronization on a GPU); a caller
            that builds ``batch_index`` itself, in range, can skip it.

    Returns:
        Tensor: (N, C, h, w), differentiable with respect to ``features``; finite for finite
        features. N = 0 gives an empty (0, C, h, w) tensor.
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
    num_images, channels, height, width = features.shape
    num = matrices.shape[0]
    if num == 0:
        return features.new_zeros((0, channels, h, w))
    batch_index = batch_index.to(features.device)
    if check_batch_index and (int(batch_index.min()) < 0 or int(batch_index.max()) >= num_images):
        raise ValueError(
            f"affine_align: batch_index holds values outside [0, {num_images}): {batch_index.tolist()}"
        )

    source = window_to_source_coordinates(matrices.to(features.device), (h, w))
    index, weight = bilinear_taps(source, height, width)
    index = index + (batch_index * (height * width))[:, None, None, None]
    table = features.permute(0, 2, 3, 1).reshape(-1, channels).contiguous()  # (B*H*W, C)
    index, weight = index.reshape(-1, 4), weight.reshape(-1, 4).to(features.dtype)
    if channels <= _SMALL_CHANNELS:
        # e.g. one-channel masks: embedding_bag's per-bag overhead would dominate
        sampled = (table[index] * weight[..., None]).sum(dim=1)
    elif torch.compiler.is_exporting():
        # ONNX has no embedding_bag (the exporter's replacement loops over the bags, and fails
        # on none): one gather per tap, each (N * h * w, C)
        sampled = table[index[:, 0]] * weight[:, 0, None]
        for tap in range(1, 4):
            sampled = sampled + table[index[:, tap]] * weight[:, tap, None]
    else:
        sampled = F.embedding_bag(index, table, per_sample_weights=weight, mode="sum")
    return sampled.view(num, h, w, channels).permute(0, 3, 1, 2)


class AffineAlign(nn.Module):
    """Module form of :func:`affine_align` with a fixed window size."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = (int(output_size[0]), int(output_size[1]))

    def forward(self, features, matrices, batch_index):
        return affine_align(features, matrices, batch_index, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"
