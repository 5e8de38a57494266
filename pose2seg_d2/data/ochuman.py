"""
OCHuman: the native annotation file to the COCO-style val and test files of the release.

The native JSON (``ochuman.json``) has top-level ``keypoint_names`` (OCHuman's own order and
names, matched to COCO by name), ``keypoint_visible`` (codes 0 missing, 1 visible, 2
self-occluded, 3 occluded by others) and ``images``; each image has ``image_id``,
``file_name``, ``width``, ``height`` and ``annotations``, each annotation ``bbox``
[x1, y1, x2, y2], ``keypoints`` (flat x, y, code in ``keypoint_names`` order, or null),
``segms`` (null or {``outer``, ``inner``, ``height``, ``width``}, polygon lists; the mask is
outer minus inner) and ``max_iou``.

:func:`convert_ochuman` reproduces the release's conversion (OCHumanApi ``toCocoFormart``):

1. keep, in file order, the images with at least one person that has both keypoints and
   segms, and only those persons;
2. split: val = the first ``val_size`` (2,500) kept images, test = the rest;
3. drop persons whose ``max_iou`` is outside [lo, hi), then images left empty;
4. codes 1, 2 -> v = 2, code 3 -> v = 1, code 0 stays; keypoints reordered to COCO order;
   ``num_keypoints`` counts the codes 1-3;
5. box [x1, y1, x2, y2] -> [x1, y1, x2 - x1, y2 - y1]; ``area`` is the *box* area;
6. mask = outer minus inner polygons rasterized at the segms' own height and width,
   stored as compressed RLE with ``counts`` a str;
7. image and annotation ids renumbered from 1 over what is kept; one category, person, id 1,
   with COCO's keypoint names and skeleton. Field order and values are those of the release.
"""
import logging
import os

import numpy as np

from ..pose.keypoints import COCO_PERSON_KEYPOINT_NAMES
from .coco_format import decode_segmentation, dump_json, encode_mask, load_json, person_category
from .validation import is_integer, is_number

__all__ = [
    "OCHUMAN_TO_COCO_VISIBILITY",
    "OCHUMAN_VAL_SIZE",
    "OCHUMAN_HOW_TO_GET",
    "ochuman_coco_filename",
    "select_ochuman_persons",
    "ochuman_mask",
    "convert_ochuman",
    "prepare_ochuman",
]

logger = logging.getLogger(__name__)

# native code -> COCO v
OCHUMAN_TO_COCO_VISIBILITY = {0: 0, 1: 2, 2: 2, 3: 1}
OCHUMAN_VAL_SIZE = 2500
OCHUMAN_HOW_TO_GET = (
    "OCHuman (images and annotations: ochuman.json and the COCO-style "
    "ochuman_coco_format_{val,test}_range_0.00_1.00.json) is distributed through the form at "
    "https://cg.cs.tsinghua.edu.cn/dataset/form.html?dataset=ochuman "
    "(see https://github.com/liruilong940607/OCHumanApi); see datasets/README.md for the layout"
)


def ochuman_coco_filename(subset, max_iou_range=(0.0, 1.0)):
    """The release's file name, e.g. ``ochuman_coco_format_val_range_0.00_1.00.json``."""
    lo, hi = max_iou_range
    return "ochuman_coco_format_%s_range_%.2f_%.2f.json" % (subset, lo, hi)


class _Where:
    """Names a record of the native file in error messages."""

    def __init__(self, source, image_index, image_id=None, anno_index=None):
        self.source, self.image_index, self.image_id, self.anno_index = source, image_index, image_id, anno_index

    def error(self, field, message):
        where = f"{self.source}: images[{self.image_index}] (image_id {self.image_id!r})"
        if self.anno_index is not None:
            where += f", annotations[{self.anno_index}]"
        return ValueError(f"{where}, field {field!r}: {message}")


def _check_polygons(polys, where, field):
    if not isinstance(polys, list):
        raise where.error(field, f"expected a list of polygons, got {type(polys).__name__}")
    for k, poly in enumerate(polys):
        if not isinstance(poly, list) or not all(is_number(c) for c in poly):
            raise where.error(f"{field}[{k}]", "a polygon must be a flat list of numbers")
        if len(poly) % 2:
            raise where.error(f"{field}[{k}]", f"a polygon needs an even number of values, got {len(poly)}")


