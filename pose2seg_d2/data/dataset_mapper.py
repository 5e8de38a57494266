"""The dataset mappers Pose2Seg and the Mask R-CNN baseline train and test with."""
import copy
import os

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import DatasetMapper
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.structures import Keypoints

from ..pose.keypoints import NUM_KEYPOINTS
from .coco_format import decode_segmentation
from .validation import InvalidDatasetError, check_bbox, check_keypoints, check_segmentation

__all__ = ["ValidatingDatasetMapper", "Pose2SegDatasetMapper", "DensePretrainingMapper"]


class ValidatingDatasetMapper(DatasetMapper):
    """
    Detectron2's :class:`DatasetMapper` whose errors name the image file, the image id, the
    annotation and the field.

    Before mapping, the fields the mapping uses of the non-crowd annotations (Detectron2
    drops crowd ones) are checked: ``bbox`` (4 finite numbers), ``keypoints`` when keypoints
    are used (3 numbers per keypoint of the dataset, 17 without flip indices; NaN and
    infinite values pass: Detectron2 maps them to unlabeled and Pose2Seg ignores them),
    ``segmentation`` when masks are used (polygons of at least 3 points, an RLE or mask of the
    record's height x width). Any error while mapping (a missing or unreadable image file, an
    image whose size is not the record's, ...) is raised again as :class:`InvalidDatasetError`
    naming the file, the image id and, when it can be told, the field, with the original error
    as its cause. Valid records are mapped exactly as Detectron2 maps them.
    """

    def _num_keypoints(self):
        if self.keypoint_hflip_indices is not None:
            return len(self.keypoint_hflip_indices)
        return NUM_KEYPOINTS

    def _check_annotations(self, dataset_dict):
        file_name, image_id = dataset_dict.get("file_name"), dataset_dict.get("image_id")
        size = None
        if "height" in dataset_dict and "width" in dataset_dict:
            size = (dataset_dict["height"], dataset_dict["width"])
        annotations = dataset_dict.get("annotations", [])
        if not isinstance(annotations, list):
            raise InvalidDatasetError((file_name, image_id, None, "annotations", "expected a list of annotations"))
        for i, anno in enumerate(annotations):
            anno_id = anno.get("id", f"annotations[{i}]") if isinstance(anno, dict) else f"annotations[{i}]"
            if not isinstance(anno, dict):
                raise InvalidDatasetError((file_name, image_id, anno_id, "annotations", "an annotation must be a dict"))
            if anno.get("iscrowd", 0):
                continue
            problems = []
            if "bbox" not in anno:
                problems.append(("bbox", "missing"))
            else:
                bbox = anno["bbox"]
                problems.append(("bbox", check_bbox(list(bbox) if isinstance(bbox, np.ndarray) else bbox)))
            if self.use_keypoint:
                if "keypoints" not in anno:
                    problems.append(("keypoints", "missing"))
                else:
                    # NaN or infinite keypoints are allowed here: Detectron2 maps them to unlabeled
                    reason = check_keypoints(anno["keypoints"], self._num_keypoints(), None, require_finite=False)
                    problems.append(("keypoints", reason))
            if self.use_instance_mask:
                if "segmentation" not in anno:
                    problems.append(("segmentation", "missing"))
                else:
                    reason, degenerate = check_segmentation(anno["segmentation"], size)
                    if reason is None and degenerate:
                        reason = f"{degenerate} polygon(s) of fewer than 3 points"
                    problems.append(("segmentation", reason))
            for field, reason in problems:
                if reason:
                    raise InvalidDatasetError((file_name, image_id, anno_id, field, reason))

    def _diagnose(self, dataset_dict, error):
        """(field, reason) for an error raised while mapping ``dataset_dict``."""
        file_name = dataset_dict.get("file_name")
        if isinstance(error, utils.SizeMismatchError):
            return "height/width", str(error)
        if not isinstance(file_name, str):
            return "file_name", f"expected an image file name, got {file_name!r}"
        if not os.path.isfile(file_name):
            return "file_name", f"image file not found: {file_name}"
        try:
            utils.read_image(file_name, format=self.image_format)
        except Exception as e:
            return "file_name", f"cannot read the image file {file_name}: {type(e).__name__}: {e}"
        return "annotations", f"mapping failed: {type(error).__name__}: {error}"

    def map(self, dataset_dict):
        """The mapping itself, without the checks: Detectron2's."""
        return super().__call__(dataset_dict)

    def __call__(self, dataset_dict):
        """
        Args:
            dataset_dict (dict): one record of Detectron2's dataset format.

        Returns:
            dict: what :class:`DatasetMapper` returns.

        Raises:
            InvalidDatasetError: an invalid field, or any error while mapping, naming the
                image file, the image id, the annotation id (``id``, else its index) and the
                field.
        """
        if self.is_train or getattr(self, "keep_annotations", False):
            self._check_annotations(dataset_dict)
        try:
            return self.map(dataset_dict)
        except InvalidDatasetError:
            raise
        except Exception as e:
            field, reason = self._diagnose(dataset_dict, e)
            problem = (dataset_dict.get("file_name"), dataset_dict.get("image_id"), None, field, reason)
            raise InvalidDatasetError(problem) from e


