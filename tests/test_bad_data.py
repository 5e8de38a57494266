"""
Bad data gives a clear error: dataset loading and the mappers name the file, the record (image
id, annotation id) and the field; nothing is dropped silently, and skipping invalid records
(when asked for) counts and reports them.
"""
import copy
import json
import logging
import os
import pickle

import pytest
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json

from pose2seg_d2.config import add_pose2seg_config
from pose2seg_d2.data import (
    InvalidDatasetError,
    Pose2SegDatasetMapper,
    ValidatingDatasetMapper,
    add_max_iou,
    load_person_json,
    read_person_json,
    register_person_dataset,
)
from pose2seg_d2.data.validation import ON_INVALID_ENV
from pose2seg_d2.engine import Pose2SegTrainer

from .fixtures import make_tiny_person_dataset, tiny_pose2seg_cfg, write_templates

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A valid tiny person dataset: 3 images, 2 persons each (RLE masks)."""
    root = tmp_path_factory.mktemp("bad_data_source")
    json_file = make_tiny_person_dataset(str(root), num_images=3)
    with open(json_file) as f:
        return {"root": str(root), "images": os.path.join(str(root), "images"), "data": json.load(f)}


def write(tmp_path, data):
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(data))
    return str(path)


def first_annotation(data):
    return data["annotations"][0]


def assert_names(error, json_file, image_id, annotation_id, field):
    """The error names the file, the record and the field, in its message and attributes."""
    text = str(error)
    assert json_file in text and f"field {field!r}" in text, text
    assert error.file == json_file and error.field == field
    assert error.image_id == image_id and error.annotation_id == annotation_id
    if image_id is not None:
        assert f"image id {image_id!r}" in text, text
    if annotation_id is not None:
        assert f"annotation id {annotation_id!r}" in text, text


# ---------------------------------------------------------------------------------- loading
def test_valid_file_loads_as_detectron2_loads_it(source, tmp_path):
    json_file = write(tmp_path, source["data"])
    ours, report = read_person_json(json_file, source["images"])
    theirs = add_max_iou(load_coco_json(json_file, source["images"], extra_annotation_keys=["max_iou"]))
    assert report.problems == [] and report.skipped_images == report.skipped_annotations == 0
    ids = [a.pop("id") for r in ours for a in r["annotations"]]
    assert ids == [a["id"] for a in source["data"]["annotations"]]
    assert ours == theirs


@pytest.mark.parametrize("field", ["id", "file_name", "height", "width"])
def test_image_missing_a_field(source, tmp_path, field):
    data = copy.deepcopy(source["data"])
    image = data["images"][1]
    del image[field]
    json_file = write(tmp_path, data)
    with pytest.raises(InvalidDatasetError) as e:
        load_person_json(json_file, source["images"], on_invalid="raise")
    assert_names(e.value, json_file, None if field == "id" else image["id"], None, field)
    assert e.value.reason == "missing" or "expected" in e.value.reason


@pytest.mark.parametrize("field", ["id", "image_id", "category_id", "bbox", "keypoints", "segmentation"])
def test_annotation_missing_a_field(source, tmp_path, field):
    data = copy.deepcopy(source["data"])
    anno = data["annotations"][3]
    del anno[field]
    json_file = write(tmp_path, data)
    with pytest.raises(InvalidDatasetError) as e:
        load_person_json(json_file, source["images"])
    image_id = None if field == "image_id" else anno["image_id"]
    assert_names(e.value, json_file, image_id, None if field == "id" else anno["id"], field)
    assert e.value.reason == "missing"


def test_file_missing_its_annotations_list(source, tmp_path):
    data = copy.deepcopy(source["data"])
    del data["annotations"]
    json_file = write(tmp_path, data)
    with pytest.raises(InvalidDatasetError, match=r"annotations\.json, field 'annotations': missing"):
        load_person_json(json_file, source["images"], on_invalid="skip")  # cannot be skipped


def test_missing_image_file(source, tmp_path):
    data = copy.deepcopy(source["data"])
    image = data["images"][2]
    image["file_name"] = "gone.png"
    json_file = write(tmp_path, data)
    with pytest.raises(InvalidDatasetError) as e:
        load_person_json(json_file, source["images"])
    assert_names(e.value, json_file, image["id"], None, "file_name")
    assert os.path.join(source["images"], "gone.png") in str(e.value)


@pytest.mark.parametrize(
    "keypoints, reason",
    [
        (lambda k: k[:-1], "expected 51 numbers (x, y, v for 17 keypoints), got 50"),
        (lambda k: k + [0, 0, 0], "got 54"),
        (lambda k: k[:6] + ["12.5"] + k[7:], "value 6 (keypoint 2, x) must be a finite number, got '12.5'"),
        (lambda k: k[:4] + [float("nan")] + k[5:], "value 4 (keypoint 1, y) must be a finite number, got nan"),
        (lambda k: k[:5] + [3] + k[6:], "keypoint 1 has visibility 3"),
        (lambda k: None, "expected a list of 51 numbers"),
    ],
    ids=["50", "54", "string", "nan", "visibility", "null"],
)
def test_keypoints_not_51_numbers(source, tmp_path, keypoints, reason):
    data = copy.deepcopy(source["data"])
    anno = data["annotations"][2]
    anno["keypoints"] = keypoints(anno["keypoints"])
    json_file = write(tmp_path, data)
    with pytest.raises(InvalidDatasetError) as e:
        load_person_json(json_file, source["images"])
    assert_names(e.value, json_file, anno["image_id"], anno["id"], "keypoints")
    assert reason in e.value.reason


@pytest.mark.parametrize(
    "segmentation, reason",
    [
        ([[10, 10, 20, 10, 20]], "polygon 0 has an odd number of values (5)"),
        ([[10, 10, 20, 10, 20, "x"]], "polygon 0 must be a flat list of finite numbers"),
        ([[10, 10, 20, 10]], "no polygon with at least 3 points"),
        ([], "no polygon with at least 3 points"),
        ({"size": [5, 5], "counts": "abc"}, "RLE 'size' [5, 5] is not the image's [height, width] [96, 128]"),
        ({"size": [96, 128]}, "an RLE needs 'size' and 'counts'"),
        ("polygon", "expected a list of polygons or an RLE dict"),
    ],
    ids=["odd", "not_a_number", "two_points", "empty", "rle_size", "rle_counts", "string"],
)
def test_invalid_polygon_or_mask(source, tmp_path, segmentation, reason):
    data = copy.deepcopy(source["data"])
    anno = data["annotations"][1]
    anno["segmentation"] = segmentation
    json_file = write(tmp_path, data)
    with pytest.raises(InvalidDatasetError) as e:
        load_person_json(json_file, source["images"])
    assert_names(e.value, json_file, anno["image_id"], anno["id"], "segmentation")
    assert reason in e.value.reason


def test_annotation_of_an_unknown_image_or_a_duplicate_id(source, tmp_path):
    data = copy.deepcopy(source["data"])
    data["annotations"][0]["image_id"] = 999
    data["annotations"][2]["id"] = data["annotations"][1]["id"]
    json_file = write(tmp_path, data)
    with pytest.raises(InvalidDatasetError) as e:
        load_person_json(json_file, source["images"])
    assert_names(e.value, json_file, 999, data["annotations"][0]["id"], "image_id")
    assert "(and 1 more invalid record(s))" in str(e.value) and f"{ON_INVALID_ENV}=skip" in str(e.value)
    # the message survives pickling (data loader workers, multiprocessing)
    again = pickle.loads(pickle.dumps(e.value))
    assert type(again) is InvalidDatasetError and str(again) == str(e.value)


def make_messy(source):
    """The source with image 2's file missing and two bad annotations of the other images."""
    data = copy.deepcopy(source["data"])
    data["images"][1]["file_name"] = "gone.png"
    bad_keypoints = next(a for a in data["annotations"] if a["image_id"] == 1)
    bad_keypoints["keypoints"] = bad_keypoints["keypoints"][:50]
    bad_polygon = next(a for a in data["annotations"] if a["image_id"] == 3)
    bad_polygon["segmentation"] = [[1, 2, 3]]
    return data, {bad_keypoints["id"], bad_polygon["id"]}


