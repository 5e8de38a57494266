"""
The keypoints Pose2Seg is given in training: the ground truth, or the ground truth with a pose
estimator's errors simulated on it (MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE, docs/method.md §2.8).
The mask targets are always the true masks: only the skeletons the model sees change.
"""
import torch
from detectron2.structures import BitMasks, PolygonMasks

from ..pose.keypoint_noise import KeypointNoise, perturb_keypoints

__all__ = ["TrainingKeypointNoise", "build_training_keypoint_noise", "instance_mask_areas"]


def instance_mask_areas(gt_masks):
    """
    Each person's mask area in pixels of the mapped image, the ``a`` of COCO's OKS.

    Args:
        gt_masks (BitMasks, PolygonMasks or Tensor): (n, h, w) masks.

    Returns:
        Tensor (n,) float32 on the host (a polygon mask's area is the sum of its polygons'
        areas, as Detectron2's ``PolygonMasks.area`` computes it).
    """
    if isinstance(gt_masks, PolygonMasks):
        return gt_masks.area().to(torch.float32).cpu()
    tensor = gt_masks.tensor if isinstance(gt_masks, BitMasks) else torch.as_tensor(gt_masks)
    return tensor.flatten(1).sum(1).to(torch.float32).cpu()


class TrainingKeypointNoise:
    """
    Simulated pose-estimator errors on the ground-truth keypoints of a training batch
    (:func:`perturb_keypoints`): all persons of the batch in one call, the neighbors searched
    within each image, random draws from torch's global generator (which Detectron2 seeds with
    cfg.SEED), on the host where the data loader puts the keypoints.
    """

    def __init__(self, noise):
        """
        Args:
            noise (KeypointNoise): the errors.
        """
        self.noise = noise

    def __call__(self, instances):
        """
        Args:
            instances (list[Instances]): per image, with ``gt_keypoints`` (n, K, 3) and
                ``gt_masks`` at the mapped image's size.

        Returns:
            list[Tensor]: per image, the (n, K, 3) float32 keypoints the model is given.
        """
        keypoints = [i.gt_keypoints.tensor.to(torch.float32) for i in instances]
        counts = [len(k) for k in keypoints]
        if sum(counts) == 0:
            return keypoints
        if not all(i.has("gt_masks") for i, n in zip(instances, counts) if n):
            raise ValueError(
                "MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE scales the noise by each person's mask area, and a "
                "training input has persons without gt_masks; map it with Pose2SegDatasetMapper"
            )
        areas = torch.cat([instance_mask_areas(i.gt_masks) for i, n in zip(instances, counts) if n])
        image_index = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
        perturbed = perturb_keypoints(torch.cat([k.cpu() for k in keypoints]), areas, image_index, self.noise)
        return list(perturbed.split(counts))


def build_training_keypoint_noise(cfg):
    """A :class:`TrainingKeypointNoise` from MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE, None when it is
    not ENABLED."""
    c = cfg.MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE
    if not c.ENABLED:
        return None
    try:
        noise = KeypointNoise(
            sigma_scale=c.SIGMA_SCALE,
            drop_prob=c.DROP_PROB,
            swap_prob=c.SWAP_PROB,
            swap_unit=c.SWAP_UNIT,
            neighbor_prob=c.NEIGHBOR_PROB,
            keep_visibility=c.KEEP_VISIBILITY,
            keep_visibility_prob=c.KEEP_VISIBILITY_PROB,
            person_prob=c.PERSON_PROB,
        )
    except ValueError as e:
        raise ValueError(f"MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.{e}") from None
    return TrainingKeypointNoise(noise)
