"""Backbone pretraining without instances: targets, mapper, training and the exported file."""
import json
import os
import subprocess
import sys

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from detectron2.data import DatasetCatalog

from pose2seg_d2.assets_path import package_asset_path
from pose2seg_d2.config import load_config
from pose2seg_d2.data.dataset_mapper import DensePretrainingMapper
from pose2seg_d2.modeling.dense_pretraining import keypoint_heatmaps, person_targets

from .fixtures import register_tiny_person_dataset

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CONFIG = os.path.join(REPO, "configs/synthetic/pretrain_R_18_FPN_synthetic.yaml")


def tiny_opts(dataset, output_dir):
    return [
        "MODEL.DEVICE", "cpu", "DATASETS.TRAIN", f"('{dataset}',)", "DATALOADER.NUM_WORKERS", "0",
        "SOLVER.IMS_PER_BATCH", "4", "SOLVER.WARMUP_ITERS", "0", "SOLVER.BASE_LR", "0.002",
        "INPUT.MIN_SIZE_TRAIN", "(0,)", "OUTPUT_DIR", output_dir, "SEED", "3",  # images at their own size
    ]  # fmt: skip


def test_person_targets_are_block_averages():
    union = torch.zeros(1, 8, 12)
    union[0, 2:6, 4:8] = 1
    t = person_targets(union, 4)
    assert t.shape == (1, 2, 3)
    torch.testing.assert_close(t[0], torch.tensor([[0.0, 0.5, 0.0], [0.0, 0.5, 0.0]]))
    # a size that is not a multiple of the stride: the last block is clipped to the input
    t = person_targets(torch.ones(1, 10, 10), 4)
    assert t.shape == (1, 3, 3) and torch.allclose(t, torch.ones_like(t))


def test_keypoint_heatmaps_peak_at_each_labeled_keypoint_and_merge_persons():
    kp = torch.zeros(3, 17, 3)
    kp[0, 0] = torch.tensor([10.0, 6.0, 2])  # feature pixel (2, 1) at stride 4: (10 / 4 - 0.5, 6 / 4 - 0.5)
    kp[1, 0] = torch.tensor([26.0, 22.0, 1])  # labeled, not visible: still a target
    kp[2, 5] = torch.tensor([14.0, 14.0, 2])  # the second image
    heat = keypoint_heatmaps(kp, torch.tensor([0, 0, 1]), 2, (8, 8), 4, 1.0)
    assert heat.shape == (2, 17, 8, 8)
    assert heat[0, 0, 1, 2] == pytest.approx(1.0) and heat[0, 0, 5, 6] == pytest.approx(1.0)
    assert heat[0, 0, 3, 4] == pytest.approx(float(np.exp(-8 / 2)), rel=1e-5)  # d^2 = 8 from both
    assert heat[1, 5, 3, 3] == pytest.approx(1.0) and heat[1, 0].max() == 0 and heat[0, 5].max() == 0
    assert heat[:, 1:5].max() == 0 and heat[:, 6:].max() == 0


def test_mapper_gives_the_union_of_masks_and_the_keypoints(tmp_path):
    name = register_tiny_person_dataset("tiny_dense_pretraining", str(tmp_path / "tiny"), num_images=3, size=(64, 80))
    cfg = load_config(CONFIG, tiny_opts(name, str(tmp_path / "out")) + ["INPUT.RANDOM_FLIP", "none"])
    record = DatasetCatalog.get(name)[0]
    out = DensePretrainingMapper(cfg, True)(record)
    union = np.zeros((64, 80), bool)
    for ann in record["annotations"]:
        union |= mask_util.decode(ann["segmentation"]).astype(bool)
    assert out["image"].shape == (3, 64, 80) and out["image"].dtype == torch.uint8
    assert np.array_equal(out["person_mask"].numpy().astype(bool), union)
    expected = np.array([a["keypoints"] for a in record["annotations"]], dtype=np.float32).reshape(-1, 17, 3)
    expected[expected[..., 2] == 0] = 0
    np.testing.assert_allclose(out["keypoints"].numpy(), expected, atol=1e-5)
    # flipped: the mask mirrors and left/right keypoints swap
    cfg = load_config(CONFIG, tiny_opts(name, str(tmp_path / "out")))
    mapper = DensePretrainingMapper(cfg, True)
    for _ in range(20):  # the flip is random (p = 0.5)
        flipped = mapper(record)
        if not torch.equal(flipped["person_mask"], out["person_mask"]):
            break
    assert np.array_equal(flipped["person_mask"].numpy().astype(bool), union[:, ::-1])
    left, right = 5, 6  # shoulders
    labeled = expected[:, left, 2] > 0
    np.testing.assert_allclose(flipped["keypoints"][labeled, right, 0].numpy(), 80 - expected[labeled, left, 0], atol=1e-4)


