"""Test-time horizontal flip (Pose2SegWithTTA): the mirror, the averaging, the sources, the command."""
import contextlib
import os

import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser
from detectron2.modeling import GeneralizedRCNNWithTTA, build_model
from detectron2.structures import Instances, Keypoints

import train_net
from pose2seg_d2.config import add_pose2seg_config, load_config
from pose2seg_d2.engine import build_tta_model
from pose2seg_d2.modeling import Pose2Seg, Pose2SegWithTTA
from pose2seg_d2.pose import COCO_PERSON_KEYPOINT_NAMES, flip_permutation, mirror_keypoints
from pose2seg_d2.release import ReleasePose2Seg

from .fixtures import STANDING, register_tiny_person_dataset, tiny_pose2seg_cfg, write_templates

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
NAMES = list(COCO_PERSON_KEYPOINT_NAMES)


def partner(name):
    """The keypoint name of the other side, written out here rather than taken from the flip map."""
    if name.startswith("left_"):
        return "right_" + name[len("left_"):]
    if name.startswith("right_"):
        return "left_" + name[len("right_"):]
    return name


def mirrored_by_hand(keypoints, width):
    """(N, 17, 3) keypoints of the mirror image, one keypoint at a time: the left wrist of the
    mirrored person is the original right wrist, at x = W - x."""
    out = np.zeros_like(keypoints)
    for n in range(len(keypoints)):
        for k, name in enumerate(NAMES):
            x, y, v = keypoints[n, NAMES.index(partner(name))]
            out[n, k] = (width - x, y, v) if v > 0 else (0.0, 0.0, 0.0)
    return out


def asymmetric_person(rng, x0, y0, height):
    """A standing figure with its left arm raised and jittered joints: not its own mirror."""
    kpt = np.zeros((17, 3))
    pose = STANDING.copy()
    pose[[7, 9]] = [[0.72, 0.12], [0.74, 0.0]]  # left elbow, left wrist up (the image's right)
    kpt[:, :2] = pose * [0.5 * height, height] + [x0, y0] + rng.normal(0, 1.0, (17, 2))
    kpt[:, 2] = 2
    kpt[3, :] = 0  # left ear unlabeled
    return kpt


def make_inputs(seed=0):
    """Two images of different sizes, with output sizes other than the input's."""
    rng = np.random.default_rng(seed)
    inputs = []
    for (h, w), (out_h, out_w), people in (
        ((96, 128), (144, 192), [(20, 10, 80), (60, 14, 70)]),
        ((112, 80), (112, 80), [(12, 8, 90)]),
    ):
        keypoints = np.stack([asymmetric_person(rng, *p) for p in people])
        instances = Instances((h, w))
        instances.gt_keypoints = Keypoints(torch.as_tensor(keypoints, dtype=torch.float32))
        image = torch.as_tensor(rng.integers(0, 256, (3, h, w)), dtype=torch.uint8)
        inputs.append({"image": image, "height": out_h, "width": out_w, "instances": instances, "image_id": len(inputs)})
    return inputs


@pytest.fixture(scope="module")
def templates_file(tmp_path_factory):
    return write_templates(str(tmp_path_factory.mktemp("templates") / "templates.json"))


def tiny_release_cfg():
    return load_config(os.path.join(REPO, "configs", "pose2seg_R_50_FPN_release.yaml"), [
        "MODEL.DEVICE", "cpu", "MODEL.RESNETS.DEPTH", 18, "MODEL.RESNETS.RES2_OUT_CHANNELS", 64,
        "MODEL.RESNETS.NORM", "BN", "MODEL.FPN.OUT_CHANNELS", 32, "MODEL.POSE2SEG.RELEASE_INPUT_SIZE", 128,
        "MODEL.POSE2SEG.WINDOW_SIZE", (32, 32), "MODEL.POSE2SEG.SEG_MODULE.NORM", "BN",
        "MODEL.POSE2SEG.SEG_MODULE.NUM_UNITS", 2, "MODEL.POSE2SEG.SEG_MODULE.STEM_CHANNELS", 32,
        "MODEL.POSE2SEG.SEG_MODULE.BOTTLENECK_CHANNELS", 16, "MODEL.POSE2SEG.SEG_MODULE.UNIT_OUT_CHANNELS", 32,
        "MODEL.POSE2SEG.SEG_MODULE.DECODER_BOTTLENECK_CHANNELS", 16, "MODEL.POSE2SEG.SEG_MODULE.DECODER_OUT_CHANNELS", 32,
        # its random head gives probabilities of 0-0.2: a threshold inside them
        "MODEL.POSE2SEG.MASK_THRESHOLD", 0.1,
    ])  # fmt: skip


