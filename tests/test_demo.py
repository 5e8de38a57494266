"""demo.py: images + keypoints in, one PNG per image out; clear errors."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import Instances

from pose2seg_d2.pose import COCO_PERSON_KEYPOINT_NAMES, COCO_PERSON_LIMBS

from .fixtures import make_tiny_person_dataset, tiny_pose2seg_cfg, write_templates

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def load_demo():
    spec = importlib.util.spec_from_file_location("pose2seg_demo", os.path.join(REPO, "demo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Two images renamed to other stems, a results file for them, a config and weights."""
    root = tmp_path_factory.mktemp("demo")
    make_tiny_person_dataset(str(root / "data"), num_images=3)
    with open(root / "data" / "annotations.json") as f:
        data = json.load(f)
    images = root / "images"
    images.mkdir()
    shutil.copy(root / "data" / "images" / "000001.png", images / "000123.png")  # image_id 123 by stem
    shutil.copy(root / "data" / "images" / "000002.png", images / "street.png")  # image_id "street"
    shutil.copy(root / "data" / "images" / "000003.png", images / "empty.png")  # no entries
    entries = []
    for ann in data["annotations"]:
        key = {1: 123, 2: "street"}.get(ann["image_id"])
        if key is not None:
            entries.append({"image_id": key, "category_id": 1, "keypoints": ann["keypoints"], "score": 0.9})
    results = root / "results.json"
    results.write_text(json.dumps(entries))
    cfg = tiny_pose2seg_cfg(str(root / "out"), "unused", "unused", write_templates(str(root / "templates.json")))
    cfg.DATASETS.TEST = ()
    config = root / "pose2seg.yaml"
    config.write_text(cfg.dump())
    torch.manual_seed(0)
    weights = root / "pose2seg.pth"
    torch.save({"model": build_model(cfg).state_dict()}, weights)
    counts = {stem: sum(e["image_id"] == key for e in entries) for stem, key in (("000123", 123), ("street", "street"))}
    return {"root": root, "images": images, "results": str(results), "config": str(config), "weights": str(weights), "counts": counts}


def demo_args(setup, inputs, output, keypoints=None):
    return ["--config-file", setup["config"], "--input", *inputs, "--output", str(output),
            "--keypoints", keypoints or setup["results"], "--opts", "MODEL.WEIGHTS", setup["weights"]]  # fmt: skip


def draw_seeded(draw, image, instances, score_threshold):
    """``draw`` with numpy's global generator seeded: Detectron2's Visualizer picks each
    instance's color from it, so that drawings of the same instances can be compared."""
    np.random.seed(0)
    return draw(image, instances, score_threshold)


def without(instances, field):
    return Instances(instances.image_size, **{k: v for k, v in instances.get_fields().items() if k != field})


def changed(a, b, tolerance=8):
    """(H, W) bool: the pixels where two BGR images differ by more than ``tolerance``."""
    return np.abs(a.astype(int) - b.astype(int)).max(axis=2) > tolerance


def skeleton_zone(entries, shape, margin=4):
    """(H, W) bool: within ``margin`` pixels of the entries' limbs (both ends labeled, plus
    the nose, mid-shoulder, mid-hip lines the Visualizer adds) and of their keypoints."""
    zone = np.zeros(shape, np.uint8)
    index = {name: i for i, name in enumerate(COCO_PERSON_KEYPOINT_NAMES)}
    for entry in entries:
        kpts = np.asarray(entry["keypoints"], np.float64).reshape(17, 3)
        labeled = kpts[:, 2] > 0
        points = {i: kpts[i, :2] for i in range(17) if labeled[i]}
        pairs = [(points[a], points[b]) for a, b in COCO_PERSON_LIMBS if a in points and b in points]
        pair = lambda a, b: (points[index[a]] + points[index[b]]) / 2 if index[a] in points and index[b] in points else None  # noqa: E731
        shoulders, hips = pair("left_shoulder", "right_shoulder"), pair("left_hip", "right_hip")
        if shoulders is not None and index["nose"] in points:
            pairs.append((points[index["nose"]], shoulders))
        if shoulders is not None and hips is not None:
            pairs.append((shoulders, hips))
        for a, b in pairs:
            cv2.line(zone, tuple(int(round(v)) for v in a), tuple(int(round(v)) for v in b), 1, 2 * margin + 1)
        for xy in points.values():
            cv2.circle(zone, tuple(int(round(v)) for v in xy), 3 + margin, 1, -1)
    return zone.astype(bool)


def limb_midpoints(entries):
    """(x, y) pixel of the middle of each limb with both ends labeled and at least 8 pixels long."""
    out = []
    for entry in entries:
        kpts = np.asarray(entry["keypoints"], np.float64).reshape(17, 3)
        for a, b in COCO_PERSON_LIMBS:
            if kpts[a, 2] > 0 and kpts[b, 2] > 0 and np.linalg.norm(kpts[a, :2] - kpts[b, :2]) >= 8:
                out.append(tuple(int(v) for v in (kpts[a, :2] + kpts[b, :2]) / 2))
    return out


