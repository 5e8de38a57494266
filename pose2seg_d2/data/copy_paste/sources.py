"""The persons copy-paste draws from: every eligible person of the training split."""
import collections
import itertools

import numpy as np
from detectron2.data import DatasetCatalog
from detectron2.data import detection_utils as utils
from detectron2.data.common import DatasetFromList
from detectron2.structures import BoxMode

from ..coco_format import decode_segmentation
from ..validation import InvalidDatasetError
from .compositing import PersonCrop

__all__ = ["CopyPasteSources"]


class CopyPasteSources:
    """
    The persons of a set of dataset dicts that may be pasted: not crowd regions, with a
    ``segmentation``, a box (``bbox``) of at least ``min_area`` pixels and at least
    ``min_keypoints`` labeled keypoints (v > 0). Only their annotations are kept (serialized,
    as Detectron2's ``DatasetFromList`` keeps records, so that data loader workers share
    them); a person's image is read and its mask decoded when it is drawn, and the last
    ``cache_size`` crops are kept. A drawn person whose mask turns out empty is not drawn
    again.
    """

    def __init__(self, dataset_dicts, image_format="BGR", min_area=0.0, min_keypoints=0, cache_size=32, name=""):
        """
        Args:
            dataset_dicts (iterable[dict]): records in Detectron2's format.
            image_format (str): the format images are read in (INPUT.FORMAT), that of the
                images the persons are pasted onto.
            min_area (float): the smallest box area (pixels) of a person drawn.
            min_keypoints (int): the fewest labeled keypoints of a person drawn.
            cache_size (int): how many decoded crops are kept.
            name (str): what the records are, for messages (e.g. the dataset names).
        """
        entries = []
        for record in dataset_dicts:
            for anno in record.get("annotations", []):
                if anno.get("iscrowd", 0) or "segmentation" not in anno or "bbox" not in anno:
                    continue
                mode = anno.get("bbox_mode", BoxMode.XYWH_ABS)
                x0, y0, x1, y1 = BoxMode.convert(list(anno["bbox"]), mode, BoxMode.XYXY_ABS)
                keypoints = np.asarray(anno.get("keypoints", []), dtype=np.float64).reshape(-1, 3)
                if (x1 - x0) * (y1 - y0) < min_area or int((keypoints[:, 2] > 0).sum()) < min_keypoints:
                    continue
                entries.append({
                    "file_name": record["file_name"], "height": record["height"], "width": record["width"],
                    "image_id": record.get("image_id"), "id": anno.get("id"),
                    "category_id": anno.get("category_id", 0), "segmentation": anno["segmentation"],
                    "keypoints": keypoints.astype(np.float32),
                })  # fmt: skip
        if not entries:
            raise ValueError(
                f"INPUT.COPY_PASTE: no person of {name or 'the training data'} can be pasted (each needs "
                f"iscrowd 0, a segmentation, a box of at least MIN_SOURCE_AREA = {min_area} pixels and "
                f"MIN_SOURCE_KEYPOINTS = {min_keypoints} labeled keypoints)"
            )
        self._entries = DatasetFromList(entries, copy=False, serialize=True)
        self._empty = set()
        self.image_format = image_format
        self.cache_size = int(cache_size)
        self._cache = collections.OrderedDict()

    @classmethod
    def from_dataset_names(cls, names, **kwargs):
        """The sources of the datasets ``names`` of Detectron2's DatasetCatalog (e.g.
        cfg.DATASETS.TRAIN); ``kwargs`` as for the constructor."""
        names = [names] if isinstance(names, str) else list(names)
        dicts = itertools.chain.from_iterable(DatasetCatalog.get(name) for name in names)
        return cls(dicts, name=", ".join(names), **kwargs)

    def __len__(self):
        return len(self._entries)

    def entry(self, index):
        """The kept annotation of source ``index`` (a dict with ``file_name``, ``height``,
        ``width``, ``image_id``, ``id``, ``category_id``, ``segmentation``, ``keypoints``)."""
        return self._entries[index]

    def crop(self, index):
        """
        Returns:
            PersonCrop or None: source ``index`` cut out of its image along its mask's box
            (None when the mask is empty).

        Raises:
            InvalidDatasetError: the image cannot be read or is not the record's size, naming
                the file, the image id and the annotation id.
        """
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        entry = self._entries[index]
        file_name, image_id, anno_id = entry["file_name"], entry["image_id"], entry["id"]
        try:
            image = utils.read_image(file_name, format=self.image_format)
        except Exception as e:
            reason = f"copy-paste source image unreadable: {type(e).__name__}: {e}"
            raise InvalidDatasetError((file_name, image_id, anno_id, "file_name", reason)) from e
        height, width = entry["height"], entry["width"]
        if image.shape[:2] != (height, width):
            reason = f"copy-paste source image is {image.shape[1]}x{image.shape[0]}, the record says {width}x{height}"
            raise InvalidDatasetError((file_name, image_id, anno_id, "height/width", reason))
        mask = decode_segmentation(entry["segmentation"], height, width).astype(bool)
        crop = None
        if mask.any():
            ys, xs = np.nonzero(mask)
            x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            keypoints = np.array(entry["keypoints"], dtype=np.float64)
            keypoints[:, :2] -= [x0, y0]
            crop = PersonCrop(
                image=np.ascontiguousarray(image[y0:y1, x0:x1]),
                mask=np.ascontiguousarray(mask[y0:y1, x0:x1]),
                keypoints=keypoints,
                category_id=entry["category_id"],
                source={"file_name": file_name, "image_id": image_id, "id": anno_id},
            )
        if self.cache_size > 0:
            self._cache[index] = crop
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return crop

    def draw(self, rng, exclude_file_name=None, attempts=10):
        """
        A person drawn uniformly among the sources, not from the image ``exclude_file_name``
        (the target's own), its mask not empty.

        Args:
            rng: ``numpy.random.RandomState`` or the ``numpy.random`` module.

        Returns:
            PersonCrop or None: None when ``attempts`` draws found none (e.g. every source is
            in the excluded image).
        """
        for _ in range(attempts):
            index = int(rng.randint(len(self._entries)))
            if index in self._empty or self._entries[index]["file_name"] == exclude_file_name:
                continue
            crop = self.crop(index)
            if crop is not None:
                return crop
            self._empty.add(index)
        return None