@pytest.fixture(scope="module", params=["Pose2Seg", "ReleasePose2Seg"])
def model_and_cfg(request, templates_file):
    if request.param == "Pose2Seg":
        cfg = tiny_pose2seg_cfg("/tmp/unused", "unused", "unused", templates_file)
    else:
        cfg = tiny_release_cfg()
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    assert type(model).__name__ == request.param
    return model, cfg


def by_keypoints(instances, keypoints):
    """Indices of ``instances`` in the order of the (n, 17, 3) output ``keypoints``."""
    found = [int((instances.pred_keypoints - k).abs().amax(dim=(1, 2)).argmin()) for k in keypoints]
    assert sorted(found) == list(range(len(instances)))
    return found


def output_keypoints(x, keypoints):
    """(n, 17, 3) input-image keypoints of input ``x`` in its output image."""
    scale = torch.tensor([x["width"] / x["image"].shape[-1], x["height"] / x["image"].shape[-2], 1.0])
    out = keypoints * scale
    out[out[..., 2] == 0] = 0
    return out


def averaged_masks_and_scores(maps, mirrored_maps, person_scores, model):
    """The flip-and-average by hand: the mirrored view's maps flipped back, the mean, the
    threshold, and the score rule on the averaged maps."""
    average = (maps + mirrored_maps.flip(-1)) / 2
    masks = average >= model.mask_threshold
    if model.score == "person":  # the release's rule: the person's score alone
        return masks, person_scores
    return masks, person_scores * (average * masks).sum(dim=(1, 2)) / masks.sum(dim=(1, 2)).clamp(min=1)


@contextlib.contextmanager
def recording_views(model):
    """Records each call of ``model.image_probabilities``: the images, the persons, the maps."""
    calls = []
    original = model.image_probabilities

    def recording(batched_inputs, persons_per_image=None, do_postprocess=True):
        out = original(batched_inputs, persons_per_image, do_postprocess)
        calls.append(([x["image"] for x in batched_inputs], persons_per_image, out[0]))
        return out

    model.image_probabilities = recording
    try:
        yield calls
    finally:
        del model.image_probabilities


# ---------------------------------------------------------------------------- the mirror
def test_mirror_keypoints_swaps_left_and_right_and_mirrors_x():
    rng = np.random.default_rng(3)
    keypoints = np.concatenate([rng.uniform(0, 100, (4, 17, 2)), np.full((4, 17, 1), 2.0)], axis=2)
    keypoints[1, 5] = 0  # an unlabeled left shoulder
    keypoints[2, 9, 0] = np.nan  # a NaN coordinate: unlabeled
    widths = torch.tensor([100.0, 100.0, 64.0, 37.0])
    got = mirror_keypoints(torch.as_tensor(keypoints, dtype=torch.float32), widths, flip_permutation())
    want = np.concatenate([mirrored_by_hand(keypoints[i : i + 1], w) for i, w in enumerate(widths.tolist())])
    want[2, NAMES.index("right_wrist")] = 0
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-5)
    # spelled out: the mirrored left wrist is the original right wrist, at W - x
    lw, rw = NAMES.index("left_wrist"), NAMES.index("right_wrist")
    assert got[0, lw, 0] == pytest.approx(100.0 - keypoints[0, rw, 0], abs=1e-4)
    assert got[0, rw, 1] == pytest.approx(keypoints[0, lw, 1], abs=1e-4)
    # the center of pixel i (x = i + 0.5) goes to the center of pixel W - 1 - i, as image.flip(-1) moves it
    center = torch.zeros(1, 17, 3)
    center[0, 0] = torch.tensor([10.5, 3.5, 2.0])
    assert mirror_keypoints(center, 37.0, flip_permutation())[0, 0, 0] == 37 - 1 - 10 + 0.5
    # twice is the identity for labeled keypoints
    once = mirror_keypoints(torch.as_tensor(keypoints[:1], dtype=torch.float32), 100.0, flip_permutation())
    np.testing.assert_allclose(mirror_keypoints(once, 100.0, flip_permutation()).numpy(), keypoints[:1], atol=1e-4)


