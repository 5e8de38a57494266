"""
Registration of the datasets in Detectron2's DatasetCatalog and MetadataCatalog.

Importing :mod:`pose2seg_d2.data` calls :func:`register_all` with the root
``$DETECTRON2_DATASETS`` (default ``./datasets``); nothing is read until a dataset is asked
for. Layout under the root (see datasets/README.md)::

    ochuman/images/*.jpg
    ochuman/annotations/ochuman_coco_format_{val,test}_range_0.00_1.00.json
    coco/{train2017,val2017}/*.jpg
    coco/annotations/person_keypoints_{train,val}2017_pose2seg.json
    synthetic_occluded/images/{train,val,test,all_levels}/*.png
    synthetic_occluded/annotations/{train,val,test,all_levels}.json   (generated on first use)

Every dataset dict annotation carries ``max_iou`` (from the file, else computed from the
boxes of the image's persons, see :func:`add_max_iou`). Masks of the OCHuman and synthetic
files are RLE: use ``INPUT.MASK_FORMAT = "bitmask"``.

Loading validates every record (:mod:`pose2seg_d2.data.validation`): an invalid one raises an
error naming the file, the image and annotation ids and the field; with
``POSE2SEG_ON_INVALID_DATA=skip`` in the environment, invalid records are left out instead,
counted and logged.
"""
import logging
import os

import pycocotools.mask as mask_util
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from ..pose.keypoints import COCO_PERSON_FLIP_MAP, COCO_PERSON_KEYPOINT_NAMES, COCO_PERSON_LIMBS
from ..utils import DATASETS_ENV, datasets_root
from .coco_format import load_json
from .coco_persons import COCO_HOW_TO_GET, coco_persons_filename
from .max_iou import add_max_iou
from .ochuman import OCHUMAN_HOW_TO_GET, ochuman_coco_filename
from .synthetic import SPLITS as SYNTHETIC_SPLITS
from .synthetic import ensure_synthetic_dataset
from .validation import resolve_on_invalid, validate_person_json

logger = logging.getLogger(__name__)

__all__ = [
    "DATASETS_ENV",
    "PERSON_KEYPOINT_CONNECTION_RULES",
    "get_datasets_root",
    "person_metadata",
    "builtin_datasets",
    "load_person_json",
    "read_person_json",
    "register_person_dataset",
    "register_all",
]

# the datasets root: $DETECTRON2_DATASETS, default ./datasets
get_datasets_root = datasets_root

# Visualizer skeleton: the 19 COCO limbs as (name, name, RGB)
_LIMB_COLORS = (
    (102, 0, 204), (51, 102, 255), (102, 204, 255), (102, 204, 255), (51, 153, 255), (255, 153, 51),
    (51, 153, 255), (255, 128, 0), (153, 255, 204), (255, 178, 102), (128, 229, 255), (255, 102, 0),
    (153, 255, 153), (102, 255, 224), (255, 102, 0), (255, 255, 77), (153, 255, 204), (191, 255, 128),
    (255, 195, 77),
)  # fmt: skip
PERSON_KEYPOINT_CONNECTION_RULES = tuple(
    (COCO_PERSON_KEYPOINT_NAMES[a], COCO_PERSON_KEYPOINT_NAMES[b], color)
    for (a, b), color in zip(COCO_PERSON_LIMBS, _LIMB_COLORS)
)

_SYNTHETIC_HOW_TO_GET = (
    "It is generated on first use; to make it now run: python datasets/prepare_synthetic.py "
    "--output-dir {root}"
)


def person_metadata():
    """Metadata shared by all person datasets (Detectron2's names for the fields)."""
    return {
        "thing_classes": ["person"],
        "thing_dataset_id_to_contiguous_id": {1: 0},
        "keypoint_names": COCO_PERSON_KEYPOINT_NAMES,
        "keypoint_flip_map": tuple(COCO_PERSON_FLIP_MAP.items()),
        "keypoint_connection_rules": PERSON_KEYPOINT_CONNECTION_RULES,
        "evaluator_type": "coco",
    }


