"""MODEL.BACKBONE.FREEZE_FPN: with FREEZE_AT 5 the whole backbone stays as loaded;
MODEL.BACKBONE.FROZEN_AUTOCAST: such a backbone computed in bfloat16, wherever a model is built."""
import logging
import os

import pytest
import torch
from detectron2.layers import FrozenBatchNorm2d
from detectron2.modeling.backbone import FPN

from pose2seg_d2.config import load_config
from pose2seg_d2.engine import Pose2SegTrainer
from pose2seg_d2.modeling import freeze_fpn, frozen_backbone

from .fixtures import register_tiny_person_dataset

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


@pytest.fixture(autouse=True)
def native_reduced_precision(monkeypatch):
    """The bfloat16 path on every machine: where the CPU would only emulate bfloat16, the
    backbone computes in float32 (tested below with this switched off), slow but exact here."""
    monkeypatch.setattr(frozen_backbone, "computes_natively", lambda device_type, dtype: True)


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


def _synthetic_mask_rcnn(opts=()):
    return load_config(
        os.path.join(REPO, "configs/synthetic/mask_rcnn_R_18_FPN_synthetic.yaml"),
        ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", *opts],
    )


def test_frozen_autocast_gives_float32_features_close_to_float32_compute():
    torch.manual_seed(0)
    reference = Pose2SegTrainer.build_model(_synthetic_mask_rcnn(["MODEL.BACKBONE.FROZEN_AUTOCAST", ""])).eval()
    reduced = Pose2SegTrainer.build_model(_synthetic_mask_rcnn(["MODEL.BACKBONE.FROZEN_AUTOCAST", "bf16"])).eval()
    assert reference.state_dict().keys() == reduced.state_dict().keys()  # checkpoints unchanged
    reduced.load_state_dict(reference.state_dict())
    images = torch.rand(2, 3, 96, 128) * 255 - 120
    with torch.no_grad():
        expected, got = reference.backbone(images), reduced.backbone(images)
    assert expected.keys() == got.keys()
    for name in expected:
        assert got[name].dtype == torch.float32 and got[name].is_contiguous()
        assert got[name].shape == expected[name].shape
        scale = expected[name].abs().max()
        # bfloat16 keeps 8 bits of mantissa: errors of a few 1e-3 of the range, not more
        assert (got[name] - expected[name]).abs().max() <= 0.05 * scale, name
        assert not torch.equal(got[name], expected[name])  # it did compute in bfloat16


def test_frozen_autocast_needs_a_frozen_backbone():
    with pytest.raises(ValueError, match="wholly frozen backbone.*learn"):
        Pose2SegTrainer.build_model(_synthetic_mask_rcnn(["MODEL.BACKBONE.FREEZE_AT", "2"]))
    with pytest.raises(ValueError, match="FROZEN_AUTOCAST must be one of"):
        Pose2SegTrainer.build_model(_synthetic_mask_rcnn(["MODEL.BACKBONE.FROZEN_AUTOCAST", "int8"]))


def test_predictor_computes_the_backbone_as_training_did():
    from pose2seg_d2.engine import Pose2SegPredictor

    torch.manual_seed(0)
    predictor = Pose2SegPredictor(_synthetic_mask_rcnn())
    assert not any(p.requires_grad for p in predictor.model.backbone.parameters())
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        features = predictor.model.backbone(images)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            direct = FPN.forward(
                predictor.model.backbone, images.contiguous(memory_format=torch.channels_last)
            )
    for name in features:
        torch.testing.assert_close(features[name], direct[name].float(), rtol=0, atol=0)


