import contextlib
import glob
import os

import numpy as np
import pytest
import torch
import torchvision
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.structures import Instances, Keypoints

from pose2seg_d2.config import add_pose2seg_config
from pose2seg_d2.layers import affine_align
from pose2seg_d2.modeling import Pose2Seg
from pose2seg_d2.pose import keypoint_box_roi_matrices

from .fixtures import STANDING, tiny_pose2seg_cfg, write_templates

REPO = os.path.join(os.path.dirname(__file__), "..")


@pytest.fixture(scope="module")
def templates_file(tmp_path_factory):
    return write_templates(str(tmp_path_factory.mktemp("templates") / "templates.json"))


@pytest.fixture(scope="module")
def model(templates_file):
    cfg = tiny_pose2seg_cfg("/tmp/unused", "unused", "unused", templates_file)
    torch.manual_seed(0)
    m = build_model(cfg)
    assert isinstance(m, Pose2Seg)
    return m.eval()


def make_input(keypoints, image_size=(96, 128), output_size=(192, 256)):
    h, w = image_size
    instances = Instances(image_size)
    instances.gt_keypoints = Keypoints(torch.as_tensor(keypoints, dtype=torch.float32).reshape(-1, 17, 3))
    return {
        "image": torch.randint(0, 255, (3, h, w), dtype=torch.uint8),
        "height": output_size[0],
        "width": output_size[1],
        "instances": instances,
    }


def standing_person(x0, y0, height):
    kpt = np.zeros((17, 3))
    kpt[:, :2] = STANDING * [0.5 * height, height] + [x0, y0]
    kpt[:, 2] = 2
    return kpt


class ConstantHead(torch.nn.Module):
    """Logit +10 everywhere: the pasted mask is then the window's footprint in the image."""

    def forward(self, x):
        return x.new_full((x.shape[0], 1, x.shape[2], x.shape[3]), 10.0)


@contextlib.contextmanager
def constant_head(model):
    original = model.head
    model.head = ConstantHead()
    try:
        yield
    finally:
        model.head = original


def test_no_persons_gives_empty_instances(model):
    with torch.no_grad():
        (out,) = model([make_input(np.zeros((0, 17, 3)))])
    inst = out["instances"]
    assert len(inst) == 0 and inst.image_size == (192, 256)
    assert inst.pred_masks.shape == (0, 192, 256) and inst.pred_boxes.tensor.shape == (0, 4)
    assert inst.pred_keypoints.shape == (0, 17, 3)


def test_batch_mixing_empty_and_full_images(model):
    with torch.no_grad():
        out = model([make_input(np.zeros((0, 17, 3))), make_input(standing_person(20, 10, 70)[None])])
    assert [len(o["instances"]) for o in out] == [0, 1]
    inst = out[1]["instances"]
    # ground truth: person score 1 times the mask's confidence (tests/test_keypoint_sources.py)
    assert inst.pred_masks.dtype == torch.bool and 0.0 <= inst.scores.item() <= 1.0
    assert inst.pred_classes.tolist() == [0]
    # keypoints come back in output coordinates (output is twice the input size)
    np.testing.assert_allclose(inst.pred_keypoints[0, :, :2].numpy(), standing_person(20, 10, 70)[:, :2] * 2, rtol=1e-5)


def test_person_no_template_fits_uses_the_whole_map_fallback(model):
    kpt = np.zeros((1, 17, 3))
    kpt[0, 0] = [40, 20, 2]
    kpt[0, 15] = [42, 80, 2]  # two keypoints: no fit
    fit = model.aligner.templates.fit(kpt, (24, 32), (32, 32))
    assert fit.template_index.tolist() == [-1]
    with constant_head(model), torch.no_grad():
        (out,) = model([make_input(kpt)])
    masks = out["instances"].pred_masks
    assert masks.shape == (1, 192, 256)
    # the whole_map fallback squeezes the whole image into the window: the footprint is the image
    assert masks.float().mean() > 0.97


def test_pasted_window_footprint_lands_on_the_person(model):
    person = standing_person(30, 12, 72)
    with constant_head(model), torch.no_grad():
        (out,) = model([make_input(person[None])])
    x1, y1, x2, y2 = out["instances"].pred_boxes.tensor[0].tolist()
    # the window holds the (scaled) template's unit square around the person: in output
    # coordinates (x2), it contains the person's keypoints and is not much larger than them
    kx1, ky1 = person[:, :2].min(0) * 2
    kx2, ky2 = person[:, :2].max(0) * 2
    assert x1 <= kx1 and y1 <= ky1 and x2 >= kx2 and y2 >= ky2
    assert (x2 - x1) * (y2 - y1) < 4 * (kx2 - kx1) * (ky2 - ky1) + 4 * (ky2 - ky1) ** 2


def test_training_without_persons_keeps_the_graph(model):
    model.train()
    try:
        inp = make_input(np.zeros((0, 17, 3)))
        inp["instances"].gt_masks = torch.zeros(0, 96, 128, dtype=torch.bool)
        losses = model([inp])
        assert losses["loss_mask"].item() == 0.0 and losses["loss_mask"].requires_grad
        losses["loss_mask"].backward()
        assert all(p.grad is not None for p in model.head.parameters())
    finally:
        model.eval()
        model.zero_grad()


