"""
Validation of person datasets: COCO-style files on loading, and dataset dicts in the mappers.

Bad data gives a clear error: :class:`InvalidDatasetError` names the file, the record (image
id, annotation id) and the field. Nothing is dropped silently: a record is skipped only when
the user asks for it (``on_invalid="skip"``, or ``POSE2SEG_ON_INVALID_DATA=skip`` for the
registered datasets), and then every skipped record is counted and reported
(:class:`ValidationReport`, logged as a warning).

A COCO-style person file must have ``images``, ``annotations`` and ``categories`` lists;

- an image: ``id`` (an integer, unique), ``file_name`` (a file under the image folder that
  exists), ``height`` and ``width`` (positive integers);
- an annotation: ``id`` (an integer, unique), ``image_id`` (of an image of the file),
  ``category_id`` (of a category of the file), ``bbox`` (4 finite numbers
  [x, y, w, h], w and h >= 0), ``keypoints`` (51 finite numbers: x, y, v for the 17 COCO
  keypoints, v in {0, 1, 2}), ``segmentation`` (polygons: lists of an even number of finite
  numbers, or an RLE ``{"size": [height, width] of the image, "counts": ...}``), optional
  ``iscrowd`` (0 or 1), ``max_iou`` (a number in [0, 1]) and ``ignore`` (0; Detectron2 does
  not support ignored annotations).

Polygons of fewer than 3 points (fewer than 6 numbers, an even count) cover no area and occur
in COCO itself: like Detectron2, they are dropped from their annotation, but counted and
reported; an annotation left with no polygon is invalid.
"""
import collections
import logging
import math
import numbers
import os

import numpy as np

from ..pose.keypoints import NUM_KEYPOINTS

__all__ = [
    "ON_INVALID_ENV",
    "ON_INVALID_CHOICES",
    "InvalidDatasetError",
    "Problem",
    "ValidationReport",
    "resolve_on_invalid",
    "is_number",
    "is_integer",
    "check_bbox",
    "check_keypoints",
    "check_segmentation",
    "validate_person_json",
]

logger = logging.getLogger(__name__)

ON_INVALID_ENV = "POSE2SEG_ON_INVALID_DATA"
ON_INVALID_CHOICES = ("raise", "skip")


def resolve_on_invalid(on_invalid=None):
    """``on_invalid``, or when None ``$POSE2SEG_ON_INVALID_DATA``, default "raise"."""
    value = on_invalid if on_invalid is not None else os.environ.get(ON_INVALID_ENV, "raise")
    if value not in ON_INVALID_CHOICES:
        source = "on_invalid" if on_invalid is not None else f"${ON_INVALID_ENV}"
        raise ValueError(f"{source} must be one of {ON_INVALID_CHOICES}, got {value!r}")
    return value


class Problem(collections.namedtuple("Problem", "file image_id annotation_id field reason")):
    """One invalid record: the file, the image id, the annotation id (None for an image
    record), the field and what is wrong with it."""

    def __str__(self):
        where = [str(self.file)]
        if self.image_id is not None:
            where.append(f"image id {self.image_id!r}")
        if self.annotation_id is not None:
            where.append(f"annotation id {self.annotation_id!r}")
        return f"{', '.join(where)}, field {self.field!r}: {self.reason}"


class InvalidDatasetError(ValueError):
    """
    Invalid data. ``str()`` names the file, the record and the field; the same are attributes:
    ``file``, ``image_id``, ``annotation_id`` (None when the problem is not in an annotation),
    ``field`` and ``reason``.
    """

    def __init__(self, problem, note=""):
        """
        Args:
            problem (Problem or tuple or str): the invalid record; a str is a whole message
                (as when a data loader worker's error is raised again, or unpickled), and
                leaves the attributes None.
            note (str): appended to the message.
        """
        if isinstance(problem, str):
            self.problem = None
            self.file = self.image_id = self.annotation_id = self.field = self.reason = None
            super().__init__(problem + note)
            return
        self.problem = Problem(*problem)
        self.file, self.image_id, self.annotation_id, self.field, self.reason = self.problem
        super().__init__(str(self.problem) + note)


