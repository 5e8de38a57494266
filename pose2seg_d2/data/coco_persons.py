"""
COCOPersons: the COCO 2017 persons that have both keypoints and a mask.

Built from COCO's ``person_keypoints_{train,val}2017.json``: an annotation is kept when it is
a person (category ``person``), not crowd (``iscrowd`` 0), has at least one labeled keypoint
(``num_keypoints`` > 0, counted from ``keypoints`` when the field is absent) and has a
segmentation (a polygon with at least 3 points, or an RLE). Images left with no person are
dropped; ids, file names and all other fields are kept as in COCO. The output file names are
the release's: ``person_keypoints_{split}2017_pose2seg.json``.
"""
import logging
import os

from .coco_format import dump_json, load_json

__all__ = [
    "COCO_HOW_TO_GET",
    "coco_persons_filename",
    "is_coco_person_with_keypoints_and_mask",
    "filter_coco_persons",
    "prepare_coco_persons",
]

logger = logging.getLogger(__name__)

COCO_HOW_TO_GET = (
    "Download COCO 2017 from https://cocodataset.org/#download: the annotations "
    "(http://images.cocodataset.org/annotations/annotations_trainval2017.zip, unzipped into "
    "coco/) and the images (train2017.zip, val2017.zip, unzipped into coco/); see "
    "datasets/README.md for the layout"
)


def coco_persons_filename(split):
    """e.g. ``person_keypoints_train2017_pose2seg.json`` for split "train"."""
    return f"person_keypoints_{split}2017_pose2seg.json"


def _has_segmentation(segm):
    if isinstance(segm, dict):
        return "counts" in segm and "size" in segm
    if isinstance(segm, list):
        return any(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 for p in segm)
    return False


def _num_keypoints(anno, where):
    if "num_keypoints" in anno:
        return anno["num_keypoints"]
    kpts = anno.get("keypoints")
    if kpts is None:
        return 0
    if not isinstance(kpts, list) or len(kpts) % 3:
        raise ValueError(f"{where}, field 'keypoints': expected a flat list of (x, y, v) triples")
    return sum(1 for v in kpts[2::3] if v > 0)


def is_coco_person_with_keypoints_and_mask(anno, person_ids=(1,), where="annotation"):
    """
    Args:
        anno (dict): a COCO annotation.
        person_ids (collection[int]): category ids of ``person``.
        where (str): names the annotation in error messages.

    Returns:
        bool: whether it belongs to COCOPersons.
    """
    if anno.get("category_id") not in person_ids:
        return False
    if anno.get("iscrowd", 0):
        return False
    if not _num_keypoints(anno, where) > 0:
        return False
    return _has_segmentation(anno.get("segmentation"))


def filter_coco_persons(coco, source="<coco>"):
    """
    Args:
        coco (dict): a parsed COCO person_keypoints JSON.
        source (str): the file name, for error messages.

    Returns:
        dict: the same structure with only the COCOPersons annotations, the images that have
        one, and the person category; other top-level fields are kept.
    """
    if not isinstance(coco, dict):
        raise ValueError(f"{source}: a COCO annotation file must hold a JSON object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise ValueError(f"{source}: top-level field {key!r} is missing or not a list")
    person_ids = {c.get("id") for c in coco["categories"] if isinstance(c, dict) and c.get("name") == "person"}
    if not person_ids:
        raise ValueError(f"{source}: field 'categories' has no category named 'person'")

    annotations = []
    for i, anno in enumerate(coco["annotations"]):
        if not isinstance(anno, dict):
            raise ValueError(f"{source}: annotations[{i}] is not an object")
        where = f"{source}: annotations[{i}] (id {anno.get('id')!r}, image_id {anno.get('image_id')!r})"
        for key in ("id", "image_id"):
            if key not in anno:
                raise ValueError(f"{where}, field {key!r}: missing")
        if is_coco_person_with_keypoints_and_mask(anno, person_ids, where):
            annotations.append(anno)
    with_person = {a["image_id"] for a in annotations}
    images = []
    for i, image in enumerate(coco["images"]):
        if not isinstance(image, dict) or "id" not in image:
            raise ValueError(f"{source}: images[{i}], field 'id': missing")
        if image["id"] in with_person:
            images.append(image)
    known = {image["id"] for image in images}
    orphans = with_person - known
    if orphans:
        raise ValueError(f"{source}: annotations refer to image ids not in 'images': {sorted(orphans)[:5]}")
    out = {k: v for k, v in coco.items() if k not in ("images", "annotations", "categories")}
    out["images"] = images
    out["annotations"] = annotations
    out["categories"] = [c for c in coco["categories"] if isinstance(c, dict) and c.get("id") in person_ids]
    return out


def prepare_coco_persons(coco_dir, splits=("train", "val"), output_dir=None):
    """
    Write ``annotations/person_keypoints_{split}2017_pose2seg.json`` for each split.

    Args:
        coco_dir (str): the COCO folder holding ``annotations/person_keypoints_*2017.json``.
        splits (sequence[str]): "train" and/or "val".
        output_dir (str or None): where to write; ``coco_dir/annotations`` by default.

    Returns:
        dict[str, str]: split -> written path.
    """
    if not os.path.isdir(coco_dir):
        raise FileNotFoundError(f"COCO folder not found: {coco_dir}. {COCO_HOW_TO_GET}")
    output_dir = output_dir or os.path.join(coco_dir, "annotations")
    written = {}
    for split in splits:
        src = os.path.join(coco_dir, "annotations", f"person_keypoints_{split}2017.json")
        coco = load_json(src, f"COCO {split}2017 person keypoint annotations", COCO_HOW_TO_GET)
        out = filter_coco_persons(coco, source=src)
        path = os.path.join(output_dir, coco_persons_filename(split))
        dump_json(out, path)
        logger.info(
            "COCOPersons %s: %d of %d annotations, %d of %d images -> %s",
            split, len(out["annotations"]), len(coco["annotations"]), len(out["images"]), len(coco["images"]), path,
        )  # fmt: skip
        written[split] = path
    return written