def test_keypoint_box_aligner_equals_torchvision_roi_align():
    rng = np.random.default_rng(0)
    features = torch.randn(1, 4, 40, 50, dtype=torch.float64)
    keypoints = torch.zeros(5, 17, 3, dtype=torch.float64)
    keypoints[..., 0] = torch.from_numpy(rng.uniform(12, 36, (5, 17)))
    keypoints[..., 1] = torch.from_numpy(rng.uniform(10, 28, (5, 17)))
    keypoints[..., 2] = 2
    sizes = torch.tensor([[40.0, 50.0]] * 5, dtype=torch.float64)
    matrices = keypoint_box_roi_matrices(keypoints, sizes, (14, 10), enlarge=1.2)
    ours = affine_align(features, matrices, torch.zeros(5, dtype=torch.long), (14, 10))
    # the same boxes in continuous coordinates
    low, high = keypoints[..., :2].amin(1) + 0.5, keypoints[..., :2].amax(1) + 0.5
    center, half = (low + high) / 2, (high - low) * 1.2 / 2
    boxes = torch.cat([torch.zeros(5, 1, dtype=torch.float64), center - half, center + half], 1)
    theirs = torchvision.ops.roi_align(features, boxes, (14, 10), 1.0, sampling_ratio=1, aligned=True)
    assert torch.allclose(ours, theirs, atol=1e-10)


@pytest.mark.parametrize(
    "config", sorted(glob.glob(os.path.join(REPO, "configs", "**", "*pose2seg*.yaml"), recursive=True))
)
def test_pose2seg_configs_build(config, templates_file):
    cfg = get_cfg()
    add_pose2seg_config(cfg)
    cfg.merge_from_file(config)
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.POSE2SEG.TEMPLATES_FILE", templates_file])
    # a config with a keypoint model builds it from its own config's MODEL.WEIGHTS (not trained here)
    cfg.merge_from_list(["MODEL.POSE2SEG.KEYPOINT_MODEL.WEIGHTS", ""])
    model = build_model(cfg)
    assert isinstance(model, Pose2Seg)
    expected = {"Base-Pose2Seg.yaml": "PoseAffineAligner"}
    if "roi_align" in config:
        assert type(model.aligner).__name__ == "KeypointBoxAligner"
    else:
        assert type(model.aligner).__name__ == expected.get(os.path.basename(config), "PoseAffineAligner")
    assert model.skeleton.num_channels == (0 if "no_skeleton" in config else 55)
    assert model.head.stem.in_channels == model.backbone.output_shape()["p2"].channels + model.skeleton.num_channels


def test_missing_templates_file_says_how_to_make_one(tmp_path):
    cfg = tiny_pose2seg_cfg(str(tmp_path), "x", "x", str(tmp_path / "nope.json"))
    with pytest.raises(FileNotFoundError, match=r"nope\.json.*cluster_templates"):
        build_model(cfg)


@pytest.mark.parametrize(
    "opts, match",
    [(("MODEL.POSE2SEG.AUTOCAST", "fp8"), "AUTOCAST"), (("MODEL.POSE2SEG.MASK_THRESHOLD", 0.0), "MASK_THRESHOLD")],
)
def test_bad_autocast_or_mask_threshold_is_an_error(templates_file, opts, match):
    cfg = tiny_pose2seg_cfg("/tmp/unused", "unused", "unused", templates_file)
    cfg.merge_from_list(list(opts))
    with pytest.raises(ValueError, match=match):
        build_model(cfg)


def test_channels_last_option_gives_the_same_masks(model, templates_file):
    cfg = tiny_pose2seg_cfg("/tmp/unused", "unused", "unused", templates_file)
    cfg.merge_from_list(["MODEL.POSE2SEG.CHANNELS_LAST", True, "MODEL.POSE2SEG.AUTOCAST", "bf16"])
    other = build_model(cfg).eval()  # AUTOCAST: CUDA only, nothing on the CPU
    other.load_state_dict(model.state_dict())
    assert other.head.stem.weight.is_contiguous(memory_format=torch.channels_last)
    inputs = [make_input(np.stack([standing_person(10, 5, 60), standing_person(50, 20, 70)]))]
    with torch.no_grad():
        (a,), (b,) = model(inputs), other(inputs)
    a, b = a["instances"], b["instances"]
    assert torch.allclose(a.scores, b.scores, atol=1e-5)
    assert (a.pred_masks != b.pred_masks).sum() <= 0.001 * a.pred_masks.sum() + 2


def test_networks_run_channels_last_on_the_cpu_and_where_asked():
    from pose2seg_d2.utils import to_network_layout

    cpu = torch.zeros(2, 3, 4, 5)
    assert to_network_layout(cpu).is_contiguous(memory_format=torch.channels_last)
    elsewhere = torch.zeros(2, 3, 4, 5, device="meta")  # stands for a CUDA tensor
    assert to_network_layout(elsewhere) is elsewhere
    assert to_network_layout(elsewhere, channels_last=True).is_contiguous(memory_format=torch.channels_last)
    already = cpu.contiguous(memory_format=torch.channels_last)
    assert to_network_layout(already).data_ptr() == already.data_ptr()  # no copy