def test_skipping_counts_and_reports_every_left_out_record(source, tmp_path, caplog):
    data, bad_ids = make_messy(source)
    json_file = write(tmp_path, data)
    with caplog.at_level(logging.WARNING, logger="pose2seg_d2.data.validation"):
        dicts, report = read_person_json(json_file, source["images"], on_invalid="skip")
    of_image_2 = {a["id"] for a in data["annotations"] if a["image_id"] == 2}
    assert [r["image_id"] for r in dicts] == [1, 3]
    kept = {a["id"] for r in dicts for a in r["annotations"]}
    assert kept == {a["id"] for a in data["annotations"]} - bad_ids - of_image_2
    # nothing silently dropped: every record is either kept or counted
    assert report.skipped_images == 1 and len(dicts) + report.skipped_images == len(data["images"])
    assert len(kept) + report.skipped_annotations == len(data["annotations"])
    assert {(p.image_id, p.annotation_id, p.field) for p in report.problems} == {
        (2, None, "file_name"),
        *((1, i, "keypoints") for i in bad_ids if i in {a["id"] for a in data["annotations"] if a["image_id"] == 1}),
        *((3, i, "segmentation") for i in bad_ids if i in {a["id"] for a in data["annotations"] if a["image_id"] == 3}),
    }
    logged = caplog.text
    assert "3 invalid record(s); skipped 1 image(s) and " + str(report.skipped_annotations) + " annotation(s)" in logged
    assert json_file in logged and "field 'keypoints'" in logged and "field 'file_name'" in logged


