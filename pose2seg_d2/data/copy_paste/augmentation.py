"""CopyPaste: copy-paste of persons applied to one record's image and annotations."""
import copy
import logging

import numpy as np
from detectron2.config import configurable
from detectron2.data import MetadataCatalog
from detectron2.data import detection_utils as utils
from detectron2.structures import BoxMode

from ...pose.keypoints import NUM_KEYPOINTS, flip_permutation
from ..coco_format import decode_segmentation, encode_mask
from .compositing import PersonCrop, mask_boxes, paste_persons
from .placement import PLACEMENTS
from .sources import CopyPasteSources

__all__ = ["CopyPaste", "keypoint_flip_indices"]

logger = logging.getLogger(__name__)


def keypoint_flip_indices(dataset_names):
    """
    The left/right keypoint permutation of the datasets' metadata (``keypoint_names`` and
    ``keypoint_flip_map``, as Detectron2's ``create_keypoint_hflip_indices``); the COCO
    person's when the metadata has none (datasets without keypoints).
    """
    meta = MetadataCatalog.get(dataset_names[0] if not isinstance(dataset_names, str) else dataset_names)
    if meta.get("keypoint_names") is None or meta.get("keypoint_flip_map") is None:
        return np.asarray(flip_permutation(), dtype=np.int64)
    return np.asarray(utils.create_keypoint_hflip_indices(dataset_names), dtype=np.int64)


def _check_options(prob, max_pasted, placement, min_visible, scale_range, flip_prob, occlude_buffer):
    problems = []
    if not 0 <= prob <= 1:
        problems.append(f"PROB must be in [0, 1], got {prob}")
    if int(max_pasted) != max_pasted or max_pasted < 1:
        problems.append(f"MAX_PASTED must be an integer >= 1, got {max_pasted}")
    if not callable(placement) and placement not in PLACEMENTS:
        problems.append(f"PLACEMENT must be one of {sorted(PLACEMENTS)}, got {placement!r}")
    if not 0 <= min_visible <= 1:
        problems.append(f"MIN_VISIBLE must be in [0, 1], got {min_visible}")
    if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
        problems.append(f"SCALE_RANGE must be (low, high) with 0 < low <= high, got {tuple(scale_range)}")
    if not 0 <= flip_prob <= 1:
        problems.append(f"FLIP_PROB must be in [0, 1], got {flip_prob}")
    if occlude_buffer < 0:
        problems.append(f"OCCLUDE_BUFFER must be >= 0, got {occlude_buffer}")
    if problems:
        raise ValueError("INPUT.COPY_PASTE: " + "; ".join(problems))


