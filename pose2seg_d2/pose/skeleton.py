"""Skeleton features: part confidence maps and part affinity fields in the window (SPEC §2.4)."""
import torch

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
            labeled, not visible) means occluded. NaN or infinite entries count as unlabeled.
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
          direction (x, y) from the limb's first to its second keypoint on pixels within
          ``paf_width`` of the line through both and inside their box grown by ``paf_width``;
          all 0 when either end is unlabeled or both ends coincide.
    """
    keypoints = torch.as_tensor(keypoints)
    if keypoints.dim() != 3 or keypoints.shape[1:] != (NUM_KEYPOINTS, 3):
        raise ValueError(f"keypoints must be (N, {NUM_KEYPOINTS}, 3), got {tuple(keypoints.shape)}")
    dtype = keypoints.dtype if keypoints.is_floating_point() else torch.float32
    device = keypoints.device
    h, w = int(size[0]), int(size[1])
    num = keypoints.shape[0]

    labeled = labeled_mask(keypoints)
    xy = torch.where(labeled[..., None], keypoints[..., :2], keypoints.new_zeros(())).to(dtype)
    vis = keypoints[..., 2]
    xs = torch.arange(w, dtype=dtype, device=device)
    ys = torch.arange(h, dtype=dtype, device=device)

    # Part confidence maps; exp(-(dx^2 + dy^2) / 2s^2) factors into an outer product.
    inv_two_var = 1.0 / (2.0 * sigma * sigma)
    ex = (xs - xy[..., 0, None]) ** 2 * inv_two_var  # (N, 17, w)
    ey = (ys - xy[..., 1, None]) ** 2 * inv_two_var  # (N, 17, h)
    inside = (ey[..., :, None] + ex[..., None, :]) < GAUSSIAN_CUTOFF
    sign = torch.ones_like(vis, dtype=dtype)
    if signed_occluded:
        sign = torch.where(labeled & (vis == 1), -sign, sign)
    amplitude = torch.where(labeled, sign, torch.zeros_like(sign))
    parts = (torch.exp(-ey)[..., :, None] * torch.exp(-ex)[..., None, :]) * inside
    parts = parts * amplitude[..., None, None]

    # Part affinity fields.
    limbs = torch.as_tensor(COCO_PERSON_LIMBS, device=device)
    start, end = xy[:, limbs[:, 0]], xy[:, limbs[:, 1]]  # (N, L, 2)
    delta = end - start
    length = torch.linalg.vector_norm(delta, dim=-1)
    present = labeled[:, limbs[:, 0]] & labeled[:, limbs[:, 1]] & (length > 0)
    unit = torch.where(present[..., None], delta / length.clamp(min=1e-12)[..., None], delta.new_zeros(()))
    # distance to the line: |(p - start) x unit|, separable in x and y.
    across_x = unit[..., 1, None] * (xs - start[..., 0, None])  # (N, L, w)
    across_y = unit[..., 0, None] * (ys - start[..., 1, None])  # (N, L, h)
    near_line = (across_x[..., None, :] - across_y[..., :, None]).abs() <= paf_width
    low = torch.minimum(start, end) - paf_width
    high = torch.maximum(start, end) + paf_width
    in_x = (xs >= low[..., 0, None]) & (xs <= high[..., 0, None]) & present[..., None]
    in_y = (ys >= low[..., 1, None]) & (ys <= high[..., 1, None])
    on_limb = (near_line & in_x[..., None, :] & in_y[..., :, None]).to(dtype)  # (N, L, h, w)
    fields = on_limb[:, :, None] * unit[..., None, None]  # (N, L, 2, h, w)
    return torch.cat([parts, fields.reshape(num, 2 * len(COCO_PERSON_LIMBS), h, w)], dim=1)
