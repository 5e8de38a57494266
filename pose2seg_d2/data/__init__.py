"""
Datasets: OCHuman, COCOPersons and the synthetic occluded-human benchmark.

Importing this package registers ``ochuman_{val,test}``, ``coco_persons_{train,val}`` and
``synthetic_occluded_{train,val,test}`` in Detectron2's catalogs, rooted at
``$DETECTRON2_DATASETS`` (default ``./datasets``); files are read only when a dataset is
loaded.
"""
from .builtin import (
    DATASETS_ENV,
    PERSON_KEYPOINT_CONNECTION_RULES,
    builtin_datasets,
    get_datasets_root,
    load_person_json,
    person_metadata,
    read_person_json,
    register_all,
    register_person_dataset,
)
from .coco_format import COCO_PERSON_SKELETON, decode_segmentation, encode_mask, person_category
from .coco_persons import coco_persons_filename, filter_coco_persons, prepare_coco_persons
from .dataset_mapper import DensePretrainingMapper, Pose2SegDatasetMapper, ValidatingDatasetMapper
from .copy_paste import CopyPaste, CopyPasteDatasetMapper, CopyPastePose2SegMapper, CopyPasteSources
from .max_iou import add_max_iou, max_iou, pairwise_box_iou
from .ochuman import convert_ochuman, ochuman_coco_filename, ochuman_mask, prepare_ochuman
from .synthetic import (
    dataset_statistics,
    ensure_synthetic_dataset,
    generate_synthetic_dataset,
    is_synthetic_dataset_complete,
    render_scene,
)
from .validation import InvalidDatasetError, ValidationReport, validate_person_json

register_all()
