"""MODEL.BACKBONE.FREEZE_FPN: with FREEZE_AT 5 the whole backbone stays as loaded."""
import os

import pytest
import torch
from detectron2.layers import FrozenBatchNorm2d

from pose2seg_d2.config import load_config
from pose2seg_d2.engine import Pose2SegTrainer, freeze_fpn

from .fixtures import register_tiny_person_dataset

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


@pytest.mark.parametrize("config", ["mask_rcnn_R_18_FPN_synthetic.yaml", "pose2seg_R_18_FPN_synthetic.yaml"])
def test_training_changes_the_heads_only(tmp_path, config):
    name = register_tiny_person_dataset("tiny_frozen", str(tmp_path / "tiny"), num_images=4, size=(96, 128))
    cfg = load_config(
        os.path.join(REPO, "configs/synthetic", config),
        [
            "MODEL.DEVICE", "cpu", "MODEL.BACKBONE.FREEZE_FPN", "True", "MODEL.BACKBONE.FREEZE_AT", "5",
            "DATASETS.TRAIN", f"('{name}',)", "DATASETS.TEST", "()", "DATALOADER.NUM_WORKERS", "0",
            "INPUT.MIN_SIZE_TRAIN", "(96,)", "INPUT.MAX_SIZE_TRAIN", "160", "SOLVER.IMS_PER_BATCH", "2",
            "SOLVER.MAX_ITER", "3", "SOLVER.WARMUP_ITERS", "0", "OUTPUT_DIR", str(tmp_path / "out"),
        ],
    )  # fmt: skip
    trainer = Pose2SegTrainer(cfg)
    trainer.resume_or_load(resume=False)
    model = trainer.model
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in model.backbone.modules())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.train()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(not k.startswith("backbone.") for k in changed)


def test_freeze_fpn_needs_an_fpn():
    with pytest.raises(ValueError, match="needs an FPN backbone"):
        freeze_fpn(torch.nn.Conv2d(3, 3, 1))
