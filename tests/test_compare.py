import json
import math
import os
import sys
import time

import cv2
import numpy as np
import pytest
import torch

from pose2seg_d2.comparison import PANEL_GAP, TITLE_HEIGHT
from pose2seg_d2.data.coco_format import decode_segmentation

from .fixtures import register_tiny_person_dataset, write_templates

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(REPO, "tools"))
import compare  # noqa: E402


def test_compare_writes_tables_json_grids_and_plots_for_every_test_set(tmp_path):
    root = tmp_path / "tiny"
    register_tiny_person_dataset("tiny_compare", str(root), num_images=4, size=(96, 128))
    register_tiny_person_dataset("tiny_compare_b", str(tmp_path / "tiny_b"), num_images=3, size=(96, 128), seed=5)
    templates = write_templates(str(tmp_path / "templates.json"))
    out = tmp_path / "out"
    opts = [
        "DATASETS.TRAIN", "('tiny_compare',)", "DATASETS.TEST", "('tiny_compare',)",
        "INPUT.MIN_SIZE_TRAIN", "(96,)", "INPUT.MAX_SIZE_TRAIN", "160",
        "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "160",
        "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.POSE2SEG.TEMPLATES_FILE", templates,
        "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0", "SOLVER.WARMUP_ITERS", "0",
        # random weights: the packaged backbone has another FPN width
        "MODEL.WEIGHTS", "", "MODEL.BACKBONE.FREEZE_AT", "0", "MODEL.BACKBONE.FROZEN_AUTOCAST", "",
        # GroupNorm: random weights under BatchNorm's initial statistics give features in the
        # thousands, and Mask R-CNN's boxes collapse to nothing; every row must predict masks
        "MODEL.RESNETS.NORM", "GN", "MODEL.FPN.NORM", "GN",
        # an untrained keypoint model must still give persons, for the images-alone row to be exercised
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "TEST.DETECTIONS_PER_IMAGE", "3",
        "MODEL.POSE2SEG.KEYPOINT_CONFIDENCE_THRESHOLD", "-1e9",
    ]  # fmt: skip
    runs = compare.main([
        "--pose2seg-config", os.path.join(REPO, "configs/synthetic/pose2seg_R_18_FPN_synthetic.yaml"),
        "--mask-rcnn-config", os.path.join(REPO, "configs/synthetic/mask_rcnn_R_18_FPN_synthetic.yaml"),
        "--datasets", "tiny_compare", "tiny_compare_b", "--output-dir", str(out), "--max-iter", "3",
        "--keypoint-config", os.path.join(REPO, "configs/synthetic/keypoint_rcnn_R_18_FPN_synthetic.yaml"),
        "--keypoint-max-iter", "2",
        "--keypoints-only-config", os.path.join(REPO, "configs/synthetic/keypoints_only_synthetic.yaml"),
        "--fit-dataset", "tiny_compare", "--seed", "5",
        "--num-figures", "2", "--started-at", str(time.time() - 5.0), "--expected-seconds", "mask_rcnn=10",
        "--opts", *opts,
    ])  # fmt: skip
    kinds = [("mask_rcnn", None), ("pose2seg", "gt"), ("pose2seg", "predicted"), ("keypoints_only", "gt")]
    assert [(r.dataset, r.model, r.keypoints) for r in runs] == [(d, *k) for d in ("tiny_compare", "tiny_compare_b") for k in kinds]
    # the images-alone row: one Pose2Seg mask per person the trained keypoint model finds (every one of
    # its detections: score and keypoint thresholds are off; same input size)
    from detectron2.data import DatasetCatalog
    from detectron2.engine import DefaultPredictor

    from pose2seg_d2.config import load_config
    from pose2seg_d2.modeling import figure_masks

    keypoint_cfg = load_config(str(out / "keypoint_model" / "config.yaml"))
    assert keypoint_cfg.SEED == 5
    keypoint_cfg.MODEL.WEIGHTS = str(out / "keypoint_model" / "model_final.pth")
    predictor = DefaultPredictor(keypoint_cfg)
    records = DatasetCatalog.get("tiny_compare")[:2]
    persons = [len(predictor(cv2.imread(r["file_name"]))["instances"]) for r in records]
    assert [len(p) for p in runs[2].predictions] == persons
    assert all(0 <= n <= 3 for n in persons) and sum(persons) > 0  # the row has masks to compare

    results = json.loads((out / "results.json").read_text())
    assert results["dataset"] == "tiny_compare" and results["datasets"] == ["tiny_compare", "tiny_compare_b"]
    # the wall time: the set-up before the process (5 s here) and every phase, in the order run
    wall = results["wall_time"]
    assert list(wall["phases"]) == [
        "setup", "data", "mask_rcnn", "pose2seg", "keypoint_model", "keypoints_only",
        "evaluate_tiny_compare", "evaluate_tiny_compare_b",
    ]  # fmt: skip
    assert wall["phases"]["setup"] >= 5.0 and wall["total_seconds"] >= sum(wall["phases"].values()) - 0.5
    assert [(r["dataset"], r["model"], r["keypoints"]) for r in results["rows"]] == [
        (d, *k) for d in ("tiny_compare", "tiny_compare_b") for k in kinds]  # fmt: skip
    # the images-alone row's train columns are the keypoint model's; the reference learns nothing
    assert [r["train_iters"] for r in results["rows"][:4]] == [3, 3, 2, 0]
    for row in results["rows"]:
        assert row["ms_per_image"] > 0 and (row["train_seconds"] > 0) == (row["model"] != "keypoints_only")
        assert set(row["AP_by_max_iou"]) == {"0.00-0.50", "0.50-0.75", "0.75-1.00"}
        for key in ("AP", "AP50", "AP75"):  # every row predicts masks on test sets with persons
            assert row[key] is not None and math.isfinite(row[key]) and 0 <= row[key] <= 100, (row["label"], key)
        assert any(v is not None and 0 <= v <= 100 for v in row["AP_by_max_iou"].values())
        if row["model"] != "keypoints_only":
            assert row["config"]["backbone"].startswith("R-18-FPN") and row["config"]["iterations"] == 3
            assert row["config"]["init"] == "random"
    # the reference's widths were chosen on the fit set, and its masks are the figures they draw
    fit = results["keypoints_only_fit"]
    assert fit["dataset"] == "tiny_compare" and 0 <= fit["AP"] <= 100
    widths = (fit["ARM_WIDTH"], fit["LEG_WIDTH"], fit["HEAD_RADIUS"])
    assert f"arm {widths[0]:g}, leg/torso {widths[1]:g}, head {widths[2]:g}" in results["rows"][3]["config"]["head"]
    record = DatasetCatalog.get("tiny_compare")[0]
    gt = torch.tensor([a["keypoints"] for a in record["annotations"]], dtype=torch.float32).reshape(-1, 17, 3)
    drawn = figure_masks(gt, (record["height"], record["width"]), *widths)
    predicted = runs[3].predictions[0].pred_masks
    assert predicted.shape == drawn.shape and (predicted == drawn).float().mean() > 0.99  # the 96 -> 96 px input
    assert set(results["keypoint_models"]["Keypoint R-CNN"]["keypoint_AP"]) == {"tiny_compare", "tiny_compare_b"}
    assert all(ap is not None and 0 <= ap <= 100 for ap in results["keypoint_models"]["Keypoint R-CNN"]["keypoint_AP"].values())
    table = (out / "results.md").read_text()
    assert "## `tiny_compare`" in table and "## `tiny_compare_b`" in table
    assert "| Mask R-CNN | - |" in table and "| Pose2Seg | gt |" in table
    assert "| Pose2Seg (images alone) | predicted |" in table and "| Keypoints only | gt |" in table
    assert "keypoint AP" in table and "widths chosen on `tiny_compare`" in table

    for dataset in ("tiny_compare", "tiny_compare_b"):
        dataset_runs = [r for r in runs if r.dataset == dataset]
        for index in (0, 1):
            grid = cv2.imread(str(out / f"grid_{dataset}_{index:04d}.png"))
            assert grid is not None, "not a readable PNG"
            assert grid.shape == (96 + TITLE_HEIGHT, 6 * 128 + 5 * PANEL_GAP, 3)
            # input | ground truth | one panel per row, each drawing its masks scoring >= 0.5 only
            record = DatasetCatalog.get(dataset)[index]
            image = cv2.imread(record["file_name"])
            assert np.array_equal(_panel(grid, 0, 128), image)
            gt_masks = [decode_segmentation(a["segmentation"], 96, 128) for a in record["annotations"]]
            _assert_draws_exactly(_panel(grid, 1, 128), image, gt_masks)
            for i, run in enumerate(dataset_runs):
                instances = run.predictions[index]
                shown = instances.pred_masks[instances.scores >= compare.FIGURE_SCORE_THRESHOLD].numpy()
                _assert_draws_exactly(_panel(grid, 2 + i, 128), image, shown)
        plot = cv2.imread(str(out / f"ap_by_max_iou_{dataset}.png"))
        assert plot is not None and plot.shape == (400, 640, 3)


def _panel(grid, i, width):
    """The i-th panel of a grid (below its title strip)."""
    x = i * (width + PANEL_GAP)
    return grid[TITLE_HEIGHT:, x : x + width]


def _assert_draws_exactly(panel, image, masks):
    """``panel`` is ``image`` with ``masks`` drawn: it differs on (nearly) every mask pixel, and
    nowhere farther than the drawn outlines (3 px) from a mask."""
    union = np.zeros(image.shape[:2], bool)
    for m in masks:
        union |= np.asarray(m, bool)
    near = cv2.dilate(union.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    changed = (panel != image).any(axis=2)
    assert not (changed & ~near).any(), "pixels changed away from every drawn mask"
    if union.any():
        assert changed[union].mean() > 0.9, "the masks are not drawn"


def test_compare_requires_its_arguments():
    with pytest.raises(SystemExit):
        compare.parse_args(["--dataset", "x"])
    assert compare._expected_seconds(["data=21", "mask_rcnn=530.5"]) == {"data": 21.0, "mask_rcnn": 530.5}
    for wrong in ("data", "data=soon", "=3"):
        with pytest.raises(SystemExit, match="is not PHASE=SECONDS"):
            compare._expected_seconds([wrong])