def _detectron2_build_model(config, opts=()):
    from detectron2.modeling import build_model

    config_file = os.path.join(REPO, "configs/synthetic", config)
    cfg = load_config(config_file, ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", *opts])
    return build_model(cfg).eval()


def _conv_output_dtypes(backbone, images):
    """The dtypes every convolution of ``backbone`` computes in, and its features."""
    dtypes = []
    handles = [
        m.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
        for m in backbone.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            features = backbone(images)
    finally:
        for handle in handles:
            handle.remove()
    return dtypes, features


@pytest.mark.parametrize("config", ["mask_rcnn_R_18_FPN_synthetic.yaml", "pose2seg_R_18_FPN_synthetic.yaml"])
def test_detectron2_build_model_gives_the_configured_frozen_bfloat16_backbone(config):
    model = _detectron2_build_model(config)
    backbone = model.backbone
    assert not any(p.requires_grad for p in backbone.parameters())
    assert any(p.requires_grad for n, p in model.named_parameters() if not n.startswith("backbone."))  # heads learn
    fpn_norms = [m.norm for name, m in backbone.named_children() if name.startswith("fpn_")]
    assert fpn_norms and all(isinstance(norm, FrozenBatchNorm2d) for norm in fpn_norms)  # MODEL.FPN.NORM "BN", frozen
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.modules())
    images = torch.rand(2, 3, 64, 96) * 255 - 120
    dtypes, features = _conv_output_dtypes(backbone, images)
    assert len(dtypes) == sum(isinstance(m, torch.nn.Conv2d) for m in backbone.modules()) > 20
    assert set(dtypes) == {torch.bfloat16}
    assert features and all(f.dtype == torch.float32 for f in features.values())

    float32 = _detectron2_build_model(config, ["MODEL.BACKBONE.FROZEN_AUTOCAST", ""]).backbone
    dtypes, features = _conv_output_dtypes(float32, images)
    assert dtypes and set(dtypes) == {torch.float32}
    assert all(f.dtype == torch.float32 for f in features.values())
    assert not any(p.requires_grad for p in float32.parameters())  # still frozen: FREEZE_AT 5, FREEZE_FPN


def test_the_shipped_backbone_loads_without_missing_or_unexpected_keys():
    from pose2seg_d2.assets_path import package_asset_path

    model = _detectron2_build_model("pose2seg_R_18_FPN_synthetic.yaml")
    weights = torch.load(package_asset_path("backbones/R_18_FPN_synthetic_dense.pth"))["model"]
    incompatible = model.load_state_dict(weights, strict=False)
    assert not incompatible.unexpected_keys
    assert not [k for k in incompatible.missing_keys if k.startswith("backbone.")]
    assert set(weights) == {k for k in model.state_dict() if k.startswith("backbone.")}
    torch.testing.assert_close(model.backbone.fpn_lateral2.weight, weights["backbone.fpn_lateral2.weight"].float())


def test_backbone_options_need_a_builder_that_reads_them():
    cfg = _synthetic_mask_rcnn(["MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone"])
    with pytest.raises(ValueError, match="read only by MODEL.BACKBONE.NAME 'build_frozen_resnet_fpn_backbone'"):
        Pose2SegTrainer.build_model(cfg)


def test_frozen_autocast_computes_float32_where_the_device_would_emulate_it(monkeypatch, caplog):
    monkeypatch.setattr(frozen_backbone, "computes_natively", lambda device_type, dtype: False)
    frozen_backbone._warn_emulated.cache_clear()
    torch.manual_seed(0)
    reference = _detectron2_build_model("mask_rcnn_R_18_FPN_synthetic.yaml", ["MODEL.BACKBONE.FROZEN_AUTOCAST", ""])
    reduced = _detectron2_build_model("mask_rcnn_R_18_FPN_synthetic.yaml")
    reduced.load_state_dict(reference.state_dict())
    images = torch.rand(2, 3, 64, 96) * 255 - 120
    logger = logging.getLogger(frozen_backbone.__name__)
    logger.addHandler(caplog.handler)  # the package's loggers may not propagate (setup_logger)
    try:
        dtypes, features = _conv_output_dtypes(reduced.backbone, images)
    finally:
        logger.removeHandler(caplog.handler)
    assert dtypes and set(dtypes) == {torch.float32}
    assert "computes in float32" in caplog.text and "FROZEN_AUTOCAST" in caplog.text
    with torch.no_grad():
        expected = reference.backbone(images)
    for name in expected:
        # float32 up to the summation order of a channels-last convolution; bfloat16 would be
        # off by about 1e-3 of the range
        assert features[name].dtype == torch.float32 and features[name].is_contiguous()
        assert (features[name] - expected[name]).abs().max() <= 1e-5 * expected[name].abs().max(), name

