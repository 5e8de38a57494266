"""The dataset mapper Pose2Seg trains and tests with."""
import copy

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import DatasetMapper
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T

__all__ = ["Pose2SegDatasetMapper"]


class Pose2SegDatasetMapper(DatasetMapper):
    """
    Detectron2's :class:`DatasetMapper` with keypoints always on and, unlike it, annotations
    kept at test time: Pose2Seg takes its persons from ``instances.gt_keypoints`` when
    MODEL.POSE2SEG.KEYPOINT_SOURCE is "gt". Masks are mapped in training only.
    """

    @configurable
    def __init__(self, is_train, **kwargs):
        super().__init__(is_train, **kwargs)

    @classmethod
    def from_config(cls, cfg, is_train=True):
        ret = super().from_config(cfg, is_train)
        ret["use_keypoint"] = True
        ret["use_instance_mask"] = is_train
        ret["keypoint_hflip_indices"] = (
            utils.create_keypoint_hflip_indices(cfg.DATASETS.TRAIN) if is_train else None
        )
        return ret

    def __call__(self, dataset_dict):
        if self.is_train:
            return super().__call__(dataset_dict)
        dataset_dict = copy.deepcopy(dataset_dict)
        image = utils.read_image(dataset_dict["file_name"], format=self.image_format)
        utils.check_image_size(dataset_dict, image)
        aug_input = T.AugInput(image)
        transforms = self.augmentations(aug_input)
        image = aug_input.image
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if "annotations" in dataset_dict:
            self._transform_annotations(dataset_dict, transforms, image.shape[:2])
        return dataset_dict
