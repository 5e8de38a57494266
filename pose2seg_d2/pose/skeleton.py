"""Skeleton features: part confidence maps and part affinity fields in the window (docs/method.md §2.4)."""
import torch

from ..utils import device_constant
from .keypoints import COCO_PERSON_LIMBS, NUM_KEYPOINTS
from .transforms import labeled_mask

__all__ = ["skeleton_features", "GAUSSIAN_CUTOFF"]

# A part map is cut to 0 where exp(-d^2 / (2 sigma^2)) < 0.01, i.e. d^2 / (2 sigma^2) >= 4.6025.
GAUSSIAN_CUTOFF = 4.6025


def skeleton_features(keypoints, size, sigma=3.0, paf_width=1.0, signed_occluded=True):
    """
    Render each person's skeleton as 55 channels.

    Args:
        keypoints (Tensor): (N, 17, 3) of (x, y, v) already in window pixel coordinates
            (pixel (x, y) centered at integer (x, y)); v > 0 means labeled, v = 1 (COCO:
            labeled, not visible) means occluded. Keypoints with a NaN or infinite entry, or a
            coordinate beyond :data:`MAX_COORDINATE`, count as unlabeled
            (:func:`labeled_mask`), so messy keypoints never fail: they are left out.
        size (tuple[int, int]): window (h, w).
        sigma (float): standard deviation of the part Gaussians, in pixels.
        paf_width (float): half-width of a limb's field, in pixels.
        signed_occluded (bool): make the part map of an occluded keypoint negative.

    Returns:
        Tensor (N, 55, h, w), float32 (or the keypoints' floating dtype):

        - channels 0..16, one per keypoint: exp(-d^2 / (2 sigma^2)) around a labeled keypoint,
          0 where d^2 / (2 sigma^2) >= 4.6025; multiplied by -1 for v = 1 if
          ``signed_occluded``; all 0 for an unlabeled keypoint.
        - channels 17 + 2k and 17 + 2k + 1 for limb k of :data:`COCO_PERSON_LIMBS`: the unit
          direction (x, y) from the limb's first to its second keypoint on pixels closer than
          ``paf_width`` to the line through both and inside their box grown by ``paf_width``,
          bounded as the release bounds it: pixel columns ``round(min x - paf_width) <= x <
          round(max x + paf_width)`` (Python's round, half to even), rows likewise; all 0 when
          either end is unlabeled or both ends coincide.

        Always finite, in [-1, 1]; all 0 for a person with no labeled keypoint.
    """
    keypoints = torch.as_tensor(keypoints)
    if keypoints.dim() != 3 or keypoints.shape[1:] != (NUM_KEYPOINTS, 3):
        raise ValueError(f"keypoints must be (N, {NUM_KEYPOINTS}, 3), got {tuple(keypoints.shape)}")
    dtype = keypoints.dtype if keypoints.is_floating_point() else torch.float32
    device = keypoints.device
    h, w = int(size[0]), int(size[1])
    num = keypoints.shape[0]

    labeled = labeled_mask(keypoints)
    # Geometry per row and column in float64 (small tensors); only the outputs are full-size.
    xy = torch.where(labeled[..., None], keypoints[..., :2], keypoints.new_zeros(())).to(torch.float64)
    xs = torch.arange(w, dtype=torch.float64, device=device)
    ys = torch.arange(h, dtype=torch.float64, device=device)
    # Eager, every channel is written below into one output; torch.compile cannot trace writes
    # into its non-contiguous slices and gets the same values as one concatenation instead.
    out = None
    if not torch.compiler.is_compiling():
        out = torch.empty(num, NUM_KEYPOINTS + 2 * len(COCO_PERSON_LIMBS), h, w, dtype=dtype, device=device)

    parts = _part_maps(xy, labeled, keypoints[..., 2], xs, ys, sigma, signed_occluded, dtype, out)
    unit, lo, hi = _limb_intervals(xy, labeled, ys, paf_width)
    on_limb = (xs >= lo[..., None]) & (xs <= hi[..., None])  # (N, L, h, w)
    zero = torch.zeros((), dtype=dtype, device=device)
    if out is not None:
        torch.where(on_limb, unit[..., 0, None, None].to(dtype), zero, out=out[:, NUM_KEYPOINTS::2])
        torch.where(on_limb, unit[..., 1, None, None].to(dtype), zero, out=out[:, NUM_KEYPOINTS + 1 :: 2])
        return out
    fields = torch.where(on_limb[:, :, None], unit[..., None, None].to(dtype), zero)  # (N, L, 2, h, w)
    return torch.cat([parts, fields.flatten(1, 2)], dim=1)


