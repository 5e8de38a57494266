"""
Training targets of the bottom-up keypoint head at its feature map's stride: heatmaps, the
pixel each joint's tag and visibility are read at, and the visibility labels.

Coordinates: keypoints are in input-image continuous coordinates (Detectron2's: pixel i spans
[i, i + 1]); feature pixel j of a stride-s map covers input [s j, s (j + 1)) and has its center
at integer j (docs/method.md §9).
"""
import torch

from ..dense_pretraining import keypoint_heatmaps

__all__ = ["heatmap_targets", "joint_pixels", "visibility_targets"]


def heatmap_targets(keypoints, batch_index, batch_size, size, stride, sigma):
    """
    The heatmap targets: per joint type a Gaussian at every labeled joint of that type, the
    persons of an image merged by maximum.

    Args:
        keypoints (Tensor): (P, K, 3) all persons of the batch, (x, y, v), v > 0 labeled.
        batch_index (Tensor): (P,) long, each person's image.
        batch_size (int): B.
        size (tuple[int, int]): (H, W) of the feature map.
        stride (int): its stride.
        sigma (float): the Gaussians' standard deviation in feature pixels.

    Returns:
        Tensor (B, K, H, W) float32 in [0, 1], 1 at a joint's own position.
    """
    return keypoint_heatmaps(keypoints, batch_index, batch_size, size, stride, sigma)


def joint_pixels(keypoints, size, stride):
    """
    The feature pixel that holds each joint: where its tag and its visibility are read.

    Args:
        keypoints (Tensor): (P, K, 3) (x, y, v), v > 0 labeled.
        size (tuple[int, int]): (H, W) of the feature map.
        stride (int): its stride.

    Returns:
        tuple: ``index`` (P, K) long, y * W + x of the pixel (``floor(coordinate / stride)``,
        the pixel whose center is nearest; 0 where not usable), and ``usable`` (P, K) bool:
        labeled, finite and inside the map.
    """
    h, w = size
    xy = keypoints[..., :2].to(torch.float32)
    finite = torch.isfinite(xy).all(dim=-1)
    cell = torch.floor(torch.where(finite[..., None], xy, torch.zeros_like(xy)) / stride)
    inside = (cell[..., 0] >= 0) & (cell[..., 0] < w) & (cell[..., 1] >= 0) & (cell[..., 1] < h)
    usable = (keypoints[..., 2] > 0) & finite & inside
    index = (cell[..., 1] * w + cell[..., 0]).long()
    return torch.where(usable, index, torch.zeros_like(index)), usable


def visibility_targets(keypoints):
    """
    Args:
        keypoints (Tensor): (P, K, 3) with COCO's v: 2 visible, 1 labeled but covered, 0 not
            labeled.

    Returns:
        Tensor (P, K) float32: 1 for visible joints, 0 otherwise (the loss reads labeled ones only).
    """
    return (keypoints[..., 2] == 2).to(torch.float32)
