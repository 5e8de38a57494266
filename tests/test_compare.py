import json
import os
import sys

import cv2
import pytest

from pose2seg_d2.evaluation.figures import PANEL_GAP, TITLE_HEIGHT

from .fixtures import register_tiny_person_dataset, write_templates

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(REPO, "tools"))
import compare  # noqa: E402


def test_compare_writes_table_json_grids_and_plot(tmp_path):
    root = tmp_path / "tiny"
    register_tiny_person_dataset("tiny_compare", str(root), num_images=4, size=(96, 128))
    templates = write_templates(str(tmp_path / "templates.json"))
    out = tmp_path / "out"
    opts = [
        "DATASETS.TRAIN", "('tiny_compare',)", "DATASETS.TEST", "('tiny_compare',)",
        "INPUT.MIN_SIZE_TRAIN", "(96,)", "INPUT.MAX_SIZE_TRAIN", "160",
        "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "160",
        "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.POSE2SEG.TEMPLATES_FILE", templates,
        "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0", "SOLVER.WARMUP_ITERS", "0",
        # an untrained keypoint model must still give persons, for the third row to be exercised
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "TEST.DETECTIONS_PER_IMAGE", "3",
        "MODEL.POSE2SEG.KEYPOINT_CONFIDENCE_THRESHOLD", "-1e9",
    ]  # fmt: skip
    runs = compare.main([
        "--pose2seg-config", os.path.join(REPO, "configs/synthetic/pose2seg_R_18_FPN_synthetic.yaml"),
        "--mask-rcnn-config", os.path.join(REPO, "configs/synthetic/mask_rcnn_R_18_FPN_synthetic.yaml"),
        "--dataset", "tiny_compare", "--output-dir", str(out), "--max-iter", "3",
        "--keypoint-config", os.path.join(REPO, "configs/synthetic/keypoint_rcnn_R_18_FPN_synthetic.yaml"),
        "--keypoint-max-iter", "2",
        "--timing-images", "2", "--num-figures", "2", "--opts", *opts,
    ])  # fmt: skip
    assert [(r.model, r.keypoints) for r in runs] == [("mask_rcnn", None), ("pose2seg", "gt"), ("pose2seg", "predicted")]
    # the third row: one Pose2Seg mask per person the trained keypoint model finds (every one of
    # its detections: score and keypoint thresholds are off; same input size)
    from detectron2.data import DatasetCatalog
    from detectron2.engine import DefaultPredictor

    from pose2seg_d2.config import load_config

    keypoint_cfg = load_config(str(out / "keypoint_model" / "config.yaml"))
    keypoint_cfg.MODEL.WEIGHTS = str(out / "keypoint_model" / "model_final.pth")
    predictor = DefaultPredictor(keypoint_cfg)
    records = DatasetCatalog.get("tiny_compare")[:2]
    persons = [len(predictor(cv2.imread(r["file_name"]))["instances"]) for r in records]
    assert [len(p) for p in runs[2].predictions] == persons
    assert all(0 <= n <= 3 for n in persons)

    results = json.loads((out / "results.json").read_text())
    assert results["dataset"] == "tiny_compare"
    assert [(r["model"], r["keypoints"]) for r in results["rows"]] == [
        ("mask_rcnn", None), ("pose2seg", "gt"), ("pose2seg", "predicted")]  # fmt: skip
    # the third row's train columns are the keypoint model's
    assert [r["train_iters"] for r in results["rows"]] == [3, 3, 2]
    for row in results["rows"]:
        assert row["train_seconds"] > 0 and row["ms_per_image"] > 0
        assert set(row["AP_by_max_iou"]) == {"0.00-0.50", "0.50-0.75", "0.75-1.00"}
        for key in ("AP", "AP50", "AP75"):
            assert row[key] is None or 0 <= row[key] <= 100
        assert row["config"]["backbone"].startswith("R-18-FPN") and row["config"]["iterations"] == 3
    table = (out / "results.md").read_text()
    assert "| mask_rcnn | - |" in table and "| pose2seg | gt |" in table and "| pose2seg | predicted |" in table
    assert "keypoint AP" in table

    for index in (0, 1):
        grid = cv2.imread(str(out / f"grid_{index:04d}.png"))
        assert grid is not None, "not a readable PNG"
        assert grid.shape == (96 + TITLE_HEIGHT, 5 * 128 + 4 * PANEL_GAP, 3)
    plot = cv2.imread(str(out / "ap_by_max_iou.png"))
    assert plot is not None and plot.shape == (400, 640, 3)


def test_compare_requires_its_arguments():
    with pytest.raises(SystemExit):
        compare.parse_args(["--dataset", "x"])
