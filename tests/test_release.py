"""
Faithfulness to the release (docs/method.md §6): its template fit, its skeleton features, its test-time
model run from a converted checkpoint (against tests/release_reference.py, an independent
re-creation of its computation), and the configs that run without any dataset on disk.
"""
import importlib.util
import json
import os
import urllib.error

import cv2
import numpy as np
import pytest
import torch

from pose2seg_d2.config import load_config
from pose2seg_d2.layers import affine_align
from pose2seg_d2.pose import PoseTemplates, skeleton_features
from pose2seg_d2.release import align_corners_sampling_matrices, release_input_matrices
from pose2seg_d2.utils import resolve_path

from . import release_reference as ref

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RELEASE_CONFIG = os.path.join(REPO, "configs", "pose2seg_R_50_FPN_release.yaml")
COCO_CONFIG = os.path.join(REPO, "configs", "pose2seg_R_50_FPN_coco_persons.yaml")
TEMPLATES = resolve_path("pose2seg_d2://templates_coco_release.json")


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------- random persons
def raw_release_poses():
    """(3, 17, 2): the release templates' keypoint positions, all 17 (before the threshold)."""
    with open(TEMPLATES) as f:
        return np.array(json.load(f)["templates"]).reshape(3, 17, 3)[..., :2]


def random_person(rng, center, tall, angle_std=0.3):
    """
    (17, 3) keypoints (x, y, v) of a person ``tall`` high around ``center``: one of the
    release's poses, as given, with its left and right swapped, or mirrored (seen from the other
    side), rotated, jittered, with keypoints left unlabeled (v = 0) or occluded (v = 1) at random.
    """
    xy = raw_release_poses()[rng.integers(3)].copy()
    if rng.random() < 0.3:
        xy[1:] = xy[[0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]][1:]
    if rng.random() < 0.4:
        xy[:, 0] = 1 - xy[:, 0]
    angle = rng.normal(0, angle_std)
    c, s = np.cos(angle), np.sin(angle)
    xy = (xy - 0.5) @ np.array([[c, s], [-s, c]]) * tall + center + rng.normal(0, 0.03 * tall, (17, 2))
    v = np.where(rng.random(17) < 0.2, 1.0, 2.0)
    v[rng.random(17) < rng.uniform(0, 0.5)] = 0
    return np.concatenate([np.where(v[:, None] > 0, xy, 0), v[:, None]], axis=1)


def random_feature_persons(rng, n, side=ref.FEATURE_SIZE):
    """n persons in the feature map of the release's input (1 in 10 with only 2 labeled keypoints)."""
    people = []
    for i in range(n):
        tall = rng.uniform(8, 1.3 * side)
        person = random_person(rng, rng.uniform(0, side, 2), tall)
        if i % 10 == 0:
            person[rng.permutation(17)[:15]] = 0
        people.append(person)
    return np.stack(people).astype(np.float32)


WINDOW_CORNERS = np.array([[0, 0, 1], [63, 0, 1], [0, 63, 1], [63, 63, 1]], np.float64).T


def same_fit(ours, theirs):
    """
    (matrix, score, fallback) equal up to the release's float32 arithmetic: the same fallback
    decision, scores within 1e-5, and the windows sampling the feature map at the same places
    within 0.01 feature pixel. (The release solves its least squares in float32 on pixel
    coordinates in the hundreds; that moves its windows by up to about 0.008 feature pixel, and
    its matrix entries by up to a few 1e-4 relative.)
    """
    (matrix, score, index), (ref_matrix, ref_score, ref_index) = ours, theirs
    where = np.linalg.inv(np.asarray(matrix, np.float64)) @ WINDOW_CORNERS
    ref_where = np.linalg.inv(np.asarray(ref_matrix, np.float64)) @ WINDOW_CORNERS
    return (
        (index < 0) == (ref_index < 0)
        and abs(score - ref_score) <= 1e-5
        and np.abs(where - ref_where).max() <= 0.01
    )