def _check_person(anno, where, num_native):
    if not isinstance(anno, dict):
        raise where.error("annotations", "an annotation must be an object")
    kpts = anno["keypoints"]
    if not isinstance(kpts, list) or len(kpts) != 3 * num_native:
        n = len(kpts) if isinstance(kpts, list) else type(kpts).__name__
        raise where.error("keypoints", f"expected {3 * num_native} values (x, y, code per keypoint_names entry), got {n}")
    if not all(is_number(c) for c in kpts):
        raise where.error("keypoints", "values must be numbers")
    for k in range(num_native):
        if kpts[3 * k + 2] not in OCHUMAN_TO_COCO_VISIBILITY:
            raise where.error("keypoints", f"keypoint {k} has visibility code {kpts[3 * k + 2]!r}, expected 0, 1, 2 or 3")
    bbox = anno.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(is_number(c) for c in bbox):
        raise where.error("bbox", f"expected [x1, y1, x2, y2], got {bbox!r}")
    if not is_number(anno.get("max_iou")):
        raise where.error("max_iou", f"expected a number, got {anno.get('max_iou')!r}")
    segms = anno["segms"]
    if not isinstance(segms, dict):
        raise where.error("segms", f"expected an object with outer, inner, height, width, got {type(segms).__name__}")
    for key in ("outer", "height", "width"):
        if key not in segms:
            raise where.error(f"segms.{key}", "missing")
    for key in ("height", "width"):
        if not is_integer(segms[key]) or segms[key] <= 0:
            raise where.error(f"segms.{key}", f"expected a positive integer, got {segms[key]!r}")
    _check_polygons(segms["outer"], where, "segms.outer")
    _check_polygons(segms.get("inner", []), where, "segms.inner")


def select_ochuman_persons(native, source="<native>", sort_by_image_id=False):
    """
    Step 1 of the conversion: the images (in file order) with at least one person having
    both keypoints and segms, each with only those persons. Validates what it keeps.

    Args:
        native (dict): the parsed native JSON.
        source (str): the file name, for error messages.
        sort_by_image_id (bool): order the kept images by ``image_id`` instead of file
            order (the release's OCHumanApi sorts its image ids; the two agree when the file
            is sorted).

    Returns:
        list[tuple[dict, list[dict]]]: (image entry, kept annotations) pairs.
    """
    if not isinstance(native, dict):
        raise ValueError(f"{source}: the native OCHuman file must hold a JSON object")
    for key in ("keypoint_names", "images"):
        if key not in native:
            raise ValueError(f"{source}: top-level field {key!r} is missing (is this the native ochuman.json?)")
    names = native["keypoint_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{source}: top-level field 'keypoint_names' must be a list of names")
    missing = [n for n in COCO_PERSON_KEYPOINT_NAMES if n not in names]
    if missing:
        raise ValueError(f"{source}: top-level field 'keypoint_names' lacks the COCO keypoints {missing}")
    if not isinstance(native["images"], list):
        raise ValueError(f"{source}: top-level field 'images' must be a list")

    kept = []
    for i, image in enumerate(native["images"]):
        image_id = image.get("image_id") if isinstance(image, dict) else None
        where = _Where(source, i, image_id)
        if not isinstance(image, dict):
            raise where.error("images", "an image entry must be an object")
        annos = image.get("annotations")
        if not isinstance(annos, list):
            raise where.error("annotations", f"expected a list, got {type(annos).__name__}")
        persons = []
        for j, anno in enumerate(annos):
            if not isinstance(anno, dict):
                raise _Where(source, i, image_id, j).error("annotations", "an annotation must be an object")
            if anno.get("keypoints") and anno.get("segms"):
                _check_person(anno, _Where(source, i, image_id, j), len(names))
                persons.append(anno)
        if persons:
            for key in ("file_name", "width", "height"):
                if key not in image:
                    raise where.error(key, "missing")
            kept.append((image, persons))
    if sort_by_image_id:
        for i, (image, _) in enumerate(kept):
            if "image_id" not in image:
                raise ValueError(f"{source}: an image has no 'image_id' to sort by (file_name {image['file_name']!r})")
        kept.sort(key=lambda item: item[0]["image_id"])
    return kept


def ochuman_mask(segms):
    """
    The release's ``Poly2Mask``: outer polygons minus inner polygons.

    Args:
        segms (dict): ``outer``, ``inner`` (COCO polygon lists), ``height``, ``width``.

    Returns:
        ndarray: (height, width) uint8 in {0, 1}.
    """
    h, w = segms["height"], segms["width"]
    if len(segms["outer"]) == 0:
        return np.zeros((h, w), dtype=np.uint8)
    mask = decode_segmentation(segms["outer"], h, w)
    inner = segms.get("inner", [])
    if len(inner) > 0:
        hole = decode_segmentation(inner, h, w)
        mask[hole > 0] = 0
    return mask


