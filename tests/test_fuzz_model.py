"""
Bad keypoints never crash the full Pose2Seg forward, in training and at inference: NaN and
infinite coordinates, nothing or one or two keypoints labeled, identical and collinear points,
persons far outside the image, tiny and huge persons, images without persons, one-pixel images.
"""
import numpy as np
import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import BitMasks, Instances, Keypoints
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pose2seg_d2.pose import NUM_KEYPOINTS

from .fixtures import tiny_pose2seg_cfg, write_templates
from .fuzz_strategies import finite_labeled, many_persons

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
IMAGE_SIZES = st.sampled_from([(1, 1), (1, 9), (7, 2), (33, 47), (64, 80)])
# the output (height, width) asked for, as a factor of the input size
OUTPUT_FACTORS = st.sampled_from([1.0, 0.5, 2.0])

# Pose templates with the release fallback (the default), with the keypoint-box fallback, and
# the box aligner of the ablation.
VARIANTS = {
    "release_fallback": [],
    "keypoint_box_fallback": ["MODEL.POSE2SEG.FALLBACK", "keypoint_box"],
    "box_aligner": ["MODEL.POSE2SEG.ALIGNER", "KeypointBoxAligner"],
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    templates = write_templates(str(tmp_path_factory.mktemp("fuzz_templates") / "templates.json"))
    out = {}
    for name, opts in VARIANTS.items():
        cfg = tiny_pose2seg_cfg("/tmp/unused", "unused", "unused", templates)
        cfg.merge_from_list(opts + ["MODEL.POSE2SEG.MAX_INSTANCES_PER_BATCH", 4])
        torch.manual_seed(0)
        out[name] = build_model(cfg)
    return out


@st.composite
def image_inputs(draw, train):
    """
    1 or 2 Detectron2 input dicts with messy persons. Training batches hold 2 images: the
    tiny config's backbone uses BatchNorm, which cannot normalize a single image of at most
    32 pixels a side (its 1x1 stride-32 map has one value per channel); the mapper's resizing
    (INPUT.MIN_SIZE_TRAIN) keeps real batches away from that.
    """
    inputs = []
    for _ in range(draw(st.integers(2, 2) if train else st.integers(1, 2))):
        h, w = draw(IMAGE_SIZES)
        keypoints = draw(many_persons(image_size=(float(h), float(w)), max_persons=3))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        instances = Instances((h, w))
        instances.gt_keypoints = Keypoints(torch.as_tensor(keypoints, dtype=torch.float32).reshape(-1, 17, 3))
        x = {"image": torch.from_numpy(rng.integers(0, 256, (3, h, w), dtype=np.uint8)), "instances": instances}
        if train:
            instances.gt_masks = BitMasks(torch.from_numpy(rng.random((len(keypoints), h, w)) < 0.3))
        else:
            factor = draw(OUTPUT_FACTORS)
            x["height"], x["width"] = max(1, round(h * factor)), max(1, round(w * factor))
        inputs.append(x)
    return inputs


@FUZZ
@given(inputs=image_inputs(train=True), variant=st.sampled_from(sorted(VARIANTS)))
def test_training_forward_gives_a_finite_loss_and_gradients(models, inputs, variant):
    model = models[variant]
    model.train()
    model.zero_grad()
    losses = model(inputs)
    assert set(losses) == {"loss_mask"}
    loss = losses["loss_mask"]
    assert torch.isfinite(loss), loss
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@FUZZ
@given(inputs=image_inputs(train=False), variant=st.sampled_from(sorted(VARIANTS)))
def test_inference_gives_finite_instances_for_every_person(models, inputs, variant):
    model = models[variant].eval()
    with torch.no_grad():
        outputs = model(inputs)
    assert len(outputs) == len(inputs)
    for x, out in zip(inputs, outputs):
        inst = out["instances"]
        n = len(x["instances"])
        # one mask per given person, even a person with no usable keypoint (its window is
        # the documented fallback's)
        assert len(inst) == n and inst.image_size == (x["height"], x["width"])
        assert inst.pred_masks.shape == (n, x["height"], x["width"]) and inst.pred_masks.dtype == torch.bool
        boxes = inst.pred_boxes.tensor
        assert boxes.shape == (n, 4) and torch.isfinite(boxes).all()
        assert torch.isfinite(inst.scores).all() and inst.pred_classes.tolist() == [0] * n
        # keypoints come back in output coordinates; unusable ones as (0, 0, 0)
        kpt = inst.pred_keypoints
        assert kpt.shape == (n, NUM_KEYPOINTS, 3) and torch.isfinite(kpt).all()
        given_kpt = x["instances"].gt_keypoints.tensor
        unusable = ~torch.from_numpy(finite_labeled(given_kpt.numpy()))
        assert (kpt[unusable] == 0).all()
        assert torch.equal(kpt[..., 2][~unusable], given_kpt[..., 2][~unusable])


def test_a_person_with_only_nan_keypoints_gets_the_release_window(models):
    """The documented fallback, end to end: the release squeezes the whole image into the
    window, so a constant 'person everywhere' head gives a mask over the whole image."""
    model = models["release_fallback"].eval()
    kpt = torch.full((1, NUM_KEYPOINTS, 3), float("nan"))
    inst = Instances((40, 56))
    inst.gt_keypoints = Keypoints(kpt)
    x = {"image": torch.zeros(3, 40, 56, dtype=torch.uint8), "instances": inst, "height": 40, "width": 56}
    original = model.head

    class Everywhere(torch.nn.Module):
        def forward(self, t):
            return t.new_full((t.shape[0], 1, t.shape[2], t.shape[3]), 10.0)

    model.head = Everywhere()
    try:
        with torch.no_grad():
            (out,) = model([x])
    finally:
        model.head = original
    masks = out["instances"].pred_masks
    assert masks.shape == (1, 40, 56) and masks.float().mean() > 0.97
    assert (out["instances"].pred_keypoints == 0).all()
