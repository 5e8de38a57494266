"""
Which person is which: keypoint similarity (COCO's OKS) between two sets of skeletons, mask IoU
between two sets of masks, and a one-to-one matching by descending similarity.
"""
import torch

__all__ = ["COCO_KEYPOINT_SIGMAS", "greedy_match", "keypoint_similarity", "mask_iou"]

# COCO's per-keypoint standard deviations (nose, eyes, ears, shoulders, elbows, wrists, hips,
# knees, ankles), the constants of its keypoint evaluation (OKS)
COCO_KEYPOINT_SIGMAS = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)  # fmt: skip


def keypoint_similarity(keypoints, reference_keypoints, reference_areas, sigmas=COCO_KEYPOINT_SIGMAS):
    """
    Object keypoint similarity (OKS, COCO's) of every person of ``keypoints`` with every person
    of ``reference_keypoints``: the mean over the keypoints labeled in both of
    exp(-d^2 / (2 area (2 sigma)^2)), d the distance between the two keypoints, area the
    reference person's.

    Args:
        keypoints (Tensor): (N, K, 3) of (x, y, v), v > 0 meaning labeled.
        reference_keypoints (Tensor): (M, K, 3), in the same coordinates (any: only distances
            count).
        reference_areas (Tensor): (M,) the reference persons' areas in pixels (their masks';
            at least 1 is used).
        sigmas (sequence of K floats): the keypoints' standard deviations, relative to the
            square root of the area.

    Returns:
        Tensor: (N, M) float32 in [0, 1]; 0 for two persons without a keypoint labeled in both.
    """
    a = keypoints.to(torch.float32)
    b = reference_keypoints.to(a.device, torch.float32)
    sigmas = torch.as_tensor(sigmas, dtype=torch.float32, device=a.device)
    squared = ((a[:, None, :, :2] - b[None, :, :, :2]) ** 2).sum(-1)  # (N, M, K)
    areas = reference_areas.to(a.device, torch.float32).clamp(min=1.0)
    e = squared / (2 * areas[None, :, None] * (2 * sigmas) ** 2)
    both = (a[:, None, :, 2] > 0) & (b[None, :, :, 2] > 0) & torch.isfinite(squared)
    terms = torch.where(both, torch.exp(-torch.where(both, e, torch.zeros_like(e))), torch.zeros_like(e))
    return terms.sum(-1) / both.sum(-1).clamp(min=1)


def mask_iou(masks, reference_masks):
    """
    Intersection over union of every mask of ``masks`` with every mask of ``reference_masks``.

    Args:
        masks (Tensor): (N, H, W) bool.
        reference_masks (Tensor): (M, H, W) bool, the same H x W.

    Returns:
        Tensor: (N, M) float32; 0 where both masks are empty. Exact for masks of up to 2^24
        pixels (the counts are float32 sums).
    """
    if masks.shape[1:] != reference_masks.shape[1:]:
        raise ValueError(f"masks of {tuple(masks.shape[1:])} and {tuple(reference_masks.shape[1:])} pixels")
    a = masks.flatten(1).to(torch.float32)
    b = reference_masks.flatten(1).to(a.device, torch.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))


def greedy_match(similarity, minimum):
    """
    A one-to-one matching of rows to columns: the most similar pair first, then the most similar
    of the pairs left without either, and so on while the similarity is at least ``minimum``.
    Ties go to the lower row, then the lower column (rows sorted by score give the pair to the
    higher score, as COCO's matching does).

    Args:
        similarity (Tensor): (N, M); NaN counts as no match.
        minimum (float): pairs less similar than this are never matched.

    Returns:
        Tensor: (N,) int64, the column each row is matched to, -1 for unmatched rows.
    """
    n, m = similarity.shape
    left = torch.nan_to_num(similarity.to(torch.float32), nan=-torch.inf).clone()
    match = torch.full((n,), -1, dtype=torch.long)
    for _ in range(min(n, m)):  # one pair per step, at most min(N, M) steps
        flat = int(torch.argmax(left))
        row, column = divmod(flat, m)
        if not left[row, column] >= minimum:
            break
        match[row] = column
        left[row, :] = -torch.inf
        left[:, column] = -torch.inf
    return match