def _part_maps(xy, labeled, vis, xs, ys, sigma, signed_occluded, dtype, out):
    """
    The 17 part confidence maps of :func:`skeleton_features`.

    Args:
        xy (Tensor): (N, 17, 2) float64 window pixel coordinates, 0 where unlabeled.
        labeled (Tensor): (N, 17) bool. vis (Tensor): (N, 17) the keypoints' v.
        xs, ys (Tensor): (w,) and (h,) float64 pixel coordinates.
        out (Tensor or None): the (N, 55, h, w) output to write channels 0..16 of.

    Returns:
        Tensor (N, 17, h, w) in ``dtype`` (a view of ``out`` when given).
    """
    # exp(-(dx^2 + dy^2) / 2s^2) is an outer product of a row and a column factor; the cut-off
    # dx^2 + dy^2 < 2 s^2 C is an interval of x on each row.
    two_var = 2.0 * sigma * sigma
    dx = (xs - xy[..., 0, None]).abs()  # (N, 17, w)
    dy2 = (ys - xy[..., 1, None]) ** 2  # (N, 17, h)
    sign = torch.ones_like(vis, dtype=torch.float64)
    if signed_occluded:
        sign = torch.where(labeled & (vis == 1), -sign, sign)
    amplitude = torch.where(labeled, sign, torch.zeros_like(sign))
    row = (amplitude[..., None] * torch.exp(-dy2 / two_var)).to(dtype)
    col = torch.exp(-(dx**2) / two_var).to(dtype)
    half_width = torch.sqrt((GAUSSIAN_CUTOFF * two_var - dy2).clamp(min=0))  # 0: empty row
    outside_cutoff = dx[..., None, :] >= half_width[..., :, None]  # (N, 17, h, w)
    if out is None:
        return (row[..., :, None] * col[..., None, :]).masked_fill(outside_cutoff, 0.0)
    parts = out[:, :NUM_KEYPOINTS]
    torch.mul(row[..., :, None], col[..., None, :], out=parts)
    return parts.masked_fill_(outside_cutoff, 0.0)


def _limb_intervals(xy, labeled, ys, paf_width):
    """
    Where each limb's field of :func:`skeleton_features` is: on each row, the pixels closer than
    ``paf_width`` to the limb's line and inside its grown box form one interval of x.

    Args:
        xy (Tensor): (N, 17, 2) float64 window pixel coordinates, 0 where unlabeled.
        labeled (Tensor): (N, 17) bool.
        ys (Tensor): (h,) float64 row coordinates.

    Returns:
        unit (N, L, 2) float64, each limb's unit direction (0 for an absent limb), and lo, hi
        (N, L, h): the inclusive integer bounds of x on each row (lo > hi: an empty row).
    """
    device = xy.device
    limbs = device_constant(COCO_PERSON_LIMBS, torch.long, device)
    start, end = xy[:, limbs[:, 0]], xy[:, limbs[:, 1]]  # (N, L, 2)
    delta = end - start
    length = torch.linalg.vector_norm(delta, dim=-1)
    present = labeled[:, limbs[:, 0]] & labeled[:, limbs[:, 1]] & (length > 0)
    unit = torch.where(present[..., None], delta / length.clamp(min=1e-300)[..., None], delta.new_zeros(()))
    ux, uy = unit[..., 0, None], unit[..., 1, None]  # (N, L, 1)
    # |(x - ax) uy - (y - ay) ux| < width  <=>  (x - ax) uy in (q - width, q + width)
    q = (ys - start[..., 1, None]) * ux  # (N, L, h)
    steep = uy.abs() > 1e-12
    safe_uy = torch.where(steep, uy, torch.ones_like(uy))
    bound_a = start[..., 0, None] + (q - paf_width) / safe_uy
    bound_b = start[..., 0, None] + (q + paf_width) / safe_uy
    inf = torch.full_like(q, float("inf"))
    flat_row = q.abs() < paf_width  # a horizontal limb covers whole rows near its line
    line_lo = torch.where(steep, torch.minimum(bound_a, bound_b), torch.where(flat_row, -inf, inf))
    line_hi = torch.where(steep, torch.maximum(bound_a, bound_b), torch.where(flat_row, inf, -inf))
    # the open interval (line_lo, line_hi) as inclusive bounds on the integer pixel coordinates
    line_lo, line_hi = line_lo.floor() + 1, line_hi.ceil() - 1
    # the release's box, inclusive: round(min - w) <= x <= round(max + w) - 1 (torch.round, like
    # Python's round, takes halves to even)
    low = torch.round(torch.minimum(start, end) - paf_width)
    high = torch.round(torch.maximum(start, end) + paf_width) - 1
    row_inside = (ys >= low[..., 1, None]) & (ys <= high[..., 1, None]) & present[..., None]
    lo = torch.where(row_inside, torch.maximum(line_lo, low[..., 0, None]), inf)
    hi = torch.where(row_inside, torch.minimum(line_hi, high[..., 0, None]), -inf)
    return unit, lo, hi
