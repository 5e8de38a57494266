"""Registration in Detectron2's catalogs: lazy, rooted at $DETECTRON2_DATASETS, loading
through DatasetCatalog.get and mapping through DatasetMapper."""
import json
import os

import cv2
import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, DatasetMapper, MetadataCatalog
from detectron2.data import detection_utils as utils
from detectron2.structures import BitMasks, BoxMode
from detectron2.utils.visualizer import Visualizer

import pose2seg_d2.data as data
from pose2seg_d2.data.max_iou import max_iou
from pose2seg_d2.data.ochuman import convert_ochuman
from pose2seg_d2.data.synthetic import generate_synthetic_dataset
from pose2seg_d2.pose.keypoints import COCO_PERSON_KEYPOINT_NAMES

from .test_coco_persons import make_coco
from .test_ochuman import make_native

NAMES = [
    "ochuman_val", "ochuman_test", "coco_persons_train", "coco_persons_val",
    "synthetic_occluded_train", "synthetic_occluded_val", "synthetic_occluded_test",
    "synthetic_occluded_all_levels",
]  # fmt: skip


@pytest.fixture(scope="module")
def datasets_root(tmp_path_factory):
    """A datasets root with tiny OCHuman, COCOPersons and synthetic datasets in the layout of
    datasets/README.md."""
    root = tmp_path_factory.mktemp("datasets")
    rng = np.random.default_rng(0)
    ochuman = root / "ochuman"
    (ochuman / "annotations").mkdir(parents=True)
    (ochuman / "images").mkdir()
    native, _ = make_native()
    for subset in ("val", "test"):
        coco = convert_ochuman(native, subset, val_size=2)
        (ochuman / "annotations" / f"ochuman_coco_format_{subset}_range_0.00_1.00.json").write_text(json.dumps(coco))
    for im in native["images"]:
        cv2.imwrite(str(ochuman / "images" / im["file_name"]), rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
    coco_dir = root / "coco"
    (coco_dir / "annotations").mkdir(parents=True)
    for split in ("train", "val"):
        (coco_dir / f"{split}2017").mkdir()
        persons = data.filter_coco_persons(make_coco())
        (coco_dir / "annotations" / f"person_keypoints_{split}2017_pose2seg.json").write_text(json.dumps(persons))
        for im in persons["images"]:
            cv2.imwrite(str(coco_dir / f"{split}2017" / im["file_name"]), rng.integers(0, 255, (80, 60, 3), dtype=np.uint8))
    generate_synthetic_dataset(
        str(root / "synthetic_occluded"), seed=0, num_train=3, num_val=2, num_test=2, num_all_levels=2,
        progress=False, verbose=False,
    )  # fmt: skip
    return root


@pytest.fixture
def root(datasets_root):
    """The datasets registered under ``datasets_root``; the default registration afterwards."""
    data.register_all(str(datasets_root))
    yield datasets_root
    data.register_all()


def test_registered_at_import_and_lazy(tmp_path, monkeypatch):
    assert set(NAMES) <= set(DatasetCatalog.list())
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "nothing_here"))
    try:
        assert data.register_all() == NAMES  # no file is touched
        assert not (tmp_path / "nothing_here").exists()
        meta = MetadataCatalog.get("ochuman_val")
        assert meta.json_file == str(tmp_path / "nothing_here" / "ochuman" / "annotations" / "ochuman_coco_format_val_range_0.00_1.00.json")
        assert meta.image_root == str(tmp_path / "nothing_here" / "ochuman" / "images")
        with pytest.raises(FileNotFoundError, match=r"nothing_here/ochuman/annotations/ochuman_coco_format_val.*OCHumanApi"):
            DatasetCatalog.get("ochuman_val")
        with pytest.raises(FileNotFoundError, match=r"person_keypoints_train2017_pose2seg\.json.*prepare_coco_persons\.py"):
            DatasetCatalog.get("coco_persons_train")
    finally:
        monkeypatch.undo()
        data.register_all()
    assert MetadataCatalog.get("ochuman_val").json_file.startswith(data.get_datasets_root())


def test_metadata():
    for name in NAMES:
        meta = MetadataCatalog.get(name)
        assert meta.thing_classes == ["person"]
        assert meta.evaluator_type == "coco"
        assert tuple(meta.keypoint_names) == COCO_PERSON_KEYPOINT_NAMES
        assert ("left_eye", "right_eye") in meta.keypoint_flip_map and len(meta.keypoint_flip_map) == 8
        assert len(meta.keypoint_connection_rules) == 19
        for a, b, color in meta.keypoint_connection_rules:
            assert a in COCO_PERSON_KEYPOINT_NAMES and b in COCO_PERSON_KEYPOINT_NAMES and len(color) == 3
    # Detectron2 derives the flip indices from the metadata
    assert list(utils.create_keypoint_hflip_indices(["ochuman_val"]))[:5] == [0, 2, 1, 4, 3]


