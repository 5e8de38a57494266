import math

import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO

from pose2seg_d2.evaluation import evaluate_by_max_iou

H, W = 60, 80
# (box x, y, w, h, max_iou): two persons per bucket 0 and 2, none in bucket 1
PERSONS = [(2, 2, 10, 20, 0.1), (20, 2, 10, 20, 0.3), (40, 2, 10, 20, 0.8), (60, 2, 10, 20, 1.0)]


def rect_rle(x, y, w, h):
    m = np.zeros((H, W), np.uint8, order="F")
    m[y : y + h, x : x + w] = 1
    rle = mask_util.encode(m)
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def make_gt():
    anns = []
    for i, (x, y, w, h, miou) in enumerate(PERSONS):
        anns.append({"id": i + 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [x, y, w, h],
                     "area": w * h, "segmentation": rect_rle(x, y, w, h), "max_iou": miou})  # fmt: skip
    coco = COCO()
    coco.dataset = {"images": [{"id": 1, "height": H, "width": W}], "annotations": anns,
                    "categories": [{"id": 1, "name": "person"}]}  # fmt: skip
    coco.createIndex()
    return coco


def prediction(person, score=1.0, shift=0):
    x, y, w, h, _ = PERSONS[person] if isinstance(person, int) else person
    return {"image_id": 1, "category_id": 1, "score": score, "segmentation": rect_rle(x + shift, y, w, h)}


def test_perfect_predictions_give_100_in_every_bucket_with_persons():
    aps = evaluate_by_max_iou(make_gt(), [prediction(i) for i in range(4)])
    assert aps["0.00-0.50"] == {"AP": 100.0, "AP50": 100.0, "AP75": 100.0}
    assert aps["0.75-1.00"]["AP"] == pytest.approx(100.0)  # max_iou 1.0 belongs to the last bucket
    assert all(math.isnan(v) for v in aps["0.50-0.75"].values())


def test_a_prediction_of_an_out_of_bucket_person_does_not_lower_the_bucket():
    # bucket 0 persons found with scores 0.5; a higher-scored prediction of a bucket-2 person
    preds = [prediction(0, 0.5), prediction(1, 0.5), prediction(2, 0.9)]
    assert evaluate_by_max_iou(make_gt(), preds)["0.00-0.50"]["AP"] == pytest.approx(100.0)
    # the same prediction matching nobody is a false positive and does lower it
    stray = prediction((30, 35, 10, 20, 0.0), 0.9)
    assert evaluate_by_max_iou(make_gt(), [prediction(0, 0.5), prediction(1, 0.5), stray])["0.00-0.50"]["AP"] < 99.0


def test_a_missed_in_bucket_person_lowers_the_bucket_only():
    aps = evaluate_by_max_iou(make_gt(), [prediction(0), prediction(2), prediction(3)])
    assert aps["0.00-0.50"]["AP"] == pytest.approx(50.0, abs=1.0)
    assert aps["0.75-1.00"]["AP"] == pytest.approx(100.0)


def test_max_iou_is_computed_from_boxes_when_missing():
    coco = make_gt()
    for a in coco.dataset["annotations"]:
        del a["max_iou"]
    aps = evaluate_by_max_iou(coco, [prediction(i) for i in range(4)])
    # the boxes do not overlap: every person is in the first bucket
    assert [a["max_iou"] for a in coco.dataset["annotations"]] == [0.0] * 4
    assert aps["0.00-0.50"]["AP"] == pytest.approx(100.0) and math.isnan(aps["0.75-1.00"]["AP"])
