"""MODEL.POSE2SEG.TRAIN_KEYPOINTS_FILE: ground-truth persons take their OKS-matched predictions."""
import copy
import json
import os

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.structures import BoxMode

from pose2seg_d2.data.person_areas import annotation_area
from pose2seg_d2.data.train_keypoints import (
    match_by_oks,
    substitute_predicted_keypoints,
    train_dicts_with_predicted_keypoints,
)
from pose2seg_d2.engine import Pose2SegTrainer
from pose2seg_d2.modeling import KeypointsFileError

from .fixtures import STANDING, register_tiny_person_dataset, tiny_pose2seg_cfg, write_templates

FILTERS = {"confidence_threshold": 0.05, "min_person_score": 0.3, "min_keypoints": 3}


def test_match_by_oks_is_greedy_by_score_and_one_to_one():
    oks = torch.tensor([[0.9, 0.6], [0.95, 0.4], [0.3, 0.55]])
    scores = torch.tensor([0.5, 0.9, 0.1])
    # prediction 1 (highest score) takes person 0; prediction 0 then takes person 1; 2 is left
    assert match_by_oks(oks, scores, 0.5).tolist() == [1, 0, -1]
    assert match_by_oks(oks, scores, 0.7).tolist() == [-1, 0, -1]
    assert match_by_oks(oks, torch.tensor([0.9, 0.5, 0.1]), 0.5).tolist() == [0, -1, 1]
    assert match_by_oks(torch.zeros(0, 2), torch.zeros(0), 0.5).tolist() == []
    assert match_by_oks(torch.zeros(2, 0), torch.ones(2), 0.5).tolist() == [-1, -1]


def person(x0, y0, height, occluded=()):
    """(17, 3) continuous keypoints of a standing person, the joints in ``occluded`` v = 1."""
    kpt = np.zeros((17, 3))
    kpt[:, :2] = STANDING * [0.5 * height, height] + [x0, y0]
    kpt[:, 2] = 2.0
    kpt[list(occluded), 2] = 1.0
    return kpt


def annotation(kpt, x0, y0, height, **extra):
    w = 0.5 * height
    square = [x0, y0, x0 + w, y0, x0 + w, y0 + height, x0, y0 + height]
    return {
        "keypoints": kpt.reshape(-1).tolist(), "bbox": [x0, y0, w, height], "bbox_mode": BoxMode.XYWH_ABS,
        "segmentation": [square], "category_id": 0, "iscrowd": 0, **extra,
    }  # fmt: skip


@pytest.fixture
def scene():
    """Image 7: persons A, B, C and a crowd region; image 8: one person, no predictions."""
    a, b, c = person(10, 10, 80, occluded=(5, 7)), person(60, 20, 90), person(130, 40, 100, occluded=(9,))
    records = [
        {
            "file_name": "/data/000007.png", "image_id": 7, "height": 200, "width": 200,
            "annotations": [
                annotation(a, 10, 10, 80, id=1), annotation(b, 60, 20, 90, id=2), annotation(c, 130, 40, 100, id=3),
                {**annotation(person(0, 0, 50), 0, 0, 50, id=4), "iscrowd": 1},
            ],
        },
        {"file_name": "/data/000008.png", "image_id": 8, "height": 200, "width": 200,
         "annotations": [annotation(person(20, 20, 60, occluded=(0,)), 20, 20, 60, id=5)]},
    ]  # fmt: skip

    def predicted(kpt, shift, confidence=0.9):
        out = kpt.copy()
        out[:, :2] += shift
        out[:, 2] = confidence
        return out

    p_a = predicted(a, 1.0)
    p_b = predicted(b, 2.0)
    p_b[:5, 2] = 0.01  # the face below the confidence threshold
    p_far = predicted(person(0, 0, 40), [150.0, 150.0])
    p_c_weak = predicted(c, 1.0)  # scores below MIN_PERSON_SCORE: filtered out, C unmatched
    p_a_again = predicted(a, 3.0)  # A is taken by p_a, which scores higher
    keypoints = np.stack([p_a, p_b, p_far, p_c_weak, p_a_again]).astype(np.float32)
    scores = np.array([0.8, 0.9, 0.95, 0.1, 0.5], np.float32)
    flags = np.full(keypoints.shape[:2], 2.0, np.float32)  # no keypoint_visibility in the file
    return records, {"7": (keypoints, scores, flags)}


