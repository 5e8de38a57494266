"""Test-time augmentation of Pose2Seg: each person segmented in the image and in its mirror image."""
import logging

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..pose import COCO_PERSON_FLIP_MAP, COCO_PERSON_KEYPOINT_NAMES, flip_permutation, mirror_keypoints
from .meta_arch import Pose2Seg

__all__ = ["Pose2SegWithTTA"]

logger = logging.getLogger(__name__)


class Pose2SegWithTTA(nn.Module):
    """
    A :class:`Pose2Seg` (or a subclass, :class:`ReleasePose2Seg` included) with test-time
    horizontal flip, as Detectron2's ``GeneralizedRCNNWithTTA`` wraps a ``GeneralizedRCNN``
    (TEST.AUG.ENABLED; ``Pose2SegTrainer.test_with_TTA``):

    1. the persons are the keypoint source's on the image as given, found once (with the
       "model" source, the keypoint model runs on the unflipped image only);
    2. every person is segmented in the image, and in its mirror image (``image.flip(-1)``)
       with its keypoints mirrored, x -> W - x, and left and right swapped through the flip map
       (:func:`mirror_keypoints`);
    3. the two probability maps are averaged in the output image (the mirrored one flipped
       back), before the threshold;
    4. masks, boxes and scores come from the averaged maps
       (:meth:`Pose2Seg.results_from_image_probabilities`): with MODEL.POSE2SEG.SCORE
       "person_x_mask" the mask's confidence is the mean averaged probability over the image
       pixels at or above MASK_THRESHOLD (the model alone takes it over its window's pixels).

    Only the flip is done: TEST.AUG.MIN_SIZES and MAX_SIZE are not read, and each image is
    segmented at the size the test loader gives it (INPUT.MIN_SIZE_TEST). Each image's maps
    are held at full output resolution, two (n, H, W) float32 tensors for n persons.
    """

    def __init__(self, cfg, model, flip_indices=None):
        """
        Args:
            cfg (CfgNode): reads TEST.AUG.FLIP, which must be True.
            model (Pose2Seg): the model, in eval mode for inference (possibly wrapped in
                DistributedDataParallel).
            flip_indices (sequence[int] or None): the keypoint rows' left/right permutation
                (:func:`flip_permutation`); None: the COCO flip map, the keypoint order every
                Pose2Seg model takes.
        """
        super().__init__()
        if isinstance(model, DistributedDataParallel):
            model = model.module
        if not isinstance(model, Pose2Seg):
            raise TypeError(f"Pose2SegWithTTA wraps a Pose2Seg model, got {type(model).__name__}")
        if not cfg.TEST.AUG.FLIP:
            raise ValueError(
                "TEST.AUG.ENABLED is True but TEST.AUG.FLIP is False: Pose2Seg's test-time augmentation is "
                "the horizontal flip alone (TEST.AUG.MIN_SIZES is not read), so there is nothing to do; "
                "set TEST.AUG.FLIP True, or TEST.AUG.ENABLED False"
            )
        self.model = model
        if flip_indices is None:
            flip_indices = flip_permutation(COCO_PERSON_KEYPOINT_NAMES, COCO_PERSON_FLIP_MAP)
        self.flip_indices = list(flip_indices)
        logger.info(
            "Pose2Seg test-time augmentation: the horizontal flip; TEST.AUG.MIN_SIZES and MAX_SIZE are not "
            "read (images at the test loader's size)"
        )

    def forward(self, batched_inputs):
        return self.inference(batched_inputs)

    @torch.no_grad()
    def inference(self, batched_inputs, do_postprocess=True):
        """
        Args:
            batched_inputs (list[dict]): as :meth:`Pose2Seg.forward`'s.
            do_postprocess (bool): as :meth:`Pose2Seg.inference`.

        Returns:
            list[dict]: as :meth:`Pose2Seg.inference`, the masks and scores from both views.
        """
        model = self.model
        assert not model.training
        image_sizes = [tuple(x["image"].shape[-2:]) for x in batched_inputs]
        persons = model.keypoint_persons(batched_inputs)
        probabilities, gathered, output_sizes = model.image_probabilities(batched_inputs, persons, do_postprocess)
        mirrored = model.image_probabilities(
            [self._mirrored_input(x) for x in batched_inputs], self._mirrored_persons(persons, image_sizes), do_postprocess
        )[0]
        averaged = [(p + m.flip(-1)) / 2 for p, m in zip(probabilities, mirrored)]
        return model.results_from_image_probabilities(averaged, gathered, output_sizes)

    @staticmethod
    def _mirrored_input(x):
        """The input dict with its image mirrored; without ``instances``, whose persons the
        mirrored view is given mirrored instead."""
        mirrored = {k: v for k, v in x.items() if k != "instances"}
        mirrored["image"] = x["image"].flip(-1)
        return mirrored

    def _mirrored_persons(self, persons, image_sizes):
        """Each image's (keypoints, scores) of the keypoint source, in its mirror image."""
        return [
            (mirror_keypoints(keypoints, float(width), self.flip_indices), scores)
            for (keypoints, scores), (_, width) in zip(persons, image_sizes)
        ]
