"""demo.py: images + keypoints in, one PNG per image out; clear errors."""
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from detectron2.modeling import build_model

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


@pytest.fixture
def logs(caplog):
    """caplog for the "pose2seg_d2" logger, also once Detectron2's setup_logger stopped its propagation."""
    logger = logging.getLogger("pose2seg_d2")
    logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.INFO)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)
        logger.setLevel(previous)


def demo_args(setup, inputs, output, keypoints=None):
    return ["--config-file", setup["config"], "--input", *inputs, "--output", str(output),
            "--keypoints", keypoints or setup["results"], "--opts", "MODEL.WEIGHTS", setup["weights"]]  # fmt: skip


def test_demo_writes_one_png_per_image(setup, tmp_path, logs):
    demo = load_demo()
    out = tmp_path / "out"
    inputs = [str(setup["images"] / "000123.png"), str(setup["images"] / "s*.png"), str(setup["images"] / "empty.png")]
    assert demo.main(demo_args(setup, inputs, out)) == 0
    assert sorted(os.listdir(out)) == ["000123.png", "empty.png", "street.png"]
    for stem, count in setup["counts"].items():
        drawn = cv2.imread(str(out / f"{stem}.png"))
        original = cv2.imread(str(setup["images"] / f"{stem}.png"))
        assert drawn.shape == original.shape
        assert np.abs(drawn.astype(int) - original).sum() > 0, "masks and skeletons must be drawn"
        assert f"{stem}.png: {count} persons" in logs.text
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