def fit_agreement(mirror, n=400, seed=0):
    rng = np.random.default_rng(seed)
    people = random_feature_persons(rng, n)
    templates = PoseTemplates.load(TEMPLATES, mirror=mirror)
    fit = templates.fit(torch.from_numpy(people), (ref.FEATURE_SIZE,) * 2, (ref.WINDOW_SIZE,) * 2)
    release_templates = ref.load_templates(TEMPLATES)
    agree, fallbacks = [], 0
    for n_, person in enumerate(people):
        theirs = ref.fit(person, release_templates)
        fallbacks += theirs[2] < 0
        ours = (fit.matrices[n_].numpy(), fit.scores[n_].item(), fit.template_index[n_].item())
        agree.append(same_fit(ours, theirs))
    return np.mean(agree), fallbacks / n


def test_fit_equals_the_release_on_random_poses():
    fraction, fallback_fraction = fit_agreement("swap_rows")
    print(f"\nfits equal to the release's: {fraction:.2%} of 400 random poses ({fallback_fraction:.1%} fallbacks)")
    assert fraction >= 0.99
    assert 0.05 < fallback_fraction < 0.5  # both outcomes were exercised
    # the geometric mirror (x -> 1 - x) is not the release's: the comparison tells them apart
    geometric, _ = fit_agreement("geometric")
    print(f"with the geometric mirror: {geometric:.2%}")
    assert geometric < 0.9


def test_skeleton_features_equal_the_release():
    rng = np.random.default_rng(1)
    people = random_feature_persons(rng, 200)
    templates = ref.load_templates(TEMPLATES)
    window = np.stack([ref.warp_keypoints(p[None], ref.fit(p, templates)[0])[0] for p in people])
    ours = skeleton_features(torch.from_numpy(window), (ref.WINDOW_SIZE,) * 2).numpy()
    theirs = np.stack([ref.skeleton(k) for k in window])
    part_diff = np.abs(ours[:, :17] - theirs[:, :17]).max()
    limbs_ours, limbs_theirs = ours[:, 17:], theirs[:, 17:]
    on = (limbs_ours != 0) | (limbs_theirs != 0)
    differ = np.abs(limbs_ours - limbs_theirs) > 1e-6
    fraction = differ.sum() / on.sum()
    print(f"\npart maps: max difference {part_diff:.2e}; limb fields: {differ.sum()} of {on.sum()} "
          f"field pixels differ ({fraction:.4%})")  # fmt: skip
    assert on.sum() > 50_000
    assert part_diff <= 1e-3
    assert fraction <= 0.01


def test_window_sampling_equals_the_release():
    rng = np.random.default_rng(2)
    feature = torch.from_numpy(rng.normal(size=(1, 5, 128, 128)).astype(np.float32))
    people = random_feature_persons(rng, 20)
    templates = ref.load_templates(TEMPLATES)
    matrices = np.stack([ref.fit(p, templates)[0] for p in people]).astype(np.float32)
    theirs = ref.sample_windows(feature, matrices)
    sampling = align_corners_sampling_matrices(torch.from_numpy(matrices).double(), (128, 128))
    ours = affine_align(feature, sampling, torch.zeros(20, dtype=torch.long), (64, 64))
    assert (theirs.abs() > 0).float().mean() > 0.5
    assert torch.allclose(ours, theirs, atol=2e-4), (ours - theirs).abs().max()
    # the plain matrices would sample elsewhere
    plain = affine_align(feature, torch.from_numpy(matrices).double(), torch.zeros(20, dtype=torch.long), (64, 64))
    assert (plain - theirs).abs().max() > 0.1


@pytest.mark.parametrize("size", [(480, 640), (700, 300), (512, 512), (100, 900)])
def test_input_matrix_equals_the_release(size):
    h, w = size
    ours = release_input_matrices(torch.tensor([[h, w]]), 512)[0].numpy()
    np.testing.assert_allclose(ours, ref.input_matrix(w, h), rtol=1e-6, atol=1e-4)


# ---------------------------------------------------------------------------- the whole model
IMAGE_SIZES = [(360, 480), (500, 260), (300, 300), (180, 640)]  # (height, width)