# ---------------------------------------------------------------------------- the averaging
def test_tta_masks_equal_a_manual_flip_and_average(model_and_cfg):
    model, cfg = model_and_cfg
    inputs = make_inputs()
    # the mirrored view by hand: the image flipped, the annotated keypoints mirrored one by one
    mirrored_inputs = []
    for x in inputs:
        instances = Instances(x["instances"].image_size)
        keypoints = mirrored_by_hand(x["instances"].gt_keypoints.tensor.numpy(), x["image"].shape[-1])
        instances.gt_keypoints = Keypoints(torch.as_tensor(keypoints, dtype=torch.float32))
        mirrored_inputs.append({**x, "image": x["image"].flip(-1), "instances": instances})
    with torch.no_grad():
        plain = model(inputs)
        maps, _, _ = model.image_probabilities(inputs)
        mirrored_maps, _, _ = model.image_probabilities(mirrored_inputs)
        model.test_persons_per_chunk, chunk = 1, model.test_persons_per_chunk
        try:  # one person at a time through the head and the warp-back: the same maps
            for a, b in zip(model.image_probabilities(inputs)[0], maps):
                assert torch.equal(a, b)
        finally:
            model.test_persons_per_chunk = chunk
        with recording_views(model) as calls:
            tta = Pose2SegWithTTA(cfg, model)(inputs)

    # what the wrapper gave the model: the image and the persons, then the mirrored image and
    # the mirrored persons, left and right swapped
    assert len(calls) == 2
    (images, persons, _), (flipped_images, flipped_persons, _) = calls
    lw, rw = NAMES.index("left_wrist"), NAMES.index("right_wrist")
    for x, image, (keypoints, _), flipped_image, (flipped, _) in zip(inputs, images, persons, flipped_images, flipped_persons):
        width = x["image"].shape[-1]
        assert torch.equal(image, x["image"]) and torch.equal(flipped_image, x["image"].flip(-1))
        assert torch.equal(keypoints, x["instances"].gt_keypoints.tensor)
        # the mirrored person's right wrist is the original left wrist, mirrored
        torch.testing.assert_close(flipped[:, rw, :2], torch.stack([width - keypoints[:, lw, 0], keypoints[:, lw, 1]], -1))
        np.testing.assert_allclose(flipped.numpy(), mirrored_by_hand(keypoints.numpy(), width), atol=1e-5)

    changed = filled = 0
    for x, p, m, out, t_out in zip(inputs, maps, mirrored_maps, plain, tta):
        keypoints = output_keypoints(x, x["instances"].gt_keypoints.tensor)
        # the maps are what the model alone thresholds
        plain_i = out["instances"]
        assert torch.equal(plain_i.pred_masks[by_keypoints(plain_i, keypoints)], p >= model.mask_threshold)
        masks, scores = averaged_masks_and_scores(p, m, torch.ones(len(p)), model)
        tta_i = t_out["instances"]
        order = by_keypoints(tta_i, keypoints)
        assert tta_i.image_size == (x["height"], x["width"])
        assert torch.equal(tta_i.pred_masks[order], masks)
        torch.testing.assert_close(tta_i.scores[order], scores)
        assert (tta_i.scores[:-1] >= tta_i.scores[1:]).all()
        torch.testing.assert_close(tta_i.pred_keypoints[order], keypoints)
        for mask, box in zip(tta_i.pred_masks, tta_i.pred_boxes.tensor):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            expected = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if len(xs) else [0, 0, 0, 0]
            assert box.tolist() == expected
        filled += int(masks.sum())
        changed += int((masks != (p >= model.mask_threshold)).sum())
    assert filled > 0 and changed > 0, "the flip changed no mask: the test would not tell averaging from one view"