def test_pretraining_learns_and_exports_a_backbone_that_the_models_load(tmp_path):
    name = register_tiny_person_dataset("tiny_dense_pretraining2", str(tmp_path / "tiny"), num_images=6, size=(64, 80))
    from detectron2.engine import hooks  # noqa: F401

    from pose2seg_d2.engine import Pose2SegTrainer

    opts = tiny_opts(name, str(tmp_path / "pre")) + ["SOLVER.MAX_ITER", "40", "SOLVER.CHECKPOINT_PERIOD", "1000"]
    cfg = load_config(CONFIG, opts)
    trainer = Pose2SegTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    person = trainer.storage.history("loss_person").values()
    first, last = np.mean([v for v, _ in person[:5]]), np.mean([v for v, _ in person[-5:]])
    assert last < 0.7 * first, (first, last)

    # the tool exports backbone.* only, in float16, with its sha256 and a record of the run
    sys.path.insert(0, os.path.join(REPO, "tools"))
    import pretrain_backbone

    output = tmp_path / "backbone.pth"
    record = pretrain_backbone.main(["--export-only", "--output", str(output), "--eval-dataset", "", *opts])
    saved = torch.load(output)["model"]
    state = trainer.model.state_dict()
    assert set(saved) == {k for k in state if k.startswith("backbone.")}
    for key, value in saved.items():
        if value.is_floating_point():
            assert value.dtype == torch.float16
            torch.testing.assert_close(value.float(), state[key].float(), atol=1e-3, rtol=1e-3)
    assert record["sha256"] == pretrain_backbone.sha256(output) and record["iterations"] == 40
    assert json.loads((tmp_path / "backbone.json").read_text())["sha256"] == record["sha256"]

    # Mask R-CNN starts from it: its backbone equals the file's, its heads are not in it
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    mcfg = load_config(os.path.join(REPO, "configs/synthetic/mask_rcnn_R_18_FPN_synthetic.yaml"), ["MODEL.DEVICE", "cpu"])
    model = build_model(mcfg)
    DetectionCheckpointer(model).load(str(output))
    torch.testing.assert_close(
        model.backbone.bottom_up.stem.conv1.weight, saved["backbone.bottom_up.stem.conv1.weight"].float()
    )


def test_package_asset_paths_resolve_or_name_what_makes_them():
    from detectron2.utils.file_io import PathManager

    assert PathManager.get_local_path("pose2seg_d2://templates_synthetic.json") == package_asset_path("templates_synthetic.json")
    with pytest.raises(FileNotFoundError, match="no such file in the package"):
        PathManager.get_local_path("pose2seg_d2://backbones/missing.pth")
    with pytest.raises(PermissionError):
        PathManager.open("pose2seg_d2://templates_synthetic.json", "w")


def test_shipped_backbone_matches_its_record():
    """The committed weights are the ones their JSON record describes (sha256, size)."""
    sys.path.insert(0, os.path.join(REPO, "tools"))
    import pretrain_backbone

    path = package_asset_path("backbones/R_18_FPN_synthetic_dense.pth")
    record = json.loads(open(os.path.splitext(path)[0] + ".json").read())
    assert pretrain_backbone.sha256(path) == record["sha256"]
    weights = torch.load(path)["model"]
    assert sum(v.numel() for v in weights.values()) == record["parameters"]
    assert os.path.getsize(path) < 25e6


def test_pretrain_tool_refuses_other_architectures(tmp_path):
    out = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools/pretrain_backbone.py"), "--config-file",
         os.path.join(REPO, "configs/synthetic/mask_rcnn_R_18_FPN_synthetic.yaml"), "--export-only",
         "OUTPUT_DIR", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert out.returncode != 0 and "DenseHumanPretraining" in out.stderr