def _convert_person(anno, index, image_id, annotation_id, with_max_iou):
    x1, y1, x2, y2 = anno["bbox"]
    keypoints, num_keypoints = [], 0
    kpts = anno["keypoints"]
    for i in index:
        x, y, v = kpts[3 * i : 3 * i + 3]
        if v == 1 or v == 2:
            v = 2
            num_keypoints += 1
        elif v == 3:
            v = 1
            num_keypoints += 1
        keypoints += [x, y, v]
    rle = encode_mask(ochuman_mask(anno["segms"]))
    out = {
        "image_id": image_id,
        "area": (x2 - x1) * (y2 - y1),
        "num_keypoints": num_keypoints,
        "iscrowd": 0,
        "id": annotation_id,
        "category_id": 1,
        "keypoints": keypoints,
        "segmentation": rle,
        "bbox": [x1, y1, x2 - x1, y2 - y1],
    }
    if with_max_iou:
        out["max_iou"] = anno["max_iou"]
    return out


def convert_ochuman(
    native,
    subset="val",
    max_iou_range=(0.0, 1.0),
    val_size=OCHUMAN_VAL_SIZE,
    with_max_iou=False,
    sort_by_image_id=False,
    source="<native>",
):
    """
    Convert the native OCHuman annotations to one COCO-style subset (see the module doc).

    Args:
        native (dict): the parsed native JSON.
        subset (str): "val" (the first ``val_size`` kept images), "test" (the rest) or "all".
        max_iou_range (tuple[float, float]): keep persons with lo <= max_iou < hi.
        val_size (int): the split point, 2,500 in the release.
        with_max_iou (bool): also write each person's native ``max_iou`` (not in the
            release's files; native MaxIoU counts every boxed person of the image, also those
            without keypoints or mask).
        sort_by_image_id (bool): see :func:`select_ochuman_persons`.
        source (str): the file name, for error messages.

    Returns:
        dict: COCO-style ``{"annotations", "categories", "images"}``.
    """
    if subset not in ("val", "test", "all"):
        raise ValueError(f"subset must be 'val', 'test' or 'all', got {subset!r}")
    lo, hi = max_iou_range
    kept = select_ochuman_persons(native, source, sort_by_image_id)
    if subset == "val":
        kept = kept[:val_size]
    elif subset == "test":
        kept = kept[val_size:]
    names = native["keypoint_names"]
    index = [names.index(name) for name in COCO_PERSON_KEYPOINT_NAMES]

    images, annotations = [], []
    image_id, annotation_id = 1, 1
    for image, persons in kept:
        converted = []
        for anno in persons:
            if anno["max_iou"] < lo or anno["max_iou"] >= hi:
                continue
            converted.append(_convert_person(anno, index, image_id, annotation_id, with_max_iou))
            annotation_id += 1
        if converted:
            annotations += converted
            images.append(
                {"id": image_id, "file_name": image["file_name"], "height": image["height"], "width": image["width"]}
            )
            image_id += 1
    return {"annotations": annotations, "categories": [person_category()], "images": images}


def prepare_ochuman(
    native_json,
    output_dir,
    max_iou_range=(0.0, 1.0),
    val_size=OCHUMAN_VAL_SIZE,
    subsets=("val", "test"),
    with_max_iou=False,
    sort_by_image_id=False,
):
    """
    Write the COCO-style files of the release from the native JSON (no images needed).

    Returns:
        dict[str, str]: subset -> written path (``ochuman_coco_filename(subset, range)`` in
        ``output_dir``).
    """
    native = load_json(native_json, "OCHuman native annotations", f"Get ochuman.json: {OCHUMAN_HOW_TO_GET}")
    written = {}
    for subset in subsets:
        data = convert_ochuman(
            native, subset, max_iou_range, val_size, with_max_iou, sort_by_image_id, source=str(native_json)
        )
        path = os.path.join(output_dir, ochuman_coco_filename(subset, max_iou_range))
        dump_json(data, path, compact=False)
        logger.info(
            "OCHuman %s: %d persons within %d images -> %s",
            subset, len(data["annotations"]), len(data["images"]), path,
        )  # fmt: skip
        written[subset] = path
    return written
