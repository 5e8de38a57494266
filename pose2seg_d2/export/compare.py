"""The exported graph's masks and scores against the eager model's, person by person."""
import torch
from detectron2.structures import Instances, Keypoints

from ..pose import transform_keypoints

__all__ = ["eager_outputs", "agreement"]


def eager_outputs(model, image, keypoints):
    """
    What :meth:`Pose2Seg.inference` gives for one image with ground-truth persons, put back in
    the persons' order (it sorts them by score), for a comparison with the exported graph.

    Args:
        model (Pose2Seg): in eval mode.
        image (Tensor): (3, H, W) as the exported graph takes it.
        keypoints (Tensor): (N, 17, 3) in the image's continuous coordinates.

    Returns:
        tuple: ``masks`` (N, H, W) bool and ``scores`` (N,) float32 on the CPU, at the size of
        ``image``.
    """
    height, width = image.shape[-2:]
    instances = Instances((height, width))
    instances.gt_keypoints = Keypoints(keypoints.cpu())
    with torch.no_grad():
        result = model([{"image": image, "instances": instances, "height": height, "width": width}])[0]["instances"]
    result = result.to("cpu")
    if len(result) == 0:
        return result.pred_masks, result.scores
    # each output person is the given person whose keypoints it holds (unlabeled ones as zeros)
    given = transform_keypoints(keypoints.cpu(), torch.eye(3))
    distance = (result.pred_keypoints[:, None] - given[None]).abs().flatten(2).sum(-1)  # (out, given)
    source = distance.argmin(dim=1)
    if len(set(source.tolist())) != len(given):
        raise ValueError("eager_outputs: two persons of the same keypoints; give distinct persons")
    order = torch.empty(len(given), dtype=torch.long)
    order[source] = torch.arange(len(result))
    return result.pred_masks[order], result.scores[order]


def agreement(expected, actual):
    """
    Args:
        expected, actual (tuple): ``(masks (N, H, W) bool, scores (N,))`` each.

    Returns:
        tuple: per person, the masks' IoU (N,) float64 (1 where both are empty) and the absolute
        score difference (N,) float64.
    """
    (masks_a, scores_a), (masks_b, scores_b) = expected, actual
    if masks_a.shape != masks_b.shape or scores_a.shape != scores_b.shape:
        raise ValueError(
            f"agreement: shapes differ: masks {tuple(masks_a.shape)} and {tuple(masks_b.shape)}, "
            f"scores {tuple(scores_a.shape)} and {tuple(scores_b.shape)}"
        )
    masks_a, masks_b = masks_a.cpu().bool().flatten(1), masks_b.cpu().bool().flatten(1)
    intersection = (masks_a & masks_b).sum(dim=1).double()
    union = (masks_a | masks_b).sum(dim=1).double()
    iou = torch.where(union > 0, intersection / union.clamp(min=1), 1.0)
    return iou, (scores_a.cpu().double() - scores_b.cpu().double()).abs()