def assert_masks_drawn_in_their_colors(drawn, no_masks, masks, skeleton):
    """Inside each mask (away from the others, its edge and the skeletons) the pixels are
    blended 1:1 with one color; nothing changes more than 3 pixels outside every mask."""
    footprint = cv2.dilate(masks.any(0).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    leaked = changed(drawn, no_masks) & ~footprint
    assert leaked.mean() < 0.002, f"{leaked.sum()} pixels changed far outside the masks"
    for i, mask in enumerate(masks):
        others = masks[np.arange(len(masks)) != i].any(0)
        inside = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~others & ~skeleton
        assert inside.sum() >= 100, f"mask {i}: too small a test region ({inside.sum()} pixels)"
        assert changed(drawn, no_masks)[inside].mean() > 0.9, f"mask {i} is not drawn"
        # drawn = (under + color) / 2: every pixel of the mask gives back the same color
        colors = 2 * drawn[inside].astype(int) - no_masks[inside].astype(int)
        color = np.median(colors, axis=0)
        same = (np.abs(colors - color).max(axis=1) <= 16).mean()
        assert same > 0.6, f"mask {i}: {same:.0%} of its pixels in its color {color}"


def test_demo_writes_one_png_per_image(setup, tmp_path, logs, monkeypatch):
    demo = load_demo()
    draw, drawings = demo.draw, {}

    def recording_draw(image, instances, score_threshold):
        drawings[len(drawings)] = (image, instances, score_threshold)
        return draw_seeded(draw, image, instances, score_threshold)

    monkeypatch.setattr(demo, "draw", recording_draw)
    out = tmp_path / "out"
    inputs = [str(setup["images"] / "000123.png"), str(setup["images"] / "s*.png"), str(setup["images"] / "empty.png")]
    assert demo.main(demo_args(setup, inputs, out)) == 0
    assert sorted(os.listdir(out)) == ["000123.png", "empty.png", "street.png"]
    entries = json.loads(open(setup["results"]).read())
    for k, (stem, count) in enumerate(setup["counts"].items()):
        drawn = cv2.imread(str(out / f"{stem}.png"))
        original = cv2.imread(str(setup["images"] / f"{stem}.png"))
        assert drawn.shape == original.shape
        assert np.abs(drawn.astype(int) - original).sum() > 0, "masks and skeletons must be drawn"
        assert f"{stem}.png: {count} persons" in logs.text

        image, instances, threshold = drawings[k]
        assert np.array_equal(image, original) and len(instances) == count
        assert np.array_equal(drawn, draw_seeded(draw, image, instances, threshold))  # what was written
        masks = instances.pred_masks.numpy()
        assert masks.shape[1:] == original.shape[:2] and masks.sum((1, 2)).min() > 0
        key = {"000123": 123, "street": "street"}[stem]
        persons = [e for e in entries if e["image_id"] == key]
        skeleton = skeleton_zone(persons, original.shape[:2])
        assert_masks_drawn_in_their_colors(drawn, draw_seeded(draw, image, without(instances, "pred_masks"), threshold), masks, skeleton)
        # the skeletons: every pixel they change is on a limb line or a keypoint, and the limbs
        # are drawn (but where a label, drawn on top, hides them)
        no_skeletons = draw_seeded(draw, image, without(instances, "pred_keypoints"), threshold)
        off_limbs = changed(drawn, no_skeletons) & ~skeleton
        assert not off_limbs.any(), f"{off_limbs.sum()} skeleton pixels off the limb lines"
        midpoints = limb_midpoints(persons)
        on_limbs = [changed(drawn, no_skeletons)[y, x] for x, y in midpoints]
        assert len(midpoints) >= 8 and np.mean(on_limbs) >= 0.75, f"limbs drawn at {on_limbs}"
    # the image without entries: said so, and written unchanged (no masks)
    assert "empty.png" in logs.text and "no entries" in logs.text
    assert "empty.png: 0 persons" in logs.text


def test_demo_takes_a_folder(setup, tmp_path):
    demo = load_demo()
    assert demo.expand_inputs([str(setup["images"])]) == sorted(str(p) for p in setup["images"].iterdir())
    with pytest.raises(demo.DemoError, match="no file matches"):
        demo.expand_inputs([str(setup["images"] / "*.jpg")])


def test_demo_missing_file_exits_nonzero_naming_it(setup, tmp_path):
    missing = str(setup["images"] / "nope.jpg")
    run = subprocess.run(
        [sys.executable, os.path.join(REPO, "demo.py"), *demo_args(setup, [str(setup["images"] / "street.png"), missing], tmp_path / "o")],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert run.returncode != 0
    assert missing in run.stderr and "no such file" in run.stderr
    assert not (tmp_path / "o").exists() or not os.listdir(tmp_path / "o")


def test_demo_bad_keypoints_file_names_file_and_entry(setup, tmp_path, capsys):
    demo = load_demo()
    bad = tmp_path / "bad.json"
    good = {"image_id": 123, "category_id": 1, "keypoints": [1.0] * 51, "score": 1.0}
    bad.write_text(json.dumps([good, dict(good, keypoints=[1.0] * 34)]))
    assert demo.main(demo_args(setup, [str(setup["images"] / "000123.png")], tmp_path / "o", str(bad))) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "entry 1" in err and "'keypoints'" in err and "got 34 values" in err


def test_demo_unreadable_image_is_reported_and_the_others_written(setup, tmp_path, logs):
    demo = load_demo()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    status = demo.main(demo_args(setup, [str(broken), str(setup["images"] / "street.png")], tmp_path / "o"))
    assert status == 1 and f"{broken}: cannot read the image" in logs.text
    assert os.listdir(tmp_path / "o") == ["street.png"]
