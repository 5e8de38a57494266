"""COCOPersons: the COCO persons with keypoints and a mask, not crowd (docs/method.md §3)."""
import json

import pytest

from pose2seg_d2.data.coco_persons import coco_persons_filename, filter_coco_persons, prepare_coco_persons
from pose2seg_d2.pose.templates import PoseTemplates

from .fixtures import load_script

POLY = [[10.0, 10.0, 40.0, 10.0, 40.0, 60.0, 10.0, 60.0]]


def keypoints(n_labeled, offset=0):
    kp = []
    for k in range(17):
        kp += [12 + k + offset, 11 + 3 * k + offset, 2 if k < n_labeled else 0]
    return kp


def anno(id, image_id, n_labeled=17, segm=POLY, iscrowd=0, category_id=1, offset=0):
    a = {
        "segmentation": segm,
        "num_keypoints": n_labeled,
        "area": 1500.0,
        "iscrowd": iscrowd,
        "keypoints": keypoints(n_labeled, offset),
        "image_id": image_id,
        "bbox": [10.0 + offset, 10.0 + offset, 30.0, 50.0],
        "category_id": category_id,
        "id": id,
    }
    return a


def make_coco():
    crowd_rle = {"counts": [0, 5, 95], "size": [10, 10]}
    images = [
        {"license": 1, "file_name": f"{i:012d}.jpg", "height": 80, "width": 60, "id": i} for i in (139, 285, 632, 724)
    ]
    annotations = [
        anno(1, 139),  # kept
        anno(2, 139, n_labeled=0),  # no keypoints
        anno(3, 139, n_labeled=0, segm=crowd_rle, iscrowd=1),  # crowd
        anno(4, 285, n_labeled=10, segm={"counts": "PP3", "size": [80, 60]}),  # kept: RLE mask
        anno(5, 285, segm=[]),  # keypoints but no mask
        anno(6, 632, n_labeled=0, segm=crowd_rle, iscrowd=1),  # image left with a crowd only
        anno(7, 724, segm=[[1.0, 2.0, 3.0, 4.0]]),  # a polygon of two points is no mask
        anno(8, 724, n_labeled=0),
    ]
    return {
        "info": {"description": "COCO 2017 Dataset"},
        "licenses": [{"id": 1, "name": "x"}],
        "images": images,
        "annotations": annotations,
        "categories": [
            {"supercategory": "person", "id": 1, "name": "person", "keypoints": ["nose"] * 17, "skeleton": [[16, 14]]}
        ],
    }


def test_filter():
    coco = make_coco()
    out = filter_coco_persons(coco)
    assert [a["id"] for a in out["annotations"]] == [1, 4]
    assert [im["id"] for im in out["images"]] == [139, 285]
    assert out["categories"] == coco["categories"]
    assert out["info"] == coco["info"] and out["licenses"] == coco["licenses"]
    assert out["annotations"][0] == coco["annotations"][0]  # kept unchanged


def test_num_keypoints_counted_when_absent():
    coco = make_coco()
    for a in coco["annotations"]:
        del a["num_keypoints"]
    assert [a["id"] for a in filter_coco_persons(coco)["annotations"]] == [1, 4]


def test_other_categories_dropped():
    coco = make_coco()
    coco["categories"].append({"id": 2, "name": "bicycle"})
    coco["annotations"].append(anno(9, 632, category_id=2))
    out = filter_coco_persons(coco)
    assert [a["id"] for a in out["annotations"]] == [1, 4]
    assert [c["id"] for c in out["categories"]] == [1]


def test_bad_input_names_file_and_record():
    coco = make_coco()
    del coco["annotations"][3]["image_id"]
    with pytest.raises(ValueError, match=r"x\.json: annotations\[3\] \(id 4, image_id None\), field 'image_id'"):
        filter_coco_persons(coco, source="x.json")
    coco = make_coco()
    coco["categories"] = [{"id": 2, "name": "bicycle"}]
    with pytest.raises(ValueError, match="x.json.*no category named 'person'"):
        filter_coco_persons(coco, source="x.json")


def test_prepare_and_cli_with_templates(tmp_path):
    coco_dir = tmp_path / "coco"
    (coco_dir / "annotations").mkdir(parents=True)
    train = make_coco()
    # enough poses with >= 8 keypoints to cluster 3 templates
    train["annotations"] += [anno(100 + i, 724, offset=i) for i in range(6)]
    (coco_dir / "annotations" / "person_keypoints_train2017.json").write_text(json.dumps(train))
    (coco_dir / "annotations" / "person_keypoints_val2017.json").write_text(json.dumps(make_coco()))

    written = prepare_coco_persons(str(coco_dir), splits=("val",))
    assert written["val"] == str(coco_dir / "annotations" / coco_persons_filename("val"))
    assert coco_persons_filename("train") == "person_keypoints_train2017_pose2seg.json"
    with open(written["val"]) as f:
        assert json.load(f) == filter_coco_persons(make_coco())

    script = load_script("prepare_coco_persons")
    assert script.main(["--coco-dir", str(coco_dir)]) == 0
    assert (coco_dir / "annotations" / "person_keypoints_train2017_pose2seg.json").is_file()
    templates = PoseTemplates.load(str(coco_dir / "annotations" / "pose_templates_coco_persons.json"))
    assert templates.num_clusters == 3 and len(templates) == 6


def test_missing_paths_say_how_to_get(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere.*cocodataset\.org"):
        prepare_coco_persons(str(tmp_path / "nowhere"))
    (tmp_path / "coco").mkdir()
    with pytest.raises(FileNotFoundError, match=r"person_keypoints_train2017\.json.*annotations_trainval2017\.zip"):
        prepare_coco_persons(str(tmp_path / "coco"))