def test_registered_dataset_skips_only_when_asked(source, tmp_path, monkeypatch):
    data, _ = make_messy(source)
    json_file = write(tmp_path, data)
    register_person_dataset("bad_data_messy", json_file, source["images"])
    try:
        first = r"image id 2, field 'file_name': image file not found: .*gone\.png \(and 2 more"
        with pytest.raises(InvalidDatasetError, match=first):
            DatasetCatalog.get("bad_data_messy")
        monkeypatch.setenv(ON_INVALID_ENV, "skip")
        assert [r["image_id"] for r in DatasetCatalog.get("bad_data_messy")] == [1, 3]
        monkeypatch.setenv(ON_INVALID_ENV, "sometimes")
        with pytest.raises(ValueError, match=ON_INVALID_ENV):
            DatasetCatalog.get("bad_data_messy")
    finally:
        DatasetCatalog.remove("bad_data_messy")
        MetadataCatalog.remove("bad_data_messy")


def test_polygons_of_fewer_than_3_points_are_dropped_counted_and_reported(source, tmp_path, caplog):
    data = copy.deepcopy(source["data"])
    anno = data["annotations"][0]
    anno["segmentation"] = [[10, 10, 30, 10, 30, 40, 10, 40], [5, 5, 6, 6]]
    json_file = write(tmp_path, data)
    with caplog.at_level(logging.WARNING, logger="pose2seg_d2.data.validation"):
        dicts, report = read_person_json(json_file, source["images"])
    assert report.dropped_polygons == 1 and report.problems == []
    loaded = next(a for r in dicts for a in r["annotations"] if a["id"] == anno["id"])
    assert loaded["segmentation"] == [[10, 10, 30, 10, 30, 40, 10, 40]]
    assert "dropped 1 polygon(s) of fewer than 3 points" in caplog.text


# ---------------------------------------------------------------------------------- mappers
@pytest.fixture(scope="module")
def cfgs(source, tmp_path_factory):
    templates = write_templates(str(tmp_path_factory.mktemp("bad_data_templates") / "templates.json"))
    name = "bad_data_tiny"
    json_file = os.path.join(source["root"], "annotations.json")
    register_person_dataset(name, json_file, source["images"])
    pose2seg = tiny_pose2seg_cfg("/tmp/unused", name, name, templates)
    pose2seg.merge_from_list(["INPUT.MASK_FORMAT", "bitmask"])
    mask_rcnn = get_cfg()
    add_pose2seg_config(mask_rcnn)
    mask_rcnn.merge_from_file(os.path.join(REPO, "configs", "mask_rcnn_R_50_FPN_coco_persons.yaml"))
    mask_rcnn.merge_from_list([
        "MODEL.DEVICE", "cpu", "DATASETS.TRAIN", (name,), "DATASETS.TEST", (name,), "INPUT.MASK_FORMAT", "bitmask",
        "DATALOADER.NUM_WORKERS", 0, "INPUT.MIN_SIZE_TRAIN", (96,), "INPUT.MIN_SIZE_TEST", 96,
    ])  # fmt: skip
    yield {"pose2seg": pose2seg, "mask_rcnn": mask_rcnn, "dicts": DatasetCatalog.get(name)}
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


MAPPERS = [
    ("pose2seg", True, Pose2SegDatasetMapper),
    ("pose2seg", False, Pose2SegDatasetMapper),
    ("mask_rcnn", True, ValidatingDatasetMapper),
    ("mask_rcnn", False, ValidatingDatasetMapper),
]
MAPPER_IDS = ["pose2seg_train", "pose2seg_test", "mask_rcnn_train", "mask_rcnn_test"]


def assert_mapper_names(error, record, annotation_id, field):
    text = str(error)
    assert error.file == record["file_name"] and record["file_name"] in text, text
    assert error.image_id == record["image_id"] and f"image id {record['image_id']!r}" in text, text
    assert error.annotation_id == annotation_id and error.field == field and f"field {field!r}" in text, text


@pytest.mark.parametrize("model, is_train, mapper_class", MAPPERS, ids=MAPPER_IDS)
def test_mapper_valid_record_maps_as_detectron2(cfgs, model, is_train, mapper_class):
    mapper = mapper_class(cfgs[model], is_train)
    out = mapper(cfgs["dicts"][0])
    assert out["image"].shape[0] == 3
    if is_train or model == "pose2seg":
        assert len(out["instances"]) == len(cfgs["dicts"][0]["annotations"])