class ValidationReport:
    """
    What validation found in one file.

    Attributes:
        file (str): the file.
        problems (list[Problem]): every invalid record, in file order.
        skipped_images, skipped_annotations (int): records left out (``on_invalid="skip"``);
            the annotations of a skipped image count as skipped.
        dropped_polygons (int): polygons of fewer than 3 points removed from valid annotations.
    """

    def __init__(self, file):
        self.file = file
        self.problems = []
        self.skipped_images = 0
        self.skipped_annotations = 0
        self.dropped_polygons = 0

    def summary(self, max_listed=5):
        lines = [
            f"{self.file}: {len(self.problems)} invalid record(s); skipped {self.skipped_images} image(s) "
            f"and {self.skipped_annotations} annotation(s)"
        ]
        lines += [f"  {p}" for p in self.problems[:max_listed]]
        if len(self.problems) > max_listed:
            lines.append(f"  ... and {len(self.problems) - max_listed} more")
        return "\n".join(lines)


def is_number(x):
    """Whether ``x`` is a real number (Python or NumPy, NaN and infinities included) and not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def is_integer(x):
    """Whether ``x`` is an integer (Python or NumPy) and not a bool."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _describe(x, limit=60):
    text = repr(x)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_PLAIN_NUMBERS = {int, float}


def _finite_numbers(values):
    """Whether ``values`` is a list or tuple of finite real numbers."""
    if not isinstance(values, (list, tuple)):
        return False
    # fast path for what JSON gives: ints and floats whose sum is finite (a NaN or an infinity
    # makes the sum non-finite; an overflowing sum goes the slow way)
    if set(map(type, values)) <= _PLAIN_NUMBERS and math.isfinite(sum(values)):
        return True
    return all(is_number(v) and math.isfinite(v) for v in values)


def check_bbox(bbox):
    """
    Args:
        bbox: the ``bbox`` field, [x, y, w, h].

    Returns:
        str or None: what is wrong, or None.
    """
    if not _finite_numbers(bbox) or len(bbox) != 4:
        return f"expected 4 finite numbers [x, y, w, h], got {_describe(bbox)}"
    if bbox[2] < 0 or bbox[3] < 0:
        return f"width and height must be >= 0, got {_describe(bbox)}"
    return None


def check_keypoints(keypoints, num_keypoints=NUM_KEYPOINTS, visibilities=(0, 1, 2), require_finite=True):
    """
    Args:
        keypoints: the ``keypoints`` field, flat (x, y, v) values.
        num_keypoints (int): how many keypoints there must be.
        visibilities (collection or None): allowed v values; None allows any number.
        require_finite (bool): reject NaN and infinite values.

    Returns:
        str or None: what is wrong, or None.
    """
    expected = 3 * num_keypoints
    if not isinstance(keypoints, (list, tuple, np.ndarray)):
        what = f"a list of {expected} numbers (x, y, v for {num_keypoints} keypoints)"
        return f"expected {what}, got {_describe(keypoints)}"
    values = list(np.asarray(keypoints).reshape(-1)) if isinstance(keypoints, np.ndarray) else keypoints
    if len(values) != expected:
        return f"expected {expected} numbers (x, y, v for {num_keypoints} keypoints), got {len(values)}"
    fine = _finite_numbers(values) if require_finite else set(map(type, values)) <= _PLAIN_NUMBERS
    for i, v in enumerate([] if fine else values):
        if not is_number(v) or (require_finite and not math.isfinite(v)):
            kind = "a finite number" if require_finite else "a number"
            return f"value {i} (keypoint {i // 3}, {'xyv'[i % 3]}) must be {kind}, got {_describe(v)}"
    if visibilities is not None and not set(values[2::3]) <= set(visibilities):
        for k in range(num_keypoints):
            if values[3 * k + 2] not in visibilities:
                return f"keypoint {k} has visibility {values[3 * k + 2]!r}, expected one of {tuple(visibilities)}"
    return None