def test_matched_persons_take_the_prediction_and_unmatched_keep_their_ground_truth(scene):
    records, results = scene
    before = copy.deepcopy(records)
    out, counts = substitute_predicted_keypoints(records, results, min_oks=0.5, unmatched="keep_gt", **FILTERS)
    assert records == before  # the input records are not modified
    kp = results["7"][0].astype(np.float64)
    got = [np.array(a["keypoints"]).reshape(17, 3) for a in out[0]["annotations"]]
    want_a = kp[0].copy()
    want_a[:, 2] = 2.0
    np.testing.assert_allclose(got[0], want_a)
    want_b = kp[1].copy()
    want_b[:, 2] = 2.0
    want_b[:5] = 0.0  # below the confidence threshold: unlabeled
    np.testing.assert_allclose(got[1], want_b)
    np.testing.assert_array_equal(got[2].reshape(-1), before[0]["annotations"][2]["keypoints"])  # C: its own
    assert out[0]["annotations"][3] == before[0]["annotations"][3]  # the crowd region
    assert out[1] == before[1]  # no predictions: ground truth kept
    for anno_out, anno_in in zip(out[0]["annotations"], before[0]["annotations"]):
        assert anno_out["segmentation"] == anno_in["segmentation"] and anno_out["bbox"] == anno_in["bbox"]
    assert counts == {
        "images": 2, "images_without_predictions": 1, "persons": 4, "matched": 2, "unmatched_kept": 2,
        "unmatched_dropped": 0, "predictions": 4, "predictions_filtered_out": 1, "predictions_unmatched": 2,
    }  # fmt: skip


def test_unmatched_persons_are_dropped_from_the_records(scene):
    records, results = scene
    out, counts = substitute_predicted_keypoints(records, results, min_oks=0.5, unmatched="drop", **FILTERS)
    assert [a["id"] for a in out[0]["annotations"]] == [1, 2, 4]  # C gone, the crowd kept
    assert out[1]["annotations"] == []
    assert counts["unmatched_dropped"] == 2 and counts["unmatched_kept"] == 0 and counts["matched"] == 2
    # at an OKS threshold no 1-2 px shift reaches, nobody matches and every person is dropped
    strict, counts = substitute_predicted_keypoints(records, results, min_oks=0.99, unmatched="drop", **FILTERS)
    assert counts["matched"] == 0 and counts["unmatched_dropped"] == 4
    assert [a["id"] for a in strict[0]["annotations"]] == [4]


def test_results_for_images_outside_the_split_and_bad_rules_are_errors(scene):
    records, results = scene
    results = dict(results, **{"99": results["7"]})
    with pytest.raises(KeypointsFileError, match=r"preds\.json.*1 image\(s\).*DATASETS.TRAIN.*'99'"):
        substitute_predicted_keypoints(records, results, min_oks=0.5, unmatched="keep_gt", path="preds.json", **FILTERS)
    with pytest.raises(ValueError, match="TRAIN_KEYPOINTS_UNMATCHED"):
        substitute_predicted_keypoints(records, scene[1], min_oks=0.5, unmatched="ignore", **FILTERS)
    twice = records + [dict(records[0], file_name="/other/000007.png")]
    with pytest.raises(KeypointsFileError, match="two training records"):
        substitute_predicted_keypoints(twice, scene[1], min_oks=0.5, unmatched="keep_gt", **FILTERS)


def test_annotation_area_from_the_file_the_segmentation_or_the_box():
    polygon = {"segmentation": [[0, 0, 10, 0, 10, 20, 0, 20]], "bbox": [0, 0, 10, 20]}
    assert annotation_area(polygon, 50, 50) == pytest.approx(200, rel=0.1)  # pixels covered, as COCO counts
    assert annotation_area(dict(polygon, area=123.0), 50, 50) == 123.0
    assert annotation_area({"bbox": [1, 1, 4, 5]}, 50, 50) == 20.0
    mask = np.zeros((50, 50), np.uint8)
    mask[3:8, 2:6] = 1
    assert annotation_area({"segmentation": mask, "bbox": [0, 0, 1, 1]}, 50, 50) == 20.0


# ---------------------------------------------------------------------------- through the trainer
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_train_kpts")
    name = register_tiny_person_dataset("tiny_train_keypoints", str(root / "data"), num_images=3)
    return {"root": root, "dataset": name, "templates": write_templates(str(root / "templates.json"))}


