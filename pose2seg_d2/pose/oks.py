"""
COCO's object keypoint similarity (OKS): how close a predicted skeleton is to a ground-truth
person, the measure behind COCO keypoint AP (docs/method.md §2.8).

For a ground-truth person of area ``a`` (its segment's area, in pixels) and labeled joints
k, a prediction's joint at distance ``d_k`` scores ``exp(-d_k^2 / (2 a (2 sigma_k)^2))``, and
the OKS is the mean over the labeled joints. ``sigma_k`` are COCO's per-joint constants
(:data:`COCO_PERSON_OKS_SIGMAS`), which COCO's evaluation uses doubled (``kappa_k = 2 sigma_k``).
A ground-truth person without labeled joints is measured by how far the predicted joints lie
outside its box grown to three times its width and height, as COCO does.
"""
import torch

__all__ = ["COCO_PERSON_OKS_SIGMAS", "object_keypoint_similarity"]

# COCO's per-joint OKS constants, in the order of COCO_PERSON_KEYPOINT_NAMES (nose, eyes,
# ears, shoulders, elbows, wrists, hips, knees, ankles); pycocotools' ``kpt_oks_sigmas``.
COCO_PERSON_OKS_SIGMAS = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
    0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)  # fmt: skip


def object_keypoint_similarity(predicted, gt_keypoints, gt_areas, gt_boxes=None, sigmas=COCO_PERSON_OKS_SIGMAS):
    """
    COCO's OKS of every prediction with every ground-truth person of one image.

    Args:
        predicted (Tensor): (P, K, 2 or 3) predicted joints; only x and y are read (COCO's
            OKS uses every predicted joint, whatever its confidence).
        gt_keypoints (Tensor): (G, K, 3) of (x, y, v); v > 0 with finite x, y is labeled. Same coordinates as
            ``predicted`` (continuous or pixel-index alike: only differences enter).
        gt_areas (Tensor): (G,) the persons' segment areas in pixels of those coordinates.
        gt_boxes (Tensor or None): (G, 4) XYWH boxes, for persons without labeled joints
            (their OKS is 0 without boxes).
        sigmas (sequence[float]): K per-joint constants (COCO's by default).

    Returns:
        Tensor (P, G) float64 in [0, 1].
    """
    predicted = torch.as_tensor(predicted, dtype=torch.float64)
    gt = torch.as_tensor(gt_keypoints, dtype=torch.float64)
    areas = torch.as_tensor(gt_areas, dtype=torch.float64)
    num_pred, num_gt = predicted.shape[0], gt.shape[0]
    if num_pred == 0 or num_gt == 0:
        return torch.zeros(num_pred, num_gt, dtype=torch.float64)
    kappa_sq = (2.0 * torch.as_tensor(sigmas, dtype=torch.float64)) ** 2  # (K,)
    labeled = (gt[..., 2] > 0) & torch.isfinite(gt[..., :2]).all(-1)  # (G, K)
    pred_xy = predicted[:, None, :, :2]  # (P, 1, K, 2)
    distance_sq = ((pred_xy - gt[None, :, :, :2]) ** 2).sum(-1)  # (P, G, K)
    if gt_boxes is not None:
        boxes = torch.as_tensor(gt_boxes, dtype=torch.float64)
        low = boxes[:, :2] - boxes[:, 2:]  # (G, 2): the box grown by its size on each side
        high = boxes[:, :2] + 2.0 * boxes[:, 2:]
        outside = (low[None, :, None] - pred_xy).clamp(min=0) + (pred_xy - high[None, :, None]).clamp(min=0)
        box_distance_sq = (outside**2).sum(-1)
    else:
        box_distance_sq = torch.full_like(distance_sq, torch.inf)
    unlabeled_person = ~labeled.any(-1)  # (G,)
    # a non-finite predicted joint is infinitely far
    distance_sq = torch.nan_to_num(distance_sq, nan=torch.inf)
    box_distance_sq = torch.nan_to_num(box_distance_sq, nan=torch.inf)
    distance_sq = torch.where(unlabeled_person[None, :, None], box_distance_sq, distance_sq)
    # pycocotools adds the float64 spacing of 1 to the area
    e = distance_sq / kappa_sq / (areas[None, :, None] + torch.finfo(torch.float64).eps) / 2.0
    similarity = torch.exp(-e)
    counted = torch.where(unlabeled_person[:, None], torch.ones_like(labeled), labeled)  # (G, K)
    return (similarity * counted[None]).sum(-1) / counted.sum(-1)[None].to(torch.float64)