@pytest.mark.parametrize("name", NAMES)
def test_load(root, name):
    dicts = DatasetCatalog.get(name)
    assert len(dicts) > 0
    meta = MetadataCatalog.get(name)
    assert meta.json_file.startswith(str(root))
    for d in dicts:
        assert os.path.isfile(d["file_name"]) and d["file_name"].startswith(meta.image_root)
        assert d["height"] > 0 and d["width"] > 0
        boxes = []
        for a in d["annotations"]:
            assert len(a["keypoints"]) == 51 and a["segmentation"]
            assert a["category_id"] == 0 and a["bbox_mode"] == BoxMode.XYWH_ABS
            assert isinstance(a["max_iou"], float)
            boxes.append(a["bbox"])
        if name.startswith(("ochuman", "coco")):  # files without max_iou: computed from the boxes
            np.testing.assert_allclose([a["max_iou"] for a in d["annotations"]], max_iou(boxes))


def test_ochuman_values_come_through(root):
    d = DatasetCatalog.get("ochuman_val")[0]
    with open(MetadataCatalog.get("ochuman_val").json_file) as f:
        raw = json.load(f)["annotations"][0]
    kp = np.array(d["annotations"][0]["keypoints"]).reshape(17, 3)
    np.testing.assert_allclose(kp[:, :2], np.array(raw["keypoints"]).reshape(17, 3)[:, :2] + 0.5)
    assert d["annotations"][0]["segmentation"]["counts"] == raw["segmentation"]["counts"]
    assert d["annotations"][0]["max_iou"] == pytest.approx(max_iou([a["bbox"] for a in d["annotations"]])[0])


def test_synthetic_keeps_file_max_iou(root):
    with open(root / "synthetic_occluded" / "annotations" / "test.json") as f:
        raw = json.load(f)["annotations"]
    loaded = [a["max_iou"] for d in DatasetCatalog.get("synthetic_occluded_test") for a in d["annotations"]]
    assert loaded == [a["max_iou"] for a in raw]


@pytest.mark.parametrize("name", ["ochuman_val", "coco_persons_train", "synthetic_occluded_train"])
def test_dataset_mapper(root, name):
    cfg = get_cfg()
    cfg.INPUT.MASK_FORMAT = "bitmask"
    cfg.MODEL.KEYPOINT_ON = True
    cfg.MODEL.MASK_ON = True
    cfg.DATASETS.TRAIN = (name,)
    cfg.INPUT.MIN_SIZE_TRAIN = (64,)
    cfg.INPUT.MAX_SIZE_TRAIN = 128
    mapper = DatasetMapper(cfg, is_train=True)
    d = DatasetCatalog.get(name)[0]
    out = mapper(d)
    image = out["image"]
    assert image.dtype == torch.uint8 and image.shape[0] == 3 and min(image.shape[1:]) == 64
    inst = out["instances"]
    assert len(inst) == len(d["annotations"])
    assert isinstance(inst.gt_masks, BitMasks) and inst.gt_masks.tensor.shape[1:] == image.shape[1:]
    assert inst.gt_keypoints.tensor.shape == (len(inst), 17, 3)
    assert inst.gt_masks.tensor.flatten(1).any(1).all()


def _distance_to_segment(points, a, b):
    """(N,) distances of (N, 2) ``points`` to the segment from ``a`` to ``b`` (to the point
    ``a`` when ``b`` is ``a``)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    t = np.clip((points - a) @ (b - a) / max((b - a) @ (b - a), 1e-12), 0.0, 1.0)
    return np.hypot(*(points - (a + t[:, None] * (b - a))).T)


def _draw_person(meta, keypoints):
    """Visualizer output of one person with ``keypoints`` {name: (x, y, v)} (the others
    unlabeled) on a plain 200 x 200 image, and the (H, W) bool map of changed pixels; the
    person's box and label sit in the top-left corner (x < 80, y < 24)."""
    flat = np.zeros((17, 3))
    for name, xyv in keypoints.items():
        flat[COCO_PERSON_KEYPOINT_NAMES.index(name)] = xyv
    record = {"annotations": [
        {"keypoints": flat.reshape(-1).tolist(), "bbox": [2, 2, 6, 6], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0}
    ]}  # fmt: skip
    plain = np.full((200, 200, 3), 128, dtype=np.uint8)
    drawn = Visualizer(plain, meta).draw_dataset_dict(record).get_image()
    return drawn, (drawn != plain).any(axis=2)


def _far_pixels_changed(changed, a, b, margin=8):
    """How many changed pixels are farther than ``margin`` from the segment a-b, outside the
    top-left corner of the box and its label."""
    ys, xs = np.nonzero(changed)
    far = _distance_to_segment(np.stack([xs + 0.5, ys + 0.5], 1), a, b) > margin
    return int((far & ~((xs < 80) & (ys < 24))).sum())


