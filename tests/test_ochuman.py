"""OCHuman native -> COCO-style conversion (docs/method.md §3), on a fixture in the native format."""
import copy
import json
import os

import numpy as np
import pycocotools.mask as mask_util
import pytest

from pose2seg_d2.data.ochuman import convert_ochuman, ochuman_coco_filename, prepare_ochuman
from pose2seg_d2.pose.keypoints import COCO_PERSON_KEYPOINT_NAMES

from .fixtures import load_script


# OCHuman's own order, with two keypoints COCO does not have
NATIVE_NAMES = [
    "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "head", "neck", "right_ear", "left_ear", "nose", "right_eye", "left_eye",
]  # fmt: skip
# native code -> COCO v, written out independently of the implementation
CODE_TO_V = {0: 0, 1: 2, 2: 2, 3: 1}
SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9],
            [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]  # fmt: skip

OUTER = [[2.0, 2.0, 30.0, 2.0, 30.0, 20.0, 2.0, 20.0]]
HOLE = [[10.0, 8.0, 20.0, 8.0, 20.0, 14.0, 10.0, 14.0]]


def person(seed, codes, max_iou, bbox, segms=True, keypoints=True, inner=True):
    """A native annotation and its expected COCO keypoints (COCO order)."""
    coco_xy = [(seed * 10 + k + 0.25, seed * 5 + 2 * k + 0.5) for k in range(17)]
    native = []
    for name in NATIVE_NAMES:
        if name in COCO_PERSON_KEYPOINT_NAMES:
            k = COCO_PERSON_KEYPOINT_NAMES.index(name)
            native += [coco_xy[k][0], coco_xy[k][1], codes[k]]
        else:
            native += [999.0, 999.0, 1]  # head / neck: must not leak into COCO
    anno = {
        "bbox": bbox,
        "keypoints": native if keypoints else None,
        "segms": copy.deepcopy({"outer": OUTER, "inner": HOLE if inner else [], "height": 30, "width": 40}) if segms else None,
        "max_iou": max_iou,
    }
    expected = []
    for k in range(17):
        expected += [coco_xy[k][0], coco_xy[k][1], CODE_TO_V[codes[k]]]
    return anno, expected


ALL_CODES = [0, 1, 2, 3] * 4 + [1]  # every visibility code


def make_native():
    a0, e0 = person(1, ALL_CODES, 0.6, [1, 2, 31, 22])
    a1, _ = person(2, [1] * 17, 0.7, [0, 0, 5, 5], keypoints=False)  # no keypoints: dropped
    a2, _ = person(3, [1] * 17, 0.7, [0, 0, 5, 5], segms=False)  # no segms: dropped
    a3, e3 = person(4, [3] * 8 + [0] * 9, 0.8, [1.5, 2.5, 11.5, 22.5], inner=False)
    b0, _ = person(5, [1] * 17, 0.9, [0, 0, 5, 5], segms=False)
    c0, e_c0 = person(6, [2] * 17, 0.3, [0, 0, 10, 10])
    d0, e_d0 = person(7, [1] * 17, 0.9, [3, 3, 13, 23])
    d1, e_d1 = person(8, [3] * 17, 0.55, [4, 3, 14, 23])
    e_person, _ = person(9, [1] * 17, 1.0, [0, 0, 10, 10])  # max_iou 1.0 is outside [0, 1)
    native = {
        "keypoint_names": NATIVE_NAMES,
        "keypoint_visible": {"missing": 0, "vis": 1, "self_occluded": 2, "others_occluded": 3},
        "images": [
            {"image_id": "000001", "file_name": "000001.jpg", "width": 40, "height": 30, "annotations": [a0, a1, a2, a3]},
            {"image_id": "000002", "file_name": "000002.jpg", "width": 40, "height": 30, "annotations": [b0]},
            {"image_id": "000003", "file_name": "000003.jpg", "width": 40, "height": 30, "annotations": [c0]},
            {"image_id": "000004", "file_name": "000004.jpg", "width": 40, "height": 30, "annotations": [d0, d1]},
            {"image_id": "000005", "file_name": "000005.jpg", "width": 40, "height": 30, "annotations": [e_person]},
        ],
    }
    expected = {"a0": e0, "a3": e3, "c0": e_c0, "d0": e_d0, "d1": e_d1}
    return native, expected


