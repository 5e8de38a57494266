"""The training mappers with copy-paste: Detectron2's (Mask R-CNN, Keypoint R-CNN) and Pose2Seg's."""
import copy

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T

from ..dataset_mapper import Pose2SegDatasetMapper, ValidatingDatasetMapper
from .augmentation import CopyPaste

__all__ = ["CopyPasteDatasetMapper", "CopyPastePose2SegMapper"]


class CopyPasteDatasetMapper(ValidatingDatasetMapper):
    """
    :class:`ValidatingDatasetMapper` that, in training, pastes persons onto the image as it is
    read, before Detectron2's augmentations (:class:`CopyPaste`, options INPUT.COPY_PASTE,
    applied when ENABLED), then maps the new image and annotations as Detectron2 does: the
    augmentations transform pasted and covered persons alike. Records are checked as they
    come, before pasting. At test time, or with copy-paste off, it maps as
    :class:`ValidatingDatasetMapper` does.

    Changed masks are RLE: with instance masks on, INPUT.MASK_FORMAT must be "bitmask"
    (Detectron2's "polygon" format takes polygons only; the visible part of a covered person
    can have holes). Records with ``sem_seg_file_name`` are refused: the pasted persons would
    not be in their semantic labels.
    """

    @configurable
    def __init__(self, is_train, *, copy_paste=None, **kwargs):
        """
        Args:
            copy_paste (CopyPaste or None): applied to every training record; None for none.
            kwargs: as for Detectron2's DatasetMapper.
        """
        super().__init__(is_train, **kwargs)
        self.copy_paste = copy_paste if is_train else None
        if self.copy_paste is not None and self.use_instance_mask and self.instance_mask_format != "bitmask":
            raise ValueError(
                "INPUT.COPY_PASTE.ENABLED with instance masks needs INPUT.MASK_FORMAT 'bitmask' (the visible "
                f"masks it writes are RLE), got {self.instance_mask_format!r}"
            )

    @classmethod
    def from_config(cls, cfg, is_train=True):
        ret = super().from_config(cfg, is_train)
        ret["copy_paste"] = CopyPaste(cfg) if is_train and cfg.INPUT.COPY_PASTE.ENABLED else None
        return ret

    def map(self, dataset_dict):
        if self.copy_paste is None:
            return super().map(dataset_dict)
        if "sem_seg_file_name" in dataset_dict:
            raise ValueError("INPUT.COPY_PASTE does not support records with sem_seg_file_name")
        dataset_dict = copy.deepcopy(dataset_dict)
        image = utils.read_image(dataset_dict["file_name"], format=self.image_format)
        utils.check_image_size(dataset_dict, image)
        image, dataset_dict["annotations"] = self.copy_paste(
            image, dataset_dict.get("annotations", []), file_name=dataset_dict["file_name"]
        )
        aug_input = T.AugInput(image)
        transforms = self.augmentations(aug_input)
        image = aug_input.image
        image_shape = image.shape[:2]
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if self.proposal_topk is not None:
            utils.transform_proposals(dataset_dict, image_shape, transforms, proposal_topk=self.proposal_topk)
        self._transform_annotations(dataset_dict, transforms, image_shape)
        return dataset_dict


class CopyPastePose2SegMapper(Pose2SegDatasetMapper, CopyPasteDatasetMapper):
    """:class:`Pose2SegDatasetMapper` whose training records go through copy-paste as
    :class:`CopyPasteDatasetMapper` says (its ``map`` is what Pose2Seg's mapper maps with in
    training)."""