def write_predictions(tiny, path, image_ids, shift=1.5):
    """Results entries made from the tiny data's ground truth (COCO pixel indices), moved by ``shift``."""
    with open(os.path.join(str(tiny["root"]), "data", "annotations.json")) as f:
        data = json.load(f)
    entries = []
    for ann in data["annotations"]:
        if ann["image_id"] in image_ids:
            kpt = np.array(ann["keypoints"], np.float64).reshape(17, 3)
            labeled = kpt[:, 2] > 0
            kpt[:, :2] += shift
            kpt[:, 2] = np.where(labeled, 0.9, 0.0)
            kpt[~labeled, :2] = 0  # a pose estimator's unconfident joints, anywhere
            entries.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": kpt.reshape(-1).tolist(), "score": 0.9})
    with open(path, "w") as f:
        json.dump(entries, f)
    return str(path)


def train_cfg(tiny, results_file, *opts):
    cfg = tiny_pose2seg_cfg(str(tiny["root"] / "out"), tiny["dataset"], tiny["dataset"], tiny["templates"])
    cfg.merge_from_list(["MODEL.POSE2SEG.TRAIN_KEYPOINTS_FILE", results_file, *opts])
    return cfg


def test_the_train_loader_gives_the_predicted_keypoints(tiny, tmp_path):
    # an image with occluded joints (v = 1), which predictions do not have
    record = next(r for r in DatasetCatalog.get(tiny["dataset"]) if any(1 in a["keypoints"][2::3] for a in r["annotations"]))
    first = record["image_id"]
    path = write_predictions(tiny, tmp_path / "preds.json", {first})
    cfg = train_cfg(tiny, path, "MODEL.POSE2SEG.TRAIN_KEYPOINTS_UNMATCHED", "drop")
    # the other images lose all their persons and, as Detectron2 filters empty images, themselves
    out = train_dicts_with_predicted_keypoints(cfg)
    assert [r["image_id"] for r in out] == [first]
    assert len(out[0]["annotations"]) == len(record["annotations"])
    for got, gt in zip(out[0]["annotations"], record["annotations"]):
        g = np.array(gt["keypoints"]).reshape(17, 3)
        k = np.array(got["keypoints"]).reshape(17, 3)
        np.testing.assert_allclose(k[g[:, 2] > 0, :2], g[g[:, 2] > 0, :2] + 1.5, atol=1e-4)
        assert set(k[:, 2].tolist()) <= {0.0, 2.0}
    batch = next(iter(Pose2SegTrainer.build_train_loader(cfg)))
    assert {x["image_id"] for x in batch} == {first}
    for x in batch:
        v = x["instances"].gt_keypoints.tensor[..., 2]
        assert len(v) and set(v.unique().tolist()) <= {0.0, 2.0}  # predicted: no v = 1 left
        assert len(x["instances"].gt_masks) == len(v)


def test_the_trainer_refuses_a_file_of_another_split(tiny, tmp_path):
    path = write_predictions(tiny, tmp_path / "preds.json", {1})
    with open(path) as f:
        entries = json.load(f)
    entries.append(dict(entries[0], image_id=12345))
    with open(path, "w") as f:
        json.dump(entries, f)
    with pytest.raises(KeypointsFileError, match=r"preds\.json.*12345"):
        Pose2SegTrainer.build_train_loader(train_cfg(tiny, path))
    with pytest.raises(KeypointsFileError, match="not found"):
        Pose2SegTrainer.build_train_loader(train_cfg(tiny, str(tmp_path / "missing.json")))


def test_a_files_keypoint_visibility_reaches_the_training_persons(scene):
    records, (keypoints, scores, flags) = scene[0], scene[1]["7"]
    flags = flags.copy()
    flags[0, 5:9] = 1.0  # the bottom-up model marks four joints of p_a covered
    out, _ = substitute_predicted_keypoints(records, {"7": (keypoints, scores, flags)}, min_oks=0.5, unmatched="keep_gt", **FILTERS)
    got = np.array(out[0]["annotations"][0]["keypoints"]).reshape(17, 3)
    np.testing.assert_array_equal(got[:, 2], np.where(np.arange(17) >= 5, np.where(np.arange(17) < 9, 1.0, 2.0), 2.0))
