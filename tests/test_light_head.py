"""The light SegModule config: the release's layout at narrower widths, built and run whole."""
import glob
import os

import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.structures import BitMasks, Instances, Keypoints
from fvcore.nn import FlopCountAnalysis

from pose2seg_d2.config import add_pose2seg_config
from pose2seg_d2.modeling import Pose2Seg, build_pose2seg_head

from .fixtures import STANDING, draw_person

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RELEASE = os.path.join(REPO, "configs", "pose2seg_R_50_FPN_coco_persons.yaml")
LIGHT = os.path.join(REPO, "configs", "pose2seg_R_50_FPN_light_head_coco_persons.yaml")


def load_cfg(path, *opts):
    cfg = get_cfg()
    add_pose2seg_config(cfg)
    cfg.merge_from_file(path)
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.POSE2SEG.TEMPLATES_FILE", "", *opts])
    return cfg


def head_gmacs(head, in_channels, window):
    analysis = FlopCountAnalysis(head.eval(), torch.zeros(1, in_channels, *window))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return analysis.total() / 1e9


def test_light_head_keeps_the_layout_at_4_to_8_times_fewer_macs():
    release, light = load_cfg(RELEASE), load_cfg(LIGHT)
    heads = {name: build_pose2seg_head(cfg, 311) for name, cfg in (("release", release), ("light", light))}
    assert len(heads["light"].units) == len(heads["release"].units) == 10
    assert heads["light"].stem.kernel_size == heads["release"].stem.kernel_size == (7, 7)
    macs = {name: head_gmacs(h, 311, (64, 64)) for name, h in heads.items()}
    params = {name: sum(p.numel() for p in h.parameters()) for name, h in heads.items()}
    assert 18.5 < macs["release"] < 19.5, macs  # docs/method.md §2.5: about 19.1 GMACs
    assert 4 <= macs["release"] / macs["light"] <= 8, macs
    assert params["light"] < params["release"] / 4, params


def _input_with_persons(height=160, width=208):
    """A drawn image with two standing persons: keypoints and masks."""
    canvas = np.zeros((height, width, 3), np.uint8)
    keypoints, masks = [], []
    for x0, y0, tall in ((20, 10, 130), (100, 30, 110)):
        xy = STANDING * [0.5 * tall, tall] + [x0, y0]
        masks.append(draw_person(canvas, xy, (200, 180, 160), thickness=6))
        keypoints.append(np.concatenate([xy, np.full((17, 1), 2.0)], 1))
    instances = Instances((height, width))
    instances.gt_keypoints = Keypoints(torch.tensor(np.stack(keypoints), dtype=torch.float32))
    instances.gt_masks = BitMasks(torch.from_numpy(np.stack(masks)))
    image = torch.from_numpy(np.ascontiguousarray(canvas.transpose(2, 0, 1)))
    return {"image": image, "height": height, "width": width, "instances": instances}


def test_light_head_config_builds_and_segments():
    torch.manual_seed(0)
    model = build_model(load_cfg(LIGHT))
    assert isinstance(model, Pose2Seg)
    assert model.head.stem.out_channels == 128 and model.head.units[0].conv3.out_channels == 256
    inputs = _input_with_persons()
    model.eval()
    with torch.no_grad():
        (out,) = model([inputs])
    instances = out["instances"]
    assert len(instances) == 2
    assert instances.pred_masks.shape == (2, 160, 208) and instances.pred_masks.dtype == torch.bool
    assert torch.isfinite(instances.pred_boxes.tensor).all()
    model.train()
    losses = model([inputs])
    assert set(losses) == {"loss_mask"} and torch.isfinite(losses["loss_mask"])


@pytest.mark.parametrize("config", sorted(glob.glob(os.path.join(REPO, "configs", "synthetic", "*_head.yaml"))))
def test_synthetic_head_configs_differ_from_their_base_only_in_the_head(config):
    base = load_cfg(os.path.join(REPO, "configs", "synthetic", "pose2seg_R_18_FPN_synthetic.yaml"))
    light = load_cfg(config)
    assert light.MODEL.POSE2SEG.SEG_MODULE != base.MODEL.POSE2SEG.SEG_MODULE
    light.defrost()
    light.MODEL.POSE2SEG.SEG_MODULE = base.MODEL.POSE2SEG.SEG_MODULE
    light.OUTPUT_DIR = base.OUTPUT_DIR
    assert light == base