def make_scene(rng, height, width, num_persons):
    """A noise-and-shapes BGR image and COCO keypoints (N, 17, 3) of persons in it."""
    image = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3)).astype(np.uint8), (0, 0), 3)
    for _ in range(6):
        center = (int(rng.integers(width)), int(rng.integers(height)))
        cv2.circle(image, center, int(rng.integers(10, 60)), rng.integers(0, 256, 3).tolist(), -1)
    people = []
    for _ in range(num_persons):
        tall = rng.uniform(0.4, 0.9) * height
        people.append(random_person(rng, rng.uniform([0.2 * width, 0.3 * height], [0.8 * width, 0.7 * height]), tall))
    people = np.stack(people)
    people[people[..., 2] > 0, 2] = 2  # what a results file gives: labeled or not
    return image, people.astype(np.float32)


@pytest.fixture(scope="module")
def release_setup(tmp_path_factory):
    """
    A model of the release's structure with random weights and BatchNorm statistics (set near
    those of a real forward pass, so that activations stay sensible), saved as a release
    checkpoint and converted; the scenes and their keypoint results file.
    """
    tmp = tmp_path_factory.mktemp("release")
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(3)
    model = ref.ReleaseModel().eval()
    scenes = [make_scene(rng, h, w, 3) for h, w in IMAGE_SIZES]
    # one scene also holds a person far larger than its image: no template enlarges it, the
    # release fallback squeezes the whole map into its window
    huge = random_person(rng, np.array([240.0, 180.0]), 1500.0, angle_std=0.0)
    huge[huge[:, 2] > 0, 2] = 2
    scenes[0] = (scenes[0][0], np.concatenate([scenes[0][1], huge[None].astype(np.float32)]))
    templates = ref.load_templates(TEMPLATES)
    for conv in [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None]:
        torch.nn.init.normal_(conv.bias, std=0.05, generator=generator)
    ref.randomize_batchnorm(model.backbone, ref.network_input(scenes[0][0])[0], generator)
    inputs = torch.cat([ref.window_inputs(model, image, people, templates)[0] for image, people in scenes[:2]])
    logits = ref.randomize_batchnorm(model.segnet, inputs, generator)
    with torch.no_grad():  # about half of each window is person
        model.segnet.pred_small.bias[1] -= (logits[:, 1] - logits[:, 0]).median()
    release_file = tmp / "pose2seg_release.pkl"
    torch.save(model.state_dict(), release_file)
    converted = tmp / "pose2seg_release.pth"
    assert load_tool("convert_release_checkpoint").main([str(release_file), str(converted)]) == 0
    results = []
    for image_id, (_, people) in enumerate(scenes, start=1):
        for i, person in enumerate(people):
            kp = person.copy()
            kp[:, 2] = np.where(person[:, 2] > 0, 0.9, 0.0)
            results.append({"image_id": image_id, "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 0.9 - 0.1 * i})
    keypoints_file = tmp / "keypoints.json"
    keypoints_file.write_text(json.dumps(results))
    return {"model": model, "scenes": scenes, "converted": str(converted), "keypoints_file": str(keypoints_file),
            "release_file": str(release_file), "templates": templates}  # fmt: skip


def release_cfg(setup, *opts):
    return load_config(RELEASE_CONFIG, [
        "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", setup["converted"], "MODEL.POSE2SEG.KEYPOINT_SOURCE", "json",
        "MODEL.POSE2SEG.KEYPOINTS_FILE", setup["keypoints_file"], *opts,
    ])  # fmt: skip


def test_converted_model_computes_the_release_network(release_setup):
    from pose2seg_d2.engine import Pose2SegPredictor

    model = Pose2SegPredictor(release_cfg(release_setup)).model
    release = release_setup["model"]
    image, people = release_setup["scenes"][1]
    x, _ = ref.network_input(image)
    with torch.no_grad():
        inputs = model.preprocess_image([{"image": torch.from_numpy(image[..., ::-1].copy()).permute(2, 0, 1).float()}])
        # the input: OpenCV's bilinear warp of the uint8 image, to a grey level
        assert ((inputs.tensor - x).abs() * torch.tensor(ref.IMAGENET_STD).view(1, 3, 1, 1) * 255).max() <= 1.001
        # the backbone and the head, on the same inputs
        theirs = release.backbone(x)
        ours = model.backbone(x)["p2"]
        assert ours.shape == theirs.shape == (1, 256, 128, 128)
        assert (ours - theirs).abs().max() <= 1e-4 * theirs.abs().max()
        windows = ref.window_inputs(release, image, people, release_setup["templates"])[0]
        theirs = release.segnet(windows)
        ours = model.head(windows)
        assert (ours - theirs).abs().max() <= 1e-4 * theirs.abs().max()


CUDA = pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"))


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_converted_checkpoint_gives_the_release_masks(release_setup, device):
    from pose2seg_d2.engine import Pose2SegPredictor

    predictor = Pose2SegPredictor(release_cfg(release_setup, "MODEL.DEVICE", device))
    ious = []
    for image_id, (image, people) in enumerate(release_setup["scenes"], start=1):
        instances = predictor(image, image_id=image_id)["instances"].to("cpu")
        theirs = ref.release_masks(release_setup["model"], image, people, release_setup["templates"])
        assert len(instances) == len(people)
        ours = instances.pred_masks.numpy()
        # match each person by its keypoints (Detectron2's coordinates: COCO numbers + 0.5)
        given = torch.from_numpy(people[..., :2] + 0.5)
        for j, kp in enumerate(instances.pred_keypoints[..., :2]):
            labeled = torch.from_numpy(people[..., 2] > 0)
            distance = torch.where(labeled, (given - kp).abs().sum(-1), 0).sum(-1)
            i = int(distance.argmin())
            assert distance[i] < 1e-2
            inter = np.logical_and(ours[j], theirs[i]).sum()
            union = np.logical_or(ours[j], theirs[i]).sum()
            assert theirs[i].sum() > 100
            ious.append(inter / union)
    ious = np.array(ious)
    print(f"\nIoU with the release's computation ({device}), per person: {np.round(ious, 4).tolist()}; "
          f"mean {ious.mean():.4f}, min {ious.min():.4f}")  # fmt: skip
    assert ious.min() >= 0.95
    assert ious.mean() >= 0.98


# ---------------------------------------------------------------------------- the converter
@pytest.fixture(scope="module")
def release_state_dict():
    torch.manual_seed(1)
    return ref.ReleaseModel().state_dict()


@pytest.fixture(scope="module")
def release_model_state():
    from detectron2.modeling import build_model

    return build_model(load_config(RELEASE_CONFIG, ["MODEL.DEVICE", "cpu"])).state_dict()


def test_converter_renames_every_release_key(release_state_dict, release_model_state):
    from pose2seg_d2.release import convert_release_state_dict

    converted = convert_release_state_dict(release_state_dict, release_model_state)
    assert converted.keys() == release_model_state.keys()
    pairs = {
        "backbone.conv1.weight": "backbone.bottom_up.stem.conv1.weight",
        "backbone.bn1.running_var": "backbone.bottom_up.stem.conv1.norm.running_var",
        "backbone.layer1.0.conv4.weight": "backbone.bottom_up.res2.0.shortcut.weight",
        "backbone.layer3.5.bn2.weight": "backbone.bottom_up.res4.5.conv2.norm.weight",
        "backbone.layer4.0.conv1.weight": "backbone.bottom_up.res5.0.conv1.weight",
        "backbone.fpn_c1p1.bias": "backbone.fpn_lateral2.bias",
        "backbone.fpn_c4p4.weight": "backbone.fpn_lateral5.weight",
        "backbone.fpn_p1.weight": "backbone.fpn_output2.weight",
        "segnet.conv1.weight": "head.stem.weight",
        "segnet.bn1.running_mean": "head.stem_norm.running_mean",
        "segnet.layer1.0.downsample.0.weight": "head.units.0.shortcut.0.weight",
        "segnet.layer1.9.bn3.bias": "head.units.9.norm3.bias",
        "segnet.decoder1.0.downsample.1.running_var": "head.decoder.shortcut.1.running_var",
        "segnet.decoder1.0.conv2.bias": "head.decoder.conv2.bias",
        "segnet.pred_small.weight": "head.predictor.weight",
    }
    for theirs, ours in pairs.items():
        assert torch.equal(converted[ours], release_state_dict[theirs]), theirs
    # the older files name the SegModule pose2seg.seg_branch
    older = {k.replace("segnet.", "pose2seg.seg_branch.", 1): v for k, v in release_state_dict.items()}
    again = convert_release_state_dict(older, release_model_state)
    assert again.keys() == converted.keys() and all(torch.equal(again[k], converted[k]) for k in converted)


def test_converter_names_unknown_missing_and_misshapen_keys(release_state_dict, release_model_state):
    from pose2seg_d2.release import ReleaseCheckpointError, convert_release_state_dict

    unknown = dict(release_state_dict, **{"backbone.layer5.0.conv1.weight": torch.zeros(1), "extra.num_batches_tracked": torch.zeros(1)})
    with pytest.raises(ReleaseCheckpointError, match=r"2 unknown key\(s\).*backbone\.layer5\.0\.conv1\.weight.*extra\.num_batches_tracked"):
        convert_release_state_dict(unknown, release_model_state)
    missing = {k: v for k, v in release_state_dict.items() if k != "segnet.pred_small.bias"}
    with pytest.raises(ReleaseCheckpointError, match=r"missing from the checkpoint: \['head\.predictor\.bias'\]"):
        convert_release_state_dict(missing, release_model_state)
    no_skeleton = dict(release_state_dict, **{"segnet.conv1.weight": torch.zeros(256, 256, 7, 7)})
    with pytest.raises(ReleaseCheckpointError, match=r"head\.stem\.weight: checkpoint \(256, 256, 7, 7\), model \(256, 311, 7, 7\).*NoSkeletonFeatures"):
        convert_release_state_dict(no_skeleton, release_model_state)


def test_convert_tool_reports_errors_and_writes_nothing(release_state_dict, tmp_path, capsys):
    tool = load_tool("convert_release_checkpoint")
    src, dst = tmp_path / "bad.pkl", tmp_path / "out.pth"
    torch.save({k: v for k, v in release_state_dict.items() if not k.startswith("segnet.layer1.3.")}, src)
    assert tool.main([str(src), str(dst)]) == 1
    err = capsys.readouterr().err
    assert "bad.pkl" in err and "head.units.3.conv1.weight" in err
    assert not dst.exists()
    (tmp_path / "text.pkl").write_text("not a checkpoint")
    assert tool.main([str(tmp_path / "text.pkl"), str(dst)]) == 1
    assert "cannot be read as a PyTorch state dict" in capsys.readouterr().err
    assert tool.main([str(tmp_path / "nope.pkl"), str(dst)]) == 1
    assert "nope.pkl: no such file" in capsys.readouterr().err
    assert not dst.exists()


# ---------------------------------------------------------------------------- configs and weights
@pytest.mark.parametrize("config", [RELEASE_CONFIG, COCO_CONFIG])
def test_config_infers_with_no_dataset_on_disk(config, tmp_path, monkeypatch):
    from pose2seg_d2.engine import Pose2SegPredictor

    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "no_datasets"))
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(4)
    image, people = make_scene(rng, 120, 160, 2)
    results = [{"image_id": 7, "category_id": 1, "keypoints": np.where(p[:, 2:] > 0, p, 0).ravel().tolist(), "score": 1.0}
               for p in people]  # fmt: skip
    (tmp_path / "keypoints.json").write_text(json.dumps(results))
    cfg = load_config(config, [
        "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "MODEL.POSE2SEG.KEYPOINT_SOURCE", "json",
        "MODEL.POSE2SEG.KEYPOINTS_FILE", str(tmp_path / "keypoints.json"),
    ])  # fmt: skip
    assert cfg.MODEL.POSE2SEG.TEMPLATES_FILE == "pose2seg_d2://templates_coco_release.json"
    instances = Pose2SegPredictor(cfg)(image, image_id=7)["instances"]
    assert len(instances) == 2 and instances.pred_masks.shape == (2, 120, 160)
    assert os.listdir(tmp_path) == ["keypoints.json"]  # nothing looked for or written elsewhere


