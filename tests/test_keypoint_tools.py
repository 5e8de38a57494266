"""tools/predict_keypoints.py (a keypoint model's results file) and tools/keypoint_robustness.py (the table)."""
import importlib.util
import json
import os

import cv2
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.engine import DefaultPredictor
from detectron2.evaluation import inference_on_dataset
from detectron2.modeling import build_model

from pose2seg_d2.config import load_config
from pose2seg_d2.data.train_keypoints import train_dicts_with_predicted_keypoints
from pose2seg_d2.engine import Pose2SegTrainer
from pose2seg_d2.evaluation import OcclusionBucketEvaluator
from pose2seg_d2.evaluation.keypoint_robustness import (
    ROBUSTNESS_ROWS,
    evaluate_robustness,
    perturbed_persons,
    robustness_table,
)
from pose2seg_d2.modeling import load_keypoint_results

from .fixtures import register_tiny_person_dataset, tiny_pose2seg_cfg, write_templates
from .test_keypoint_sources import write_tiny_keypoint_rcnn_config

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_kpt_tools")
    name = register_tiny_person_dataset("tiny_keypoint_tools", str(root / "data"), num_images=3)
    return {"root": root, "dataset": name, "templates": write_templates(str(root / "templates.json"))}


# ---------------------------------------------------------------------------- predict_keypoints
def test_predict_keypoints_writes_the_models_keypoints_as_coco_results(tiny, tmp_path):
    config = write_tiny_keypoint_rcnn_config(tmp_path / "kp.yaml", 96)
    torch.manual_seed(0)
    model = build_model(load_config(config)).eval()
    weights = str(tmp_path / "kp.pth")
    torch.save({"model": model.state_dict()}, weights)
    output = str(tmp_path / "results" / "train_keypoints.json")

    tool = load_tool("predict_keypoints")
    assert tool.main(["--config-file", config, "--dataset", tiny["dataset"], "--output", output, "--opts", "MODEL.WEIGHTS", weights]) == 0

    with open(output) as f:
        entries = json.load(f)
    records = DatasetCatalog.get(tiny["dataset"])
    # every detection (score threshold 0, 4 an image) of every image, as persons
    assert len(entries) == 4 * len(records)
    assert {e["image_id"] for e in entries} == {r["image_id"] for r in records}
    assert all(e["category_id"] == 1 and len(e["keypoints"]) == 51 for e in entries)
    # the same keypoints as Detectron2's predictor gives, in COCO's pixel indices (- 0.5)
    cfg = load_config(config, ["MODEL.WEIGHTS", weights])
    image = cv2.imread(records[0]["file_name"])
    with torch.no_grad():
        expected = DefaultPredictor(cfg)(image)["instances"]
    got = [e for e in entries if e["image_id"] == records[0]["image_id"]]
    got_kpt = np.array([e["keypoints"] for e in got]).reshape(-1, 17, 3)
    want = expected.pred_keypoints.numpy().astype(np.float64)
    want[..., :2] -= 0.5
    order = np.argsort([-e["score"] for e in got], kind="stable")
    np.testing.assert_allclose(got_kpt[order], want[np.argsort(-expected.scores.numpy(), kind="stable")], atol=2e-3)
    np.testing.assert_allclose(sorted(e["score"] for e in got), sorted(expected.scores.tolist()), atol=1e-5)
    # and it is a file the json source and TRAIN_KEYPOINTS_FILE read: its images are the split's
    results, skipped = load_keypoint_results(output)
    assert skipped == 0 and len(results) == len(records)
    pose2seg_cfg = tiny_pose2seg_cfg(str(tmp_path / "out"), tiny["dataset"], tiny["dataset"], tiny["templates"])
    pose2seg_cfg.merge_from_list(["MODEL.POSE2SEG.TRAIN_KEYPOINTS_FILE", output])
    assert len(train_dicts_with_predicted_keypoints(pose2seg_cfg)) == len(records)


def test_predict_keypoints_refuses_a_model_without_keypoints(tiny):
    from detectron2.structures import Instances

    tool = load_tool("predict_keypoints")
    with pytest.raises(ValueError, match="no pred_keypoints"):
        tool.results_entries([{"image_id": 1, "file_name": "a.png"}], [{"instances": Instances((4, 4))}])


# ---------------------------------------------------------------------------- keypoint_robustness
class SkeletonHead(torch.nn.Module):
    """Logits from the window's skeleton channels alone (part maps and limb fields above 0.8):
    masks drawn along the given skeletons, which overlap the tiny data's stick figures, so
    that the AP depends on the keypoints without any training."""

    def __init__(self, feature_channels):
        super().__init__()
        self.feature_channels = feature_channels

    def forward(self, x):
        skeleton = x[:, self.feature_channels :]
        parts = skeleton[:, :17].amax(1)
        limbs = (skeleton[:, 17:].unflatten(1, (19, 2)) ** 2).sum(2).amax(1)
        return (20.0 * (torch.maximum(parts, limbs) - 0.8))[:, None]