@pytest.mark.parametrize("model, is_train, mapper_class", MAPPERS, ids=MAPPER_IDS)
def test_mapper_missing_image_file(cfgs, tmp_path, model, is_train, mapper_class):
    record = dict(cfgs["dicts"][0], file_name=str(tmp_path / "gone.png"))
    with pytest.raises(InvalidDatasetError) as e:
        mapper_class(cfgs[model], is_train)(record)
    assert_mapper_names(e.value, record, None, "file_name")
    assert "image file not found" in e.value.reason and isinstance(e.value.__cause__, OSError)


@pytest.mark.parametrize("model, is_train, mapper_class", MAPPERS, ids=MAPPER_IDS)
def test_mapper_unreadable_image(cfgs, tmp_path, model, is_train, mapper_class):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not an image" * 10)
    record = dict(cfgs["dicts"][0], file_name=str(broken))
    with pytest.raises(InvalidDatasetError) as e:
        mapper_class(cfgs[model], is_train)(record)
    assert_mapper_names(e.value, record, None, "file_name")
    assert "cannot read the image file" in e.value.reason and e.value.__cause__ is not None


@pytest.mark.parametrize("model, is_train, mapper_class", MAPPERS, ids=MAPPER_IDS)
def test_mapper_image_of_another_size(cfgs, model, is_train, mapper_class):
    record = dict(cfgs["dicts"][0], height=50)
    # masks of the record's size, so that only the image disagrees
    record["annotations"] = [dict(a, segmentation={"size": [50, 128], "counts": "PP`0"}) for a in record["annotations"]]
    with pytest.raises(InvalidDatasetError) as e:
        mapper_class(cfgs[model], is_train)(record)
    assert_mapper_names(e.value, record, None, "height/width")
    assert "Mismatched image shape" in e.value.reason


@pytest.mark.parametrize(
    "model, is_train, mapper_class", [MAPPERS[0], MAPPERS[1]], ids=MAPPER_IDS[:2]
)
def test_mapper_keypoints_not_51_numbers(cfgs, model, is_train, mapper_class):
    record = copy.deepcopy(cfgs["dicts"][0])
    anno = record["annotations"][1]
    anno["keypoints"] = anno["keypoints"][:48]
    with pytest.raises(InvalidDatasetError) as e:
        mapper_class(cfgs[model], is_train)(record)
    assert_mapper_names(e.value, record, anno["id"], "keypoints")
    assert "expected 51 numbers" in e.value.reason and "got 48" in e.value.reason


def test_mask_rcnn_mapper_ignores_the_keypoints_it_does_not_use(cfgs):
    record = copy.deepcopy(cfgs["dicts"][0])
    record["annotations"][1]["keypoints"] = [1, 2]
    assert len(ValidatingDatasetMapper(cfgs["mask_rcnn"], True)(record)["instances"]) == len(record["annotations"])


@pytest.mark.parametrize("model", ["pose2seg", "mask_rcnn"])
@pytest.mark.parametrize(
    "polygons, reason",
    [
        ([[10, 10, 40, 10, 40]], "odd number of values"),
        ([[10, 10, 40, 10]], "no polygon with at least 3 points"),
        ([[10, 10, 40, 10, 40, 40, 10, 40], [1, 1, 2, 2]], "1 polygon(s) of fewer than 3 points"),
        ([[10, 10, 40, float("nan"), 40, 40]], "flat list of finite numbers"),
    ],
    ids=["odd", "two_points", "one_degenerate", "nan"],
)
def test_mapper_invalid_polygon(cfgs, model, polygons, reason):
    record = copy.deepcopy(cfgs["dicts"][0])
    anno = record["annotations"][0]
    anno["segmentation"] = polygons
    mapper = (Pose2SegDatasetMapper if model == "pose2seg" else ValidatingDatasetMapper)(cfgs[model], True)
    with pytest.raises(InvalidDatasetError) as e:
        mapper(record)
    assert_mapper_names(e.value, record, anno["id"], "segmentation")
    assert reason in e.value.reason


@pytest.mark.parametrize("model, workers", [("pose2seg", 0), ("mask_rcnn", 0), ("pose2seg", 1)])
def test_trainer_data_loader_reports_the_record(cfgs, tmp_path, model, workers):
    """Through Pose2SegTrainer's loaders, as train_net.py builds them, for both models, and
    from a data loader worker process."""
    name = f"bad_data_loader_{model}"
    records = copy.deepcopy(cfgs["dicts"])
    records[0]["file_name"] = str(tmp_path / "gone.png")
    DatasetCatalog.register(name, lambda: records)
    MetadataCatalog.get(name).set(thing_classes=["person"])
    try:
        cfg = cfgs[model].clone()
        cfg.DATALOADER.NUM_WORKERS = workers
        expected = rf"gone\.png, image id {records[0]['image_id']}, field 'file_name'"
        with pytest.raises(InvalidDatasetError, match=expected):
            next(iter(Pose2SegTrainer.build_test_loader(cfg, name)))
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