def test_visualizer_draws_skeleton(root):
    d = DatasetCatalog.get("synthetic_occluded_val")[0]
    img = cv2.imread(d["file_name"])[:, :, ::-1]
    out = Visualizer(img, MetadataCatalog.get("synthetic_occluded_val")).draw_dataset_dict(d).get_image()
    assert out.shape == img.shape and not np.array_equal(out, img)

    # every limb of COCO's skeleton (the file format's 1-based pairs) is drawn between its two
    # labeled keypoints, in its color of the metadata, and nothing else is drawn
    meta = MetadataCatalog.get("synthetic_occluded_val")
    colors = {frozenset((a, b)): c for a, b, c in meta.keypoint_connection_rules}
    a, b = (50.5, 60.5), (150.5, 140.5)
    on_segment = [(int(50.5 + t * 100), int(60.5 + t * 80)) for t in np.linspace(0.1, 0.9, 17)]
    for i, j in data.COCO_PERSON_SKELETON:
        name_a, name_b = COCO_PERSON_KEYPOINT_NAMES[i - 1], COCO_PERSON_KEYPOINT_NAMES[j - 1]
        drawn, changed = _draw_person(meta, {name_a: (*a, 2), name_b: (*b, 1)})  # v = 1 is labeled too
        assert all(changed[y, x] for x, y in on_segment), f"limb {name_a}-{name_b} is not drawn"
        assert drawn[100, 100].tolist() == list(colors[frozenset((name_a, name_b))])
        assert _far_pixels_changed(changed, a, b) == 0, f"limb {name_a}-{name_b}: pixels far from it changed"
    # a limb with an unlabeled end is not drawn
    _, changed = _draw_person(meta, {"left_shoulder": (*a, 2), "left_elbow": (*b, 0)})
    assert not any(changed[y, x] for x, y in on_segment), "a limb to an unlabeled keypoint is drawn"
    assert changed.any() and _far_pixels_changed(changed, a, a) == 0  # the labeled keypoint's dot only


def test_max_iou_matches_brute_force():
    rng = np.random.default_rng(3)
    boxes = np.concatenate([rng.uniform(0, 50, (6, 2)), rng.uniform(0, 40, (6, 2))], 1)  # xywh
    boxes[5, 2] = 0.0  # an empty box

    def iou(a, b):
        ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
        iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
        union = a[2] * a[3] + b[2] * b[3] - ix * iy
        return ix * iy / union if union > 0 else 0.0

    expected = [max(iou(boxes[i], boxes[j]) for j in range(6) if j != i) for i in range(6)]
    np.testing.assert_allclose(max_iou(boxes), expected)
    xyxy = boxes.copy()
    xyxy[:, 2:] += xyxy[:, :2]
    np.testing.assert_allclose(max_iou(xyxy, mode="xyxy"), expected)
    assert max_iou(boxes[:1]).tolist() == [0.0] and max_iou(np.zeros((0, 4))).shape == (0,)
    np.testing.assert_allclose(max_iou([[0, 0, 10, 10], [0, 0, 10, 10], [5, 0, 10, 10]]), [1.0, 1.0, 1 / 3])

    # add_max_iou: computed among non-crowd persons, any box mode; existing values kept
    dicts = [{"annotations": [
        {"bbox": [0, 0, 10, 10], "bbox_mode": BoxMode.XYXY_ABS},
        {"bbox": [5, 0, 10, 10], "bbox_mode": BoxMode.XYWH_ABS},
        {"bbox": [0, 0, 10, 10], "bbox_mode": BoxMode.XYXY_ABS, "iscrowd": 1},
    ]}, {"annotations": [{"bbox": [0, 0, 4, 4], "max_iou": 0.7}, {"bbox": [0, 0, 4, 4], "max_iou": 0.8}]}]  # fmt: skip
    data.add_max_iou(dicts)
    assert [a["max_iou"] for a in dicts[0]["annotations"]] == pytest.approx([1 / 3, 1 / 3, 0.0])
    assert [a["max_iou"] for a in dicts[1]["annotations"]] == [0.7, 0.8]


def test_synthetic_generated_on_first_use(tmp_path, monkeypatch):
    from pose2seg_d2.data import builtin
    from pose2seg_d2.data.synthetic import ensure_synthetic_dataset

    calls = []

    def small(root):  # the registered loader's call, with tiny counts
        calls.append(root)
        return ensure_synthetic_dataset(root, num_train=2, num_val=2, num_test=1, num_all_levels=1, progress=False, verbose=False)

    monkeypatch.setattr(builtin, "ensure_synthetic_dataset", small)
    try:
        data.register_all(str(tmp_path))
        assert not (tmp_path / "synthetic_occluded").exists()  # registration is lazy
        dicts = DatasetCatalog.get("synthetic_occluded_val")
        assert calls == [str(tmp_path / "synthetic_occluded")]
        assert len(dicts) == 2 and (tmp_path / "synthetic_occluded" / "annotations" / "test.json").is_file()
    finally:
        data.register_all()
