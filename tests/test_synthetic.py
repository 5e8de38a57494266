"""The synthetic occluded-human benchmark: determinism, occlusion statistics, masks and
keypoint codes."""
import filecmp
import importlib.util
import json
import os

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO

from pose2seg_d2.data.max_iou import max_iou
from pose2seg_d2.data.synthetic import (
    SPLITS,
    ensure_synthetic_dataset,
    generate_synthetic_dataset,
    is_synthetic_dataset_complete,
)
from pose2seg_d2.pose.keypoints import COCO_PERSON_KEYPOINT_NAMES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNTS = dict(num_train=40, num_val=16, num_test=16, num_all_levels=24)
SIZES = (40, 16, 16, 24)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic") / "a"
    stats = generate_synthetic_dataset(str(root), seed=3, progress=False, num_workers=2, verbose=False, **COUNTS)
    return str(root), stats


def load(root, split):
    with open(os.path.join(root, "annotations", f"{split}.json")) as f:
        return json.load(f)


def decode(segm):
    return mask_util.decode({"size": segm["size"], "counts": segm["counts"].encode("ascii")}).astype(bool)


def by_image(coco):
    out = {im["id"]: [] for im in coco["images"]}
    for a in coco["annotations"]:
        out[a["image_id"]].append(a)
    return out


def test_layout_and_format(dataset):
    root, stats = dataset
    assert is_synthetic_dataset_complete(root)
    for split, n in zip(SPLITS, SIZES):
        coco = load(root, split)
        assert len(coco["images"]) == n == stats[split]["images"]
        cat = coco["categories"][0]
        assert cat["id"] == 1 and cat["name"] == "person"
        assert cat["keypoints"] == list(COCO_PERSON_KEYPOINT_NAMES) and [16, 14] in cat["skeleton"]
        for im in coco["images"]:
            img = cv2.imread(os.path.join(root, "images", split, im["file_name"]))
            assert img.shape == (im["height"], im["width"], 3) and max(img.shape) == 256
        for a in coco["annotations"]:
            assert a["category_id"] == 1 and a["iscrowd"] == 0
            assert len(a["keypoints"]) == 51 and all(isinstance(v, int) for v in a["keypoints"])
            assert a["num_keypoints"] == sum(v > 0 for v in a["keypoints"][2::3])
            assert isinstance(a["segmentation"]["counts"], str)
            assert a["area"] == int(decode(a["segmentation"]).sum()) > 0
        api = COCO(os.path.join(root, "annotations", f"{split}.json"))  # pycocotools reads it
        assert len(api.getAnnIds()) == len(coco["annotations"])


def test_deterministic_by_seed(dataset, tmp_path):
    root, _ = dataset
    other = tmp_path / "b"
    generate_synthetic_dataset(str(other), seed=3, progress=False, num_workers=0, verbose=False, **COUNTS)
    for split in SPLITS:
        a = os.path.join(root, "annotations", f"{split}.json")
        assert filecmp.cmp(a, str(other / "annotations" / f"{split}.json"), shallow=False)
        names = sorted(os.listdir(os.path.join(root, "images", split)))
        assert names == sorted(os.listdir(other / "images" / split))
        _, mismatch, errors = filecmp.cmpfiles(os.path.join(root, "images", split), str(other / "images" / split), names, shallow=False)
        assert not mismatch and not errors
    # image i depends only on (seed, split, i): fewer images are a prefix; another seed differs
    for seed, same in ((3, True), (4, False)):
        small = tmp_path / f"seed{seed}"
        generate_synthetic_dataset(str(small), seed=seed, progress=False, verbose=False, num_train=0, num_val=0, num_test=3, num_all_levels=0)
        for name in sorted(os.listdir(small / "images" / "test")):
            equal = filecmp.cmp(str(small / "images" / "test" / name), os.path.join(root, "images", "test", name), shallow=False)
            assert equal == same


def test_max_iou_statistics(dataset):
    root, stats = dataset
    for split in SPLITS:
        coco = load(root, split)
        for annos in by_image(coco).values():
            expected = max_iou([a["bbox"] for a in annos])
            np.testing.assert_allclose([a["max_iou"] for a in annos], expected, atol=1e-6)
    test = np.array([a["max_iou"] for a in load(root, "test")["annotations"]])
    assert (test >= 0.5).all() and test.mean() >= 0.6
    assert stats["test"]["mean_max_iou"] == pytest.approx(test.mean())
    val = np.array([a["max_iou"] for a in load(root, "val")["annotations"]])
    assert (val >= 0.5).any() and (val < 0.5).any()  # val mixes easy and occluded persons
    # all_levels (the COCOPersons-val analogue) has persons in every bucket of the evaluator
    levels = np.array([a["max_iou"] for a in load(root, "all_levels")["annotations"]])
    assert (levels < 0.5).any() and ((levels >= 0.5) & (levels < 0.75)).any() and (levels >= 0.75).any()
    assert stats["all_levels"]["persons_by_max_iou"]["0.00-0.50"] == int((levels < 0.5).sum())
    # train is COCO-like: heavy overlaps are rare (4 % of its scenes are occluded groups)
    train = np.array([a["max_iou"] for a in load(root, "train")["annotations"]])
    assert (train >= 0.5).mean() < 0.15 and train.mean() < 0.3