def builtin_datasets(root):
    """
    Returns:
        dict[str, dict]: name -> ``json_file``, ``image_root``, ``how_to_get`` and, for the
        synthetic ones, ``synthetic_root``.
    """
    out = {}
    ochuman = os.path.join(root, "ochuman")
    for subset in ("val", "test"):
        out[f"ochuman_{subset}"] = {
            "json_file": os.path.join(ochuman, "annotations", ochuman_coco_filename(subset)),
            "image_root": os.path.join(ochuman, "images"),
            "how_to_get": f"{OCHUMAN_HOW_TO_GET}; or convert ochuman.json with datasets/prepare_ochuman.py",
        }
    coco = os.path.join(root, "coco")
    for split in ("train", "val"):
        out[f"coco_persons_{split}"] = {
            "json_file": os.path.join(coco, "annotations", coco_persons_filename(split)),
            "image_root": os.path.join(coco, f"{split}2017"),
            "how_to_get": f"{COCO_HOW_TO_GET}; then run python datasets/prepare_coco_persons.py --coco-dir {coco}",
        }
    synthetic = os.path.join(root, "synthetic_occluded")
    for split in SYNTHETIC_SPLITS:
        out[f"synthetic_occluded_{split}"] = {
            "json_file": os.path.join(synthetic, "annotations", f"{split}.json"),
            "image_root": os.path.join(synthetic, "images", split),
            "how_to_get": _SYNTHETIC_HOW_TO_GET.format(root=synthetic),
            "synthetic_root": synthetic,
        }
    return out


def read_person_json(json_file, image_root, dataset_name=None, on_invalid=None, check_image_files=True):
    """
    Validate and load a COCO-style person file into Detectron2 dataset dicts.

    The dicts are those of Detectron2's ``load_coco_json(json_file, image_root, dataset_name,
    extra_annotation_keys=["max_iou"])`` (images sorted by id, keypoint x and y + 0.5, category
    ids mapped to contiguous ids when ``dataset_name`` is given, which also sets the dataset's
    ``thing_classes``), with the annotation ``id`` kept so that later errors can name it. Unlike
    it, every record is validated first (see :mod:`pose2seg_d2.data.validation`): nothing is
    dropped silently.

    Args:
        json_file, image_root (str): the annotation file and its image folder.
        dataset_name (str or None): as for ``load_coco_json``.
        on_invalid (str or None): "raise" (:class:`InvalidDatasetError` naming the file, the
            image and annotation ids and the field) or "skip" (leave invalid records out,
            counted in the report and logged); None: ``$POSE2SEG_ON_INVALID_DATA``, default
            "raise".
        check_image_files (bool): check that every image file exists.

    Returns:
        tuple: ``list[dict]`` and the :class:`ValidationReport`.
    """
    data = load_json(json_file, f"Annotation file of {dataset_name or 'the dataset'}")
    images, annotations, categories, report = validate_person_json(
        data, json_file, image_root, resolve_on_invalid(on_invalid), check_image_files
    )
    id_map = None
    if dataset_name is not None:
        meta = MetadataCatalog.get(dataset_name)
        cats = sorted(categories, key=lambda c: c["id"])
        meta.thing_classes = [c["name"] for c in cats]
        id_map = {c["id"]: i for i, c in enumerate(cats)}
        meta.thing_dataset_id_to_contiguous_id = id_map

    per_image = {img["id"]: [] for img in images}
    for anno in annotations:
        per_image[anno["image_id"]].append(anno)
    dataset_dicts = []
    for img in sorted(images, key=lambda im: im["id"]):
        objs = []
        for anno in per_image[img["id"]]:
            obj = {key: anno[key] for key in ("iscrowd", "bbox", "keypoints", "category_id", "max_iou") if key in anno}
            obj["id"] = anno["id"]
            segm = anno["segmentation"]
            if isinstance(segm, dict):
                if isinstance(segm["counts"], list):  # uncompressed RLE -> compressed
                    segm = mask_util.frPyObjects(segm, *segm["size"])
            else:  # polygons of fewer than 3 points were counted in the report
                segm = [poly for poly in segm if len(poly) >= 6]
            obj["segmentation"] = segm
            # COCO keypoints are pixel indices: + 0.5 gives continuous coordinates
            obj["keypoints"] = [v + 0.5 if i % 3 != 2 else v for i, v in enumerate(anno["keypoints"])]
            obj["bbox_mode"] = BoxMode.XYWH_ABS
            if id_map is not None:
                obj["category_id"] = id_map[obj["category_id"]]
            objs.append(obj)
        dataset_dicts.append({
            "file_name": os.path.join(image_root, img["file_name"]),
            "height": img["height"],
            "width": img["width"],
            "image_id": img["id"],
            "annotations": objs,
        })  # fmt: skip
    logger.info(f"Loaded {len(dataset_dicts)} images ({len(annotations)} persons) from {json_file}")
    return add_max_iou(dataset_dicts), report