def rasterize(polys, h, w):
    return mask_util.decode(mask_util.merge(mask_util.frPyObjects(polys, h, w)))


def decode(segm):
    return mask_util.decode({"size": segm["size"], "counts": segm["counts"].encode("ascii")})


def test_val_split_and_fields():
    native, expected = make_native()
    out = convert_ochuman(native, "val", (0.0, 1.0), val_size=2)
    # kept images in file order: 000001, 000003, 000004, 000005 (000002 has no kpt&segm person)
    assert [im["file_name"] for im in out["images"]] == ["000001.jpg", "000003.jpg"]
    assert out["images"][0] == {"id": 1, "file_name": "000001.jpg", "height": 30, "width": 40}
    assert [im["id"] for im in out["images"]] == [1, 2]
    assert out["categories"] == [
        {"supercategory": "person", "id": 1, "name": "person", "skeleton": SKELETON,
         "keypoints": list(COCO_PERSON_KEYPOINT_NAMES)}
    ]  # fmt: skip
    annos = out["annotations"]
    assert [a["id"] for a in annos] == [1, 2, 3]
    assert [a["image_id"] for a in annos] == [1, 1, 2]
    a0, a3, c0 = annos
    assert list(a0) == ["image_id", "area", "num_keypoints", "iscrowd", "id", "category_id",
                        "keypoints", "segmentation", "bbox"]  # fmt: skip
    assert a0["keypoints"] == expected["a0"]
    assert a3["keypoints"] == expected["a3"]
    assert c0["keypoints"] == expected["c0"]
    assert a0["num_keypoints"] == sum(1 for c in ALL_CODES if c > 0)
    assert a3["num_keypoints"] == 8
    assert a0["bbox"] == [1, 2, 30, 20] and a0["area"] == 600  # box area, not the mask's
    assert a3["bbox"] == [1.5, 2.5, 10.0, 20.0] and a3["area"] == 200.0
    assert a0["iscrowd"] == 0 and a0["category_id"] == 1
    assert "max_iou" not in a0


def test_masks_are_outer_minus_inner_rle():
    native, _ = make_native()
    a0, a3, _ = convert_ochuman(native, "val", val_size=2)["annotations"]
    for anno in (a0, a3):
        assert isinstance(anno["segmentation"]["counts"], str)
        assert anno["segmentation"]["size"] == [30, 40]
    outer, hole = rasterize(OUTER, 30, 40), rasterize(HOLE, 30, 40)
    m0 = decode(a0["segmentation"])
    np.testing.assert_array_equal(m0, outer & (1 - hole))
    assert m0[11, 15] == 0 and m0[4, 4] == 1 and m0[25, 35] == 0  # hole, ring, outside
    np.testing.assert_array_equal(decode(a3["segmentation"]), outer)
    assert m0.sum() < outer.sum()


def test_test_split_and_range_filter_after_split():
    native, expected = make_native()
    test = convert_ochuman(native, "test", (0.0, 1.0), val_size=2)
    # 000005's only person has max_iou 1.0, outside [0, 1): the image is dropped
    assert [im["file_name"] for im in test["images"]] == ["000004.jpg"]
    assert [a["keypoints"] for a in test["annotations"]] == [expected["d0"], expected["d1"]]
    assert [a["id"] for a in test["annotations"]] == [1, 2]

    moderate_val = convert_ochuman(native, "val", (0.5, 0.75), val_size=2)
    # only 000001's 0.6 person; 000003 (0.3) is dropped after the split, not replaced by 000004
    assert [im["file_name"] for im in moderate_val["images"]] == ["000001.jpg"]
    assert [a["keypoints"] for a in moderate_val["annotations"]] == [expected["a0"]]
    moderate_test = convert_ochuman(native, "test", (0.5, 0.75), val_size=2)
    assert [a["keypoints"] for a in moderate_test["annotations"]] == [expected["d1"]]
    assert moderate_test["annotations"][0]["image_id"] == 1

    every = convert_ochuman(native, "all", (0.0, 1.01))
    assert len(every["images"]) == 4 and len(every["annotations"]) == 6