class CopyPaste:
    """
    With probability ``prob``, pastes 1 to ``max_pasted`` persons (the number uniform) drawn
    from ``sources`` onto a record's image, placed by ``placement``, each scaled by a factor
    uniform in ``scale_range`` (capped to fit the image) and mirrored with probability
    ``flip_prob``, and rewrites the record's annotations as :func:`paste_persons` says: the
    persons underneath keep only their visible pixels (persons left with less than
    ``min_visible`` of their mask are removed), their covered keypoints become v = 1, boxes
    are those of the visible masks, and the pasted persons are added with their keypoints
    moved, mirrored left/right through the flip map.

    Annotations come back in Detectron2's format: a person whose mask changed, and every
    pasted person, has its ``segmentation`` as compressed RLE and its ``bbox`` the mask's
    tight box (``BoxMode.XYXY_ABS``); persons nothing covered keep their segmentation and box as
    they were (their keypoints can still become v = 1, when a pasted person covers a keypoint
    outside their own mask). Pasted persons carry ``copy_paste_source`` (``file_name``,
    ``image_id``, ``id``), the person they come from. Crowd regions are passed through
    unchanged and never pasted. A person without ``segmentation`` counts as covering no pixels:
    it keeps its box and is never removed.
    """

    @configurable
    def __init__(
        self, *, sources, flip_indices, prob=0.8, max_pasted=2, placement="occlude", min_visible=0.1,
        scale_range=(0.8, 1.2), flip_prob=0.5, occlude_buffer=0.4,
    ):  # fmt: skip
        """
        Args:
            sources (CopyPasteSources or object with ``draw(rng, exclude_file_name)``): the
                persons to paste.
            flip_indices (sequence[int]): (K,) the left/right keypoint permutation.
            placement (str or callable): a key of :data:`PLACEMENTS`, or a policy with their
                signature.
            The others: see INPUT.COPY_PASTE in pose2seg_d2/config.py.
        """
        _check_options(prob, max_pasted, placement, min_visible, scale_range, flip_prob, occlude_buffer)
        self.sources = sources
        self.flip_indices = np.asarray(flip_indices, dtype=np.int64)
        self.prob = float(prob)
        self.max_pasted = int(max_pasted)
        self.placement = PLACEMENTS[placement] if isinstance(placement, str) else placement
        self.min_visible = float(min_visible)
        self.scale_range = tuple(float(s) for s in scale_range)
        self.flip_prob = float(flip_prob)
        self.occlude_buffer = float(occlude_buffer)

    @classmethod
    def from_config(cls, cfg):
        options = cfg.INPUT.COPY_PASTE
        _check_options(
            options.PROB, options.MAX_PASTED, options.PLACEMENT, options.MIN_VISIBLE, options.SCALE_RANGE,
            options.FLIP_PROB, options.OCCLUDE_BUFFER,
        )  # fmt: skip
        if not cfg.DATASETS.TRAIN:
            raise ValueError("INPUT.COPY_PASTE.ENABLED needs DATASETS.TRAIN, the persons it pastes")
        sources = CopyPasteSources.from_dataset_names(
            cfg.DATASETS.TRAIN, image_format=cfg.INPUT.FORMAT, min_area=options.MIN_SOURCE_AREA,
            min_keypoints=options.MIN_SOURCE_KEYPOINTS,
        )  # fmt: skip
        logger.info(f"Copy-paste draws from {len(sources)} persons of {', '.join(cfg.DATASETS.TRAIN)}")
        return {
            "sources": sources,
            "flip_indices": keypoint_flip_indices(cfg.DATASETS.TRAIN),
            "prob": options.PROB,
            "max_pasted": options.MAX_PASTED,
            "placement": options.PLACEMENT,
            "min_visible": options.MIN_VISIBLE,
            "scale_range": tuple(options.SCALE_RANGE),
            "flip_prob": options.FLIP_PROB,
            "occlude_buffer": options.OCCLUDE_BUFFER,
        }

    def _keypoints_of(self, crop):
        """A crop's keypoints as (K, 3); zeros when its record has none."""
        keypoints = np.asarray(crop.keypoints, dtype=np.float64).reshape(-1, 3)
        if len(keypoints) == 0:
            return np.zeros((len(self.flip_indices), 3))
        return keypoints

    def __call__(self, image, annotations, file_name=None, rng=np.random):
        """
        Args:
            image (ndarray): (H, W, 3) uint8, the record's image as read (before any
                augmentation).
            annotations (list[dict]): the record's annotations (not modified).
            file_name (str or None): the record's image, whose own persons are not pasted.
            rng: ``numpy.random.RandomState`` or the ``numpy.random`` module.

        Returns:
            tuple: the image (a new array when persons were pasted) and the new list of
            annotations (the same list when none were).
        """
        if self.prob <= 0 or rng.uniform() >= self.prob:
            return image, annotations
        height, width = image.shape[:2]
        num_pasted = int(rng.randint(1, self.max_pasted + 1))
        crops = [self.sources.draw(rng, exclude_file_name=file_name) for _ in range(num_pasted)]
        crops = [c for c in crops if c is not None]
        if not crops:
            return image, annotations
        crops = [
            PersonCrop(c.image, c.mask, self._keypoints_of(c), c.category_id, c.source) for c in crops
        ]  # fmt: skip

        persons = [a for a in annotations if not a.get("iscrowd", 0)]
        crowds = [a for a in annotations if a.get("iscrowd", 0)]
        num_keypoints = len(self.flip_indices)
        masks = np.zeros((len(persons), height, width), dtype=bool)
        keypoints = np.zeros((len(persons), num_keypoints, 3))
        for i, anno in enumerate(persons):
            if "segmentation" in anno:
                masks[i] = decode_segmentation(anno["segmentation"], height, width).astype(bool)
            if "keypoints" in anno:
                keypoints[i] = np.asarray(anno["keypoints"], dtype=np.float64).reshape(num_keypoints, 3)
        person_boxes = _person_boxes(persons, masks)

        placements = [
            self.placement(
                rng, (height, width), c.mask.shape, person_boxes, self.scale_range, self.flip_prob,
                self.occlude_buffer,
            )
            for c in crops
        ]  # fmt: skip
        result = paste_persons(image, masks, keypoints, crops, placements, self.flip_indices, self.min_visible)

        new_annotations = []
        for row, origin in enumerate(result.origin):
            if origin < len(persons):
                anno = copy.copy(persons[origin])
                if "keypoints" in anno:
                    anno["keypoints"] = result.keypoints[row].reshape(-1).tolist()
            else:
                crop = crops[origin - len(persons)]
                anno = {
                    "iscrowd": 0,
                    "category_id": crop.category_id,
                    "keypoints": result.keypoints[row].reshape(-1).tolist(),
                    "copy_paste_source": dict(crop.source),
                }
            if result.changed[row]:
                anno["segmentation"] = encode_mask(result.masks[row])
                anno["bbox"] = result.boxes[row].tolist()
                anno["bbox_mode"] = BoxMode.XYXY_ABS
            new_annotations.append(anno)
        return result.image, new_annotations + crowds


def _person_boxes(persons, masks):
    """(N, 4) XYXY boxes of the persons to place next to: their masks' tight boxes, or their
    ``bbox`` when a person has no mask pixels."""
    boxes = mask_boxes(masks)
    for i in np.flatnonzero(~masks.any(axis=(1, 2))):
        anno = persons[i]
        if "bbox" in anno:
            boxes[i] = BoxMode.convert(list(anno["bbox"]), anno.get("bbox_mode", BoxMode.XYWH_ABS), BoxMode.XYXY_ABS)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep]