def check_segmentation(segm, image_size=None):
    """
    Args:
        segm: the ``segmentation`` field: a list of polygons, an RLE dict or a (H, W) array.
        image_size (tuple[int, int] or None): the image (height, width) an RLE or array must
            have.

    Returns:
        tuple: (what is wrong or None, the number of polygons of fewer than 3 points, which
        are to be dropped).
    """
    if isinstance(segm, dict):
        if "counts" not in segm or "size" not in segm:
            return f"an RLE needs 'size' and 'counts', got the keys {sorted(segm)}", 0
        size = segm["size"]
        if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(is_integer(s) and s > 0 for s in size):
            return f"RLE 'size' must be [height, width], got {_describe(size)}", 0
        if image_size is not None and tuple(size) != tuple(image_size):
            return f"RLE 'size' {list(size)} is not the image's [height, width] {list(image_size)}", 0
        counts = segm["counts"]
        if not isinstance(counts, (str, bytes)) and not (
            isinstance(counts, list) and all(is_integer(c) and c >= 0 for c in counts)
        ):
            return f"RLE 'counts' must be a string or a list of non-negative integers, got {_describe(counts)}", 0
        if isinstance(counts, list) and sum(counts) != size[0] * size[1]:
            return f"RLE 'counts' add up to {sum(counts)}, not height x width = {size[0] * size[1]}", 0
        return None, 0
    if isinstance(segm, np.ndarray):
        if segm.ndim != 2 or (image_size is not None and segm.shape != tuple(image_size)):
            return f"a mask array must be (height, width) {tuple(image_size or ())}, got {segm.shape}", 0
        return None, 0
    if not isinstance(segm, list):
        return f"expected a list of polygons or an RLE dict, got {_describe(segm)}", 0
    degenerate = 0
    for k, poly in enumerate(segm):
        if not _finite_numbers(poly):
            return f"polygon {k} must be a flat list of finite numbers, got {_describe(poly)}", 0
        if len(poly) % 2:
            return f"polygon {k} has an odd number of values ({len(poly)}): x, y pairs expected", 0
        if len(poly) < 6:
            degenerate += 1
    if degenerate == len(segm):
        return f"no polygon with at least 3 points (got {_describe(segm)})", 0
    return None, degenerate


def _image_problems(img, image_root, check_image_files):
    """(field, reason) pairs for one image record."""
    if not isinstance(img, dict):
        return [("images", f"an image record must be an object, got {_describe(img)}")]
    out = []
    if not is_integer(img.get("id")):
        out.append(("id", f"expected an integer, got {_describe(img.get('id', '<missing>'))}"))
    name = img.get("file_name")
    if not isinstance(name, str) or not name:
        out.append(("file_name", f"expected a file name, got {_describe(img.get('file_name', '<missing>'))}"))
    elif check_image_files and not os.path.isfile(os.path.join(image_root, name)):
        out.append(("file_name", f"image file not found: {os.path.join(image_root, name)}"))
    for key in ("height", "width"):
        if key not in img:
            out.append((key, "missing"))
        elif not is_integer(img[key]) or img[key] <= 0:
            out.append((key, f"expected a positive integer, got {_describe(img[key])}"))
    return out


def _annotation_problems(anno, images, category_ids):
    """(field, reason) pairs and the number of degenerate polygons of one annotation."""
    if not isinstance(anno, dict):
        return [("annotations", f"an annotation must be an object, got {_describe(anno)}")], 0
    out = []
    for key in ("id", "image_id", "category_id", "bbox", "keypoints", "segmentation"):
        if key not in anno:
            out.append((key, "missing"))
    if "id" in anno and not is_integer(anno["id"]):
        out.append(("id", f"expected an integer, got {_describe(anno['id'])}"))
    img = None
    if "image_id" in anno:
        img = images.get(anno["image_id"]) if is_integer(anno["image_id"]) else None
        if img is None:
            out.append(("image_id", f"no image with id {_describe(anno['image_id'])} in the file"))
    if "category_id" in anno and anno["category_id"] not in category_ids:
        out.append(("category_id", f"{_describe(anno['category_id'])} is not the id of a category of the file"))
    if anno.get("iscrowd", 0) not in (0, 1) or isinstance(anno.get("iscrowd", 0), bool):
        out.append(("iscrowd", f"expected 0 or 1, got {_describe(anno['iscrowd'])}"))
    if anno.get("ignore", 0) != 0:
        out.append(("ignore", "ignored annotations are not supported (Detectron2); remove them or the field"))
    if "max_iou" in anno and not (is_number(anno["max_iou"]) and 0 <= anno["max_iou"] <= 1):
        out.append(("max_iou", f"expected a number in [0, 1], got {_describe(anno['max_iou'])}"))
    if "bbox" in anno:
        reason = check_bbox(anno["bbox"])
        if reason:
            out.append(("bbox", reason))
    if "keypoints" in anno:
        reason = check_keypoints(anno["keypoints"])
        if reason:
            out.append(("keypoints", reason))
    degenerate = 0
    if "segmentation" in anno:
        size = (img["height"], img["width"]) if isinstance(img, dict) and "height" in img and "width" in img else None
        reason, degenerate = check_segmentation(anno["segmentation"], size)
        if reason:
            out.append(("segmentation", reason))
    return out, degenerate