def test_masks_disjoint_and_keypoint_codes_agree(dataset):
    root, _ = dataset
    counts = {0: 0, 1: 0, 2: 0}
    for split in SPLITS:
        coco = load(root, split)
        sizes = {im["id"]: (im["height"], im["width"]) for im in coco["images"]}
        for image_id, annos in by_image(coco).items():
            masks = [decode(a["segmentation"]) for a in annos]
            assert all(m.shape == sizes[image_id] for m in masks)
            assert (np.sum(masks, axis=0) <= 1).all(), "masks of one image overlap"
            h, w = sizes[image_id]
            for i, a in enumerate(annos):
                kp = np.array(a["keypoints"]).reshape(17, 3)
                for x, y, v in kp:
                    counts[v] += 1
                    if v == 0:
                        assert x == 0 and y == 0
                        continue
                    assert 0 <= x < w and 0 <= y < h
                    if v == 2:
                        assert masks[i][y, x], "a visible keypoint off its own mask"
                    else:
                        assert not masks[i][y, x]
                        assert any(m[y, x] for j, m in enumerate(masks) if j != i), "v = 1 but nobody covers it"
                x0, y0, bw, bh = a["bbox"]
                ys, xs = np.nonzero(masks[i])
                assert x0 <= xs.min() and xs.max() < x0 + bw and y0 <= ys.min() and ys.max() < y0 + bh
    assert counts[1] > 0 and counts[2] > 0


def test_figures_vary_in_outfit_and_build(dataset):
    root, stats = dataset
    figures = [a["figure"] for split in SPLITS for a in load(root, split)["annotations"]]
    assert {f["outfit"] for f in figures} == {"shirt_pants", "dress", "skirt", "coat"}
    assert {f["hair"] for f in figures} == {"short", "long", "bun"}
    assert any(f["hat"] for f in figures) and {f["bag"] for f in figures} >= {"none", "shoulder", "backpack"}
    builds = np.array([[f["build"], f["arm_width"], f["leg_width"]] for f in figures])
    assert builds.std(axis=0).min() > 0.05  # every width varies per person
    assert 0 < stats["train"]["share_bag_or_hat"] < 1 and abs(sum(stats["train"]["share_outfit"].values()) - 1) < 1e-9


def test_an_older_generator_version_is_generated_anew(tmp_path):
    root = tmp_path / "synthetic_occluded"
    ensure_synthetic_dataset(str(root), seed=1, num_train=2, num_val=1, num_test=1, num_all_levels=1, progress=False, verbose=False)
    record = json.loads((root / "generation.json").read_text())
    record["version"] = 1
    (root / "generation.json").write_text(json.dumps(record))
    (root / "images" / "train" / "stale.png").write_bytes(b"")
    assert not is_synthetic_dataset_complete(str(root))
    ensure_synthetic_dataset(str(root), seed=1, num_train=2, num_val=1, num_test=1, num_all_levels=1, progress=False, verbose=False)
    assert is_synthetic_dataset_complete(str(root))
    assert sorted(os.listdir(root / "images" / "train")) == ["000000.png", "000001.png"]


def test_ensure_generates_once(tmp_path):
    root = tmp_path / "synthetic_occluded"
    ensure_synthetic_dataset(str(root), seed=1, num_train=2, num_val=1, num_test=1, num_all_levels=1, progress=False, verbose=False)
    assert is_synthetic_dataset_complete(str(root))
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic_occluded"]  # the temporary folder is gone
    stamp = os.path.getmtime(root / "annotations" / "train.json")
    ensure_synthetic_dataset(str(root), seed=1, num_train=50)
    assert os.path.getmtime(root / "annotations" / "train.json") == stamp
    assert len(load(str(root), "train")["images"]) == 2


def test_cli(tmp_path):
    spec = importlib.util.spec_from_file_location("prepare_synthetic", os.path.join(ROOT, "datasets", "prepare_synthetic.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "s"
    args = ["--output-dir", str(out), "--seed", "2", "--num-train", "2", "--num-val", "1", "--num-test", "1",
            "--num-all-levels", "3", "--no-progress"]  # fmt: skip
    assert script.main(args) == 0
    assert len(os.listdir(out / "images" / "train")) == 2 and len(os.listdir(out / "images" / "all_levels")) == 3
    assert json.loads((out / "generation.json").read_text())["counts"] == {"train": 2, "val": 1, "test": 1, "all_levels": 3}


def test_workers_do_not_deadlock_when_opencv_threads_run(tmp_path):
    """OpenCV's thread pool is not fork-safe: generating with workers after the parent used
    it must not hang (run in a subprocess with a time limit)."""
    code = (
        "import cv2, numpy as np, sys\n"
        "cv2.setNumThreads(2)\n"
        "cv2.GaussianBlur(np.zeros((800, 800, 3), np.uint8), (7, 7), 2)\n"
        "from pose2seg_d2.data.synthetic import generate_split\n"
        "generate_split(sys.argv[1], 'test', 12, progress=False, num_workers=2)\n"
        "assert cv2.getNumThreads() == 2\n"
        "print('done')\n"
    )
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0 and "done" in out.stdout, out.stderr[-2000:]
    assert len(os.listdir(tmp_path / "images" / "test")) == 12