def test_r50_configs_start_from_imagenet_weights_and_say_what_to_do_offline(monkeypatch, tmp_path):
    from detectron2.utils.file_io import PathManager

    from pose2seg_d2.engine import AtomicDetectionCheckpointer, Pose2SegPredictor, WeightsUnavailableError

    mask_rcnn = os.path.join(REPO, "configs", "mask_rcnn_R_50_FPN_coco_persons.yaml")
    for config in (COCO_CONFIG, mask_rcnn):
        assert load_config(config).MODEL.WEIGHTS == "detectron2://ImageNetPretrained/MSRA/R-50.pkl"

    def no_internet(path, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(PathManager, "get_local_path", no_internet)
    expected = (
        r"MODEL\.WEIGHTS detectron2://ImageNetPretrained/MSRA/R-50\.pkl could not be downloaded.*"
        r"https://dl\.fbaipublicfiles\.com/detectron2/ImageNetPretrained/MSRA/R-50\.pkl.*"
        r"MODEL\.WEIGHTS /path/to/a/local/copy, or MODEL\.WEIGHTS \"\""
    )
    with pytest.raises(WeightsUnavailableError, match=expected):
        Pose2SegPredictor(load_config(COCO_CONFIG, ["MODEL.DEVICE", "cpu"]))
    with pytest.raises(WeightsUnavailableError, match=expected):
        AtomicDetectionCheckpointer(torch.nn.Linear(1, 1)).load("detectron2://ImageNetPretrained/MSRA/R-50.pkl")
    with pytest.raises(WeightsUnavailableError, match=r"missing\.pth: no such file"):
        AtomicDetectionCheckpointer(torch.nn.Linear(1, 1)).load(str(tmp_path / "missing.pth"))


def test_template_options():
    from pose2seg_d2.modeling import build_aligner

    assert os.path.isfile(TEMPLATES)
    cfg = load_config(RELEASE_CONFIG)
    assert build_aligner(cfg).templates.mirror == "swap_rows"
    assert build_aligner(cfg).fallback == "whole_map"
    cfg.MODEL.POSE2SEG.TEMPLATE_MIRROR = "geometric"
    aligner = build_aligner(cfg)
    assert aligner.templates.mirror == "geometric" and len(aligner.templates) == 6


def test_release_model_trains_a_step():
    from detectron2.modeling import build_model
    from detectron2.structures import BitMasks, Instances, Keypoints

    from pose2seg_d2.engine import takes_keypoints

    cfg = load_config(RELEASE_CONFIG, [
        "MODEL.DEVICE", "cpu", "MODEL.RESNETS.DEPTH", 18, "MODEL.RESNETS.RES2_OUT_CHANNELS", 64,
        "MODEL.RESNETS.NORM", "BN", "MODEL.FPN.OUT_CHANNELS", 32, "MODEL.POSE2SEG.RELEASE_INPUT_SIZE", 128,
        "MODEL.POSE2SEG.WINDOW_SIZE", (32, 32), "MODEL.POSE2SEG.SEG_MODULE.NORM", "BN",
        "MODEL.POSE2SEG.SEG_MODULE.NUM_UNITS", 2, "MODEL.POSE2SEG.SEG_MODULE.STEM_CHANNELS", 32,
        "MODEL.POSE2SEG.SEG_MODULE.BOTTLENECK_CHANNELS", 16, "MODEL.POSE2SEG.SEG_MODULE.UNIT_OUT_CHANNELS", 32,
        "MODEL.POSE2SEG.SEG_MODULE.DECODER_BOTTLENECK_CHANNELS", 16, "MODEL.POSE2SEG.SEG_MODULE.DECODER_OUT_CHANNELS", 32,
    ])  # fmt: skip
    assert takes_keypoints(cfg)
    model = build_model(cfg).train()
    rng = np.random.default_rng(5)
    inputs = []
    for h, w in ((90, 150), (160, 70)):
        image, people = make_scene(rng, h, w, 2)
        instances = Instances((h, w))
        kp = torch.from_numpy(people).clone()
        kp[..., :2] += 0.5
        instances.gt_keypoints = Keypoints(kp)
        masks = np.zeros((2, h, w), bool)
        masks[:, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = True
        instances.gt_masks = BitMasks(torch.from_numpy(masks))
        inputs.append({"image": torch.from_numpy(image[..., ::-1].copy()).permute(2, 0, 1).float(), "instances": instances})
    losses = model(inputs)
    assert torch.isfinite(losses["loss_mask"])
    losses["loss_mask"].backward()
    assert model.head.stem.weight.grad.abs().sum() > 0
    assert model.backbone.fpn_lateral2.weight.grad.abs().sum() > 0


def test_release_model_lays_out_its_inputs_as_channels_last_asks(monkeypatch):
    """MODEL.POSE2SEG.CHANNELS_LAST reaches the release's input warp and window inputs as it
    reaches Pose2Seg's (on CUDA it decides their layout; on the CPU they are channels-last)."""
    from detectron2.modeling import build_model

    import pose2seg_d2.modeling.meta_arch as base
    import pose2seg_d2.release.meta_arch as release
    from pose2seg_d2.utils import to_network_layout

    from .test_host_syncs import make_input

    asked = []

    def recording(tensor, channels_last=False):
        asked.append(channels_last)
        return to_network_layout(tensor, channels_last)

    monkeypatch.setattr(base, "to_network_layout", recording)
    monkeypatch.setattr(release, "to_network_layout", recording)
    for channels_last in (False, True):
        cfg = load_config(RELEASE_CONFIG, [
            "MODEL.DEVICE", "cpu", "MODEL.RESNETS.DEPTH", 18, "MODEL.RESNETS.RES2_OUT_CHANNELS", 64,
            "MODEL.FPN.OUT_CHANNELS", 32, "MODEL.POSE2SEG.RELEASE_INPUT_SIZE", 64, "MODEL.POSE2SEG.WINDOW_SIZE", (16, 16),
            "MODEL.POSE2SEG.SEG_MODULE.NUM_UNITS", 1, "MODEL.POSE2SEG.CHANNELS_LAST", channels_last,
        ])  # fmt: skip
        model = build_model(cfg).eval()
        asked.clear()
        with torch.no_grad():
            (out,) = model([make_input(2, 0)])
        assert len(out["instances"]) == 2
        assert asked == [channels_last, channels_last]  # the input, the skeleton channels
        assert model.head.stem.weight.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_readme_commands_evaluate_and_segment_with_the_converted_checkpoint(release_setup, tmp_path):
    """README "The release's trained model": train_net.py --eval-only (on a tiny dataset standing
    in for OCHuman) and demo.py with a keypoint results file, on the converted checkpoint."""
    from detectron2.engine import default_argument_parser

    import train_net

    from .fixtures import register_tiny_person_dataset

    register_tiny_person_dataset("release_tiny_persons", str(tmp_path / "tiny"), num_images=3)
    args = default_argument_parser().parse_args([
        "--config-file", RELEASE_CONFIG, "--eval-only", "MODEL.WEIGHTS", release_setup["converted"],
        "MODEL.DEVICE", "cpu", "DATASETS.TEST", "('release_tiny_persons',)", "OUTPUT_DIR", str(tmp_path / "eval"),
    ])  # fmt: skip
    segm = train_net.main(args)["segm"]
    assert all(0.0 <= segm[k] <= 100.0 for k in ("AP", "AP50", "AP75"))

    image, people = release_setup["scenes"][2]
    (tmp_path / "photos").mkdir()
    cv2.imwrite(str(tmp_path / "photos" / "000003.png"), image)  # image_id 3 of the results file
    spec = importlib.util.spec_from_file_location("pose2seg_demo", os.path.join(REPO, "demo.py"))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    status = demo.main([
        "--config-file", RELEASE_CONFIG, "--input", str(tmp_path / "photos"), "--output", str(tmp_path / "out"),
        "--keypoints", release_setup["keypoints_file"], "--opts", "MODEL.WEIGHTS", release_setup["converted"],
        "MODEL.DEVICE", "cpu",
    ])  # fmt: skip
    assert status == 0
    drawn = cv2.imread(str(tmp_path / "out" / "000003.png"))
    assert drawn.shape == image.shape and np.abs(drawn.astype(int) - image).sum() > 0