class Pose2SegDatasetMapper(ValidatingDatasetMapper):
    """
    :class:`ValidatingDatasetMapper` with keypoints always on and, unlike Detectron2's
    mapper, annotations kept at test time: Pose2Seg takes its persons from
    ``instances.gt_keypoints`` when MODEL.POSE2SEG.KEYPOINT_SOURCE is "gt". Masks are mapped
    in training only. An image without persons (no annotations, or only crowd regions) gets
    instances with an empty (0, K, 3) ``gt_keypoints``, which Detectron2 leaves out when there
    are no annotations: "no persons" is then told apart from "not mapped with keypoints".
    """

    keep_annotations = True

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

    def map(self, dataset_dict):
        mapped = self._map_image(dataset_dict)
        instances = mapped.get("instances")
        if instances is not None and len(instances) == 0 and not instances.has("gt_keypoints"):
            instances.gt_keypoints = Keypoints(torch.zeros(0, self._num_keypoints(), 3))
        return mapped

    def _map_image(self, dataset_dict):
        if self.is_train:
            return super().map(dataset_dict)
        dataset_dict = copy.deepcopy(dataset_dict)
        image = utils.read_image(dataset_dict["file_name"], format=self.image_format)
        utils.check_image_size(dataset_dict, image)
        aug_input = T.AugInput(image)
        transforms = self.augmentations(aug_input)
        image = aug_input.image
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        dataset_dict.setdefault("annotations", [])  # a record without annotations has no persons
        self._transform_annotations(dataset_dict, transforms, image.shape[:2])
        return dataset_dict


class DensePretrainingMapper(ValidatingDatasetMapper):
    """
    The inputs of :class:`~pose2seg_d2.modeling.DenseHumanPretraining`: the augmented image,
    the union of its persons' masks and every person's keypoints, without the per-person
    instances Detectron2's mapper builds (the targets merge the persons anyway, and decoding one
    union is cheaper). Records are checked as :class:`ValidatingDatasetMapper` checks them.

    Returns dicts with ``image`` (3, H, W) uint8, ``person_mask`` (H, W) uint8 (1 on any
    person), ``keypoints`` (P, K, 3) float32 (transformed like Detectron2's, flipped left/right
    with the dataset's flip map; keypoints v = 0 outside the image), and the record's
    ``file_name``, ``image_id``, ``height``, ``width``.
    """

    def map(self, dataset_dict):
        record = copy.deepcopy(dataset_dict)
        image = utils.read_image(record["file_name"], format=self.image_format)
        utils.check_image_size(record, image)
        h, w = image.shape[:2]
        union = np.zeros((h, w), dtype=np.uint8)
        annotations = [a for a in record.pop("annotations", []) if not a.get("iscrowd", 0)]
        for anno in annotations:
            union |= decode_segmentation(anno["segmentation"], h, w)
        aug_input = T.AugInput(image, sem_seg=union)
        transforms = self.augmentations(aug_input)
        image, union = aug_input.image, aug_input.sem_seg
        keypoints = [
            utils.transform_keypoint_annotations(a["keypoints"], transforms, image.shape[:2], self.keypoint_hflip_indices)
            for a in annotations
        ]
        num_keypoints = self._num_keypoints()
        record["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        record["person_mask"] = torch.as_tensor(np.ascontiguousarray(union))
        record["keypoints"] = torch.as_tensor(
            np.asarray(keypoints, dtype=np.float32).reshape(-1, num_keypoints, 3)
        )
        return record