def validate_person_json(data, json_file, image_root, on_invalid="raise", check_image_files=True):
    """
    Validate a parsed COCO-style person file (see the module docstring for the rules).

    Args:
        data (dict): the parsed JSON.
        json_file (str): its path, for the messages.
        image_root (str): the image folder.
        on_invalid (str): "raise": raise :class:`InvalidDatasetError` for the first invalid
            record (after checking them all; the message says how many there are); "skip":
            leave invalid records out and report them.
        check_image_files (bool): check that every image file exists.

    Returns:
        tuple: the valid ``images`` (list[dict]) and ``annotations`` (list[dict]) in file
        order, the ``categories`` and the :class:`ValidationReport`.

    Raises:
        InvalidDatasetError: ``on_invalid="raise"`` and a record is invalid, or the file
            itself lacks ``images``, ``annotations`` or ``categories`` (whatever
            ``on_invalid``).
    """
    on_invalid = resolve_on_invalid(on_invalid)
    report = ValidationReport(json_file)
    category_ids = _check_file_structure(data, json_file)
    images, valid_images = _validate_images(data["images"], json_file, image_root, check_image_files, report)
    annotations = _validate_annotations(data["annotations"], json_file, images, category_ids, report)
    report.skipped_images = len(data["images"]) - len(valid_images)
    _raise_or_log(report, on_invalid)
    return valid_images, annotations, data["categories"], report


def _check_file_structure(data, json_file):
    """The file's category ids, after checking that ``images``, ``annotations`` and
    ``categories`` are lists and every category has an integer id and a name."""
    if not isinstance(data, dict):
        raise InvalidDatasetError((json_file, None, None, "<file>", f"expected a JSON object, got {_describe(data)}"))
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            reason = "missing" if key not in data else f"expected a list, got {_describe(data[key])}"
            raise InvalidDatasetError((json_file, None, None, key, reason))
    category_ids = set()
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or not is_integer(cat.get("id")) or not isinstance(cat.get("name"), str):
            reason = f"expected an object with an integer id and a name, got {_describe(cat)}"
            raise InvalidDatasetError((json_file, None, None, f"categories[{i}]", reason))
        category_ids.add(cat["id"])
    return category_ids


def _validate_images(records, json_file, image_root, check_image_files, report):
    """
    Returns:
        tuple: ``images``, image id -> ``{"_index", "height", "width"}`` (``{"_index",
        "_invalid"}`` for an invalid record with an integer id), and the valid records;
        problems go to ``report``.
    """
    images, valid_images = {}, []
    for i, img in enumerate(records):
        image_id = img.get("id") if isinstance(img, dict) else None
        problems = _image_problems(img, image_root, check_image_files)
        if not problems and image_id in images:
            problems = [("id", f"duplicate image id (also images[{images[image_id]['_index']}])")]
        if problems:
            report.problems += [Problem(json_file, image_id, None, f, r) for f, r in problems]
            if is_integer(image_id) and image_id not in images:
                images[image_id] = {"_index": i, "_invalid": True}
            continue
        images[image_id] = {"_index": i, "height": img["height"], "width": img["width"]}
        valid_images.append(img)
    return images, valid_images


def _validate_annotations(records, json_file, images, category_ids, report):
    """The valid annotations of valid images; problems, skips and dropped polygons go to
    ``report``."""
    annotations, seen_ids = [], set()
    for anno in records:
        anno_id = anno.get("id") if isinstance(anno, dict) else None
        image_id = anno.get("image_id") if isinstance(anno, dict) else None
        problems, degenerate = _annotation_problems(anno, images, category_ids)
        if not problems and anno_id in seen_ids:
            problems = [("id", "duplicate annotation id")]
        if problems:
            report.problems += [Problem(json_file, image_id, anno_id, f, r) for f, r in problems]
            report.skipped_annotations += 1
            continue
        seen_ids.add(anno_id)
        if images[image_id].get("_invalid"):
            report.skipped_annotations += 1  # of a skipped image
            continue
        report.dropped_polygons += degenerate
        annotations.append(anno)
    return annotations


def _raise_or_log(report, on_invalid):
    """Raise for the first problem of ``report`` (``on_invalid="raise"``), else log what was
    left out and the dropped polygons."""
    if report.problems and on_invalid == "raise":
        more = len(report.problems) - 1
        note = (f" (and {more} more invalid record(s))" if more else "") + (
            f". Fix the file, or set {ON_INVALID_ENV}=skip (on_invalid='skip') to leave invalid "
            "records out, counted and reported"
        )
        raise InvalidDatasetError(report.problems[0], note)
    if report.problems:
        logger.warning("Invalid records left out (on_invalid='skip'):\n" + report.summary())
    if report.dropped_polygons:
        logger.warning(
            f"{report.file}: dropped {report.dropped_polygons} polygon(s) of fewer than 3 points "
            "from otherwise valid annotations (as Detectron2 does; they cover no area)"
        )