def test_with_max_iou_and_sorting():
    native, _ = make_native()
    out = convert_ochuman(native, "val", val_size=2, with_max_iou=True)
    assert [a["max_iou"] for a in out["annotations"]] == [0.6, 0.8, 0.3]
    shuffled = copy.deepcopy(native)
    shuffled["images"].reverse()
    # reversed file order: val = 000005 (dropped: max_iou 1.0) and 000004
    assert [im["file_name"] for im in convert_ochuman(shuffled, "val", val_size=2)["images"]] == ["000004.jpg"]
    assert convert_ochuman(shuffled, "val", val_size=2, sort_by_image_id=True) == convert_ochuman(native, "val", val_size=2)


def test_input_is_not_modified():
    native, _ = make_native()
    before = copy.deepcopy(native)
    convert_ochuman(native, "all")
    assert native == before


def test_prepare_writes_release_file_names(tmp_path):
    native, _ = make_native()
    src = tmp_path / "ochuman.json"
    src.write_text(json.dumps(native))
    written = prepare_ochuman(str(src), str(tmp_path / "out"), val_size=2)
    assert os.path.basename(written["val"]) == "ochuman_coco_format_val_range_0.00_1.00.json"
    assert os.path.basename(written["test"]) == "ochuman_coco_format_test_range_0.00_1.00.json"
    with open(written["val"]) as f:
        assert json.load(f) == json.loads(json.dumps(convert_ochuman(native, "val", val_size=2)))
    assert ochuman_coco_filename("test", (0.5, 0.75)) == "ochuman_coco_format_test_range_0.50_0.75.json"

    script = load_script("prepare_ochuman")
    rc = script.main([str(src), "--output-dir", str(tmp_path / "cli"), "--max-iou-range", "0.5", "0.75", "--val-size", "2"])
    assert rc == 0
    assert sorted(os.listdir(tmp_path / "cli")) == [
        "ochuman_coco_format_test_range_0.50_0.75.json",
        "ochuman_coco_format_val_range_0.50_0.75.json",
    ]
    assert script.main([str(tmp_path / "missing.json"), "--output-dir", str(tmp_path / "x")]) == 1


def test_missing_file_names_path_and_source(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.json.*cg\.cs\.tsinghua\.edu\.cn"):
        prepare_ochuman(str(tmp_path / "missing.json"), str(tmp_path))


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda a: a["keypoints"].__setitem__(2, 5), "'keypoints'"),
        (lambda a: a["keypoints"].pop(), "'keypoints'"),
        (lambda a: a.__setitem__("bbox", [1, 2, 3]), "'bbox'"),
        (lambda a: a.pop("max_iou"), "'max_iou'"),
        (lambda a: a["segms"].pop("height"), "'segms.height'"),
        (lambda a: a["segms"]["outer"][0].pop(), r"'segms.outer\[0\]'"),
    ],
)
def test_bad_records_name_file_image_annotation_and_field(edit, field):
    native, _ = make_native()
    edit(native["images"][3]["annotations"][1])
    with pytest.raises(ValueError, match=rf"ochuman\.json: images\[3\] \(image_id '000004'\), annotations\[1\], field {field}"):
        convert_ochuman(native, "test", val_size=2, source="ochuman.json")


def test_bad_top_level():
    native, _ = make_native()
    native["keypoint_names"] = native["keypoint_names"][1:]
    with pytest.raises(ValueError, match="keypoint_names.*right_shoulder"):
        convert_ochuman(native, "val", source="ochuman.json")
    with pytest.raises(ValueError, match="'images' is missing"):
        convert_ochuman({"keypoint_names": NATIVE_NAMES}, "val", source="ochuman.json")