def load_person_json(
    json_file, image_root, dataset_name=None, how_to_get=None, synthetic_root=None, on_invalid=None
):
    """
    Load a COCO-style person file into Detectron2 dataset dicts with ``max_iou`` on every
    annotation, after validating every record (see :func:`read_person_json`).

    Args:
        json_file, image_root (str): the annotation file and its image folder.
        dataset_name (str or None): sets the dataset's thing_classes (as ``load_coco_json``).
        how_to_get (str or None): added to the error when a path is missing.
        synthetic_root (str or None): generate the synthetic dataset there first if missing.
        on_invalid (str or None): "raise" or "skip" invalid records (counted and logged);
            None: ``$POSE2SEG_ON_INVALID_DATA``, default "raise".

    Returns:
        list[dict]

    Raises:
        InvalidDatasetError: an invalid record, naming the file, the image id, the annotation
            id and the field (unless skipping).
    """
    if synthetic_root is not None:
        ensure_synthetic_dataset(synthetic_root)
    hint = f". {how_to_get}" if how_to_get else ""
    if not os.path.isfile(json_file):
        raise FileNotFoundError(f"Annotation file of {dataset_name or 'the dataset'} not found: {json_file}{hint}")
    if not os.path.isdir(image_root):
        raise FileNotFoundError(f"Image folder of {dataset_name or 'the dataset'} not found: {image_root}{hint}")
    dicts, _ = read_person_json(json_file, image_root, dataset_name, on_invalid)
    return dicts


def register_person_dataset(name, json_file, image_root, how_to_get=None, synthetic_root=None, on_invalid=None):
    """
    Register ``name`` (replacing an earlier registration of it) with lazy loading through
    :func:`load_person_json`; ``on_invalid`` None reads ``$POSE2SEG_ON_INVALID_DATA`` when the
    dataset is loaded.
    """
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    DatasetCatalog.register(
        name, lambda: load_person_json(json_file, image_root, name, how_to_get, synthetic_root, on_invalid)
    )
    MetadataCatalog.get(name).set(json_file=json_file, image_root=image_root, **person_metadata())


def register_all(root=None, on_invalid=None):
    """
    Register ``ochuman_{val,test}``, ``coco_persons_{train,val}`` and
    ``synthetic_occluded_{train,val,test}`` under ``root`` (default
    :func:`get_datasets_root`); registering again replaces the earlier paths. ``on_invalid``:
    see :func:`load_person_json`.

    Returns:
        list[str]: the names.
    """
    root = get_datasets_root() if root is None else os.path.expanduser(str(root))
    specs = builtin_datasets(root)
    for name, spec in specs.items():
        register_person_dataset(name, **spec, on_invalid=on_invalid)
    return list(specs)