@pytest.fixture(scope="module")
def skeleton_model(tiny):
    cfg = tiny_pose2seg_cfg(str(tiny["root"] / "out"), tiny["dataset"], tiny["dataset"], tiny["templates"])
    cfg.merge_from_list(["MODEL.POSE2SEG.KEYPOINT_CONFIDENCE_THRESHOLD", 0.0])  # like the synthetic config's
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    channels = model.backbone.output_shape()["p2"].channels
    model.head = SkeletonHead(channels)
    # the head reads no features: skip computing them
    model.backbone.forward = lambda x: {"p2": x.new_zeros(x.shape[0], channels, x.shape[-2] // 4, x.shape[-1] // 4)}
    return model, cfg


def test_robustness_rows_follow_their_keypoints(tiny, skeleton_model, tmp_path):
    model, cfg = skeleton_model
    results = evaluate_robustness(model, cfg, tiny["dataset"], str(tmp_path), ROBUSTNESS_ROWS, seed=3)
    by_name = {r["name"]: r for r in results}
    assert [r["name"] for r in results] == [r.name for r in ROBUSTNESS_ROWS]
    assert model.keypoint_source.__class__.__name__ == "GTKeypointSource"  # restored

    # the gt row is what a plain evaluation with the gt source gives
    evaluator = OcclusionBucketEvaluator(tiny["dataset"], distributed=False, output_dir=str(tmp_path / "plain"))
    plain = inference_on_dataset(model, Pose2SegTrainer.build_test_loader(cfg, tiny["dataset"]), evaluator)
    assert by_name["gt"]["AP"] == pytest.approx(plain["segm"]["AP"], abs=1e-9)
    assert by_name["gt"]["AP"] > 20  # the skeleton masks overlap the persons
    # the same skeletons through json (the pixel-index round trip) give the same masks
    assert by_name["json"]["persons_left_out"] == 0
    assert by_name["json"]["AP"] == pytest.approx(by_name["gt_v2"]["AP"], abs=1e-6)
    # noise of 2 sigma with 20 % of the joints dropped moves the windows: the AP changes
    assert by_name["noise_2_drop_0.2"]["AP"] != pytest.approx(by_name["json_scores"]["AP"], abs=1e-3)

    # what the json rows wrote: scores in [0.5, 1], noise and drops as asked
    def written(name):
        with open(tmp_path / name / "keypoints_results.json") as f:
            return json.load(f)

    plain_entries, noisy_entries = written("json_scores"), written("noise_1_drop_0.1")
    scores = np.array([e["score"] for e in plain_entries])
    assert (scores >= 0.5).all() and (scores <= 1.0).all() and scores.std() > 0
    assert [e["score"] for e in noisy_entries] == [e["score"] for e in plain_entries]  # the same draws
    assert {e["score"] for e in written("json")} == {1.0}
    a = np.array([e["keypoints"] for e in plain_entries]).reshape(-1, 17, 3)
    b = np.array([e["keypoints"] for e in noisy_entries]).reshape(-1, 17, 3)
    assert set(np.unique(a[..., 2])) <= {0.0, 1.0} and set(np.unique(b[..., 2])) <= {0.0, 1.0}
    kept = (a[..., 2] > 0) & (b[..., 2] > 0)
    assert (b[..., 2] < a[..., 2]).any() and not (b[..., 2] > a[..., 2]).any()  # drops only
    assert (np.abs(b[kept, :2] - a[kept, :2]) > 0).all()  # every kept joint moved

    table = robustness_table(results)
    assert table.count("\n") == len(ROBUSTNESS_ROWS) + 1 and "| ... 2 x sigma, 20 % dropped |" in table


def test_robustness_draws_are_fixed_by_the_seed(tiny):
    records = DatasetCatalog.get(tiny["dataset"])
    row = ROBUSTNESS_ROWS[-1]
    one, two, other = (perturbed_persons(records, row, s) for s in (1, 1, 2))
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])
    assert not torch.equal(one[0], other[0])
    # the gt_v2 row: v = 1 -> 2, positions untouched
    gt, _, _ = perturbed_persons(records, ROBUSTNESS_ROWS[0], 0)
    v2, _, _ = perturbed_persons(records, ROBUSTNESS_ROWS[1], 0)
    assert (gt[..., 2] == 1).any() and torch.equal(v2[..., 2], torch.where(gt[..., 2] > 0, 2.0, 0.0).double())
    assert torch.equal(v2[..., :2], gt[..., :2])


def test_robustness_tool_writes_markdown_and_json(tiny, skeleton_model, tmp_path):
    model, cfg = skeleton_model
    weights = str(tmp_path / "model.pth")
    torch.save({"model": build_model(cfg).state_dict()}, weights)
    config = str(tmp_path / "config.yaml")
    with open(config, "w") as f:
        f.write(cfg.dump())
    tool = load_tool("keypoint_robustness")
    out_dir = tmp_path / "table"
    results = tool.main([
        "--config-file", config, "--dataset", tiny["dataset"], "--output-dir", str(out_dir), "--seed", "1",
        "--rows", "gt", "noise_1", "--opts", "MODEL.WEIGHTS", weights,
    ])  # fmt: skip
    assert [r["name"] for r in results] == ["gt", "noise_1"]
    with open(out_dir / "robustness.json") as f:
        payload = json.load(f)
    assert payload["dataset"] == tiny["dataset"] and payload["seed"] == 1 and len(payload["rows"]) == 2
    assert payload["rows"][1]["sigma_scale"] == 1.0 and payload["rows"][1]["source"] == "json"
    markdown = (out_dir / "robustness.md").read_text()
    assert "| keypoints given | AP |" in markdown and "... 1 x sigma" in markdown and "seed 1" in markdown