def test_tta_runs_a_keypoint_model_once_on_the_unflipped_image(templates_file, tmp_path):
    from .test_keypoint_sources import write_tiny_keypoint_rcnn_config

    config = write_tiny_keypoint_rcnn_config(tmp_path / "kp.yaml", 96)
    torch.manual_seed(0)
    keypoint_model = build_model(load_config(config)).eval()
    weights = str(tmp_path / "kp.pth")
    torch.save({"model": keypoint_model.state_dict()}, weights)
    cfg = tiny_pose2seg_cfg(str(tmp_path / "out"), "unused", "unused", templates_file)
    cfg.merge_from_list([
        "MODEL.POSE2SEG.KEYPOINT_SOURCE", "model", "MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE", config,
        "MODEL.POSE2SEG.KEYPOINT_MODEL.WEIGHTS", weights, "MODEL.POSE2SEG.KEYPOINT_CONFIDENCE_THRESHOLD", -1e9,
        "MODEL.POSE2SEG.MIN_CONFIDENT_KEYPOINTS", 0,
    ])  # fmt: skip
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    inputs = [{k: v for k, v in x.items() if k != "instances"} for x in make_inputs()[:1]]
    source = model.keypoint_source
    seen = []

    def recording_source(batched_inputs, image_sizes, device):
        # the keypoint model's persons, their scores spread so that they show in the masks' scores
        persons = [(k, s * torch.linspace(0.9, 0.3, len(s))) for k, s in source(batched_inputs, image_sizes, device)]
        seen.append(([x["image"] for x in batched_inputs], persons))
        return persons

    model.keypoint_source = recording_source
    with torch.no_grad(), recording_views(model) as views:
        tta = Pose2SegWithTTA(cfg, model)(inputs)
    assert len(seen) == 1 and torch.equal(seen[0][0][0], inputs[0]["image"])
    (keypoints, person_scores), = seen[0][1]
    (_, _, (maps,)), (_, (flipped,), (mirrored_maps,)) = views
    torch.testing.assert_close(flipped[0], mirror_keypoints(keypoints, inputs[0]["image"].shape[-1], flip_permutation()))
    instances = tta[0]["instances"]
    assert len(instances) == len(keypoints) == 4
    # the persons are the keypoint model's on the unflipped image, their scores its scores
    # times the averaged masks' confidence
    order = by_keypoints(instances, output_keypoints(inputs[0], keypoints))
    masks, scores = averaged_masks_and_scores(maps, mirrored_maps, person_scores, model)
    assert torch.equal(instances.pred_masks[order], masks)
    torch.testing.assert_close(instances.scores[order], scores)


# ---------------------------------------------------------------------------- config and command
def test_tta_refuses_what_it_cannot_do(templates_file):
    cfg = tiny_pose2seg_cfg("/tmp/unused", "unused", "unused", templates_file)
    model = build_model(cfg).eval()
    assert isinstance(build_tta_model(cfg, model), Pose2SegWithTTA)
    no_flip = cfg.clone()
    no_flip.TEST.AUG.FLIP = False
    with pytest.raises(ValueError, match="TEST.AUG.FLIP"):
        build_tta_model(no_flip, model)
    with pytest.raises(TypeError, match="Pose2Seg"):
        Pose2SegWithTTA(cfg, torch.nn.Linear(1, 1))
    keypoints_only = load_config(os.path.join(REPO, "configs", "synthetic", "keypoints_only_synthetic.yaml"))
    with pytest.raises(ValueError, match="TEST.AUG.ENABLED.*KeypointsOnlyMasks"):
        build_tta_model(keypoints_only, build_model(keypoints_only))
    assert issubclass(ReleasePose2Seg, Pose2Seg)  # the release's model flips as Pose2Seg does
    # Mask R-CNN: Detectron2's own wrapper
    mask_rcnn = load_config(os.path.join(REPO, "configs", "synthetic", "mask_rcnn_R_18_FPN_synthetic.yaml"), ["MODEL.WEIGHTS", ""])
    assert isinstance(build_tta_model(mask_rcnn, build_model(mask_rcnn).eval()), GeneralizedRCNNWithTTA)


def test_eval_only_with_tta_evaluates_with_and_without(templates_file, tmp_path):
    register_tiny_person_dataset("tiny_persons_tta", str(tmp_path / "data"), num_images=3)
    cfg = tiny_pose2seg_cfg(str(tmp_path / "run"), "tiny_persons_tta", "tiny_persons_tta", templates_file)
    cfg.merge_from_list(["TEST.AUG.ENABLED", True])
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(cfg.dump())
    results = train_net.main(default_argument_parser().parse_args(["--config-file", str(config_file), "--eval-only"]))
    for key in ("segm", "segm_TTA"):
        assert all(0.0 <= results[key][k] <= 100.0 for k in ("AP", "AP50", "AP75")), results
    assert os.path.isdir(tmp_path / "run" / "inference_TTA" / "tiny_persons_tta")


def test_config_has_detectron2s_tta_keys():
    cfg = get_cfg()
    add_pose2seg_config(cfg)
    assert not cfg.TEST.AUG.ENABLED and cfg.TEST.AUG.FLIP
