"""The bottom-up keypoint estimator: decoding, losses, the "bottom_up" source inside Pose2Seg and
demo.py, training through the trainer, evaluation by keypoint AP and its results file."""
import copy
import importlib.util
import json
import logging
import math
import os

import cv2
import numpy as np
import pytest
import torch
from detectron2.config import configurable, get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone, build_model
from torch import nn

from pose2seg_d2.config import add_pose2seg_config
from pose2seg_d2.data import Pose2SegDatasetMapper
from pose2seg_d2.engine import Pose2SegTrainer, save_partial_checkpoint
from pose2seg_d2.modeling import JSONKeypointSource, load_keypoint_results
from pose2seg_d2.modeling.bottom_up import (
    BOTTOM_UP_HEAD_REGISTRY,
    AssociativeEmbeddingHead,
    COCO_JOINT_ORDER,
    decode_persons,
    heatmap_focal_loss,
    heatmap_targets,
    joint_pixels,
    tag_losses,
    values_at_joints,
    pixel_positions,
    visibility_loss,
)
from pose2seg_d2.pose import COCO_PERSON_FLIP_MAP, COCO_PERSON_KEYPOINT_NAMES, COCO_PERSON_LIMBS

from .fixtures import register_tiny_person_dataset, tiny_pose2seg_cfg, write_templates

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
K = 17
STRIDE = 4
IMAGE_SIZE = (96, 128)  # (height, width): a 24 x 32 map at stride 4
MAP_SIZE = (IMAGE_SIZE[0] // STRIDE, IMAGE_SIZE[1] // STRIDE)
SIGMA = 2.0

# A standing figure in feature pixels (x, y) from its top-left corner: nose, eyes, ears,
# shoulders, elbows, wrists, hips, knees, ankles.
FIGURE = np.array([
    [2, 1], [1, 0], [3, 0], [0, 1], [4, 1],
    [0, 3], [4, 3], [0, 6], [4, 6], [0, 9], [4, 9],
    [1, 8], [3, 8], [1, 11], [3, 11], [1, 14], [3, 14],
], dtype=np.float64)  # fmt: skip


def hand_made_persons():
    """
    Three persons on the 24 x 32 map, in feature pixels: A, whole; B, overlapping A (every joint
    two pixels right of and one below A's: where A's and B's joints interleave, only the tags
    tell them apart), its wrists not labeled; C, its left ankle below the image. Each has a tag
    and a few covered joints (v = 1).
    """
    a = FIGURE + [3, 2]
    b = FIGURE + [5, 3]
    b[[9, 10]] = np.nan
    c = FIGURE + [20, 9]
    c[15] = [21, 25]  # row 25 of a 24-row map: outside the image
    covered = {0: [9], 1: [0, 5], 2: [14]}
    persons = []
    for n, (joints, tag) in enumerate(((a, 0.0), (b, 2.0), (c, -2.0))):
        v = np.where(np.isnan(joints[:, 0]), 0, 2)
        v[covered[n]] = 1
        inside = (joints[:, 0] >= 0) & (joints[:, 0] < MAP_SIZE[1]) & (joints[:, 1] >= 0) & (joints[:, 1] < MAP_SIZE[0])
        persons.append({"joints": joints, "tag": tag, "v": v, "inside": inside & (v > 0)})
    return persons


def input_keypoints(person):
    """(17, 3) of (x, y, v) in input-image continuous coordinates: feature pixel j is centered
    at input STRIDE * (j + 0.5); (0, 0, 0) for joints not labeled."""
    out = np.zeros((K, 3), np.float32)
    labeled = person["v"] > 0
    out[labeled, :2] = (person["joints"][labeled] + 0.5) * STRIDE
    out[labeled, 2] = person["v"][labeled]
    return out


def expected_detection(person):
    """(17, 3) of (x, y, v) as a perfect decoding gives it: the joints inside the image."""
    out = input_keypoints(person)
    out[~person["inside"]] = 0.0
    return out


def perfect_maps(persons, size=MAP_SIZE, seed=0, blob=True):
    """
    The head's maps as a perfect estimator gives them, drawn independently of the package: a
    Gaussian (SIGMA) at every joint inside the image, the persons merged by maximum; each joint
    pixel holding its person's tag and a visibility logit of +4 (visible) or -4 (covered); noise
    elsewhere, and a weak blob (0.05, below any detection threshold used here) far from all.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    heat = np.zeros((K, h, w))
    tags = rng.uniform(-6, 6, (K, 1, h, w))
    visibility = rng.normal(0, 3, (K, h, w))
    yy, xx = np.mgrid[:h, :w]
    for person in persons:
        for k in np.flatnonzero(person["inside"]):
            x, y = person["joints"][k]
            heat[k] = np.maximum(heat[k], np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * SIGMA**2)))
            tags[k, 0, int(y), int(x)] = person["tag"]
            visibility[k, int(y), int(x)] = 4.0 if person["v"][k] == 2 else -4.0
    if blob:
        heat[3, h - 4, 14] = max(heat[3, h - 4, 14], 0.05)
    as_tensor = lambda a: torch.tensor(a, dtype=torch.float32)[None]  # noqa: E731
    return {"heatmaps": as_tensor(heat), "tags": as_tensor(tags), "visibility_logits": as_tensor(visibility)}


DECODING = {"max_persons": 30, "detection_threshold": 0.1, "tag_threshold": 1.0, "joint_order": COCO_JOINT_ORDER}


# ---------------------------------------------------------------------------- decoding
def test_decoding_recovers_hand_made_skeletons_exactly():
    persons = hand_made_persons()
    decoded = decode_persons(perfect_maps(persons), [IMAGE_SIZE], STRIDE, **DECODING)[0]
    # scores: the mean over the 17 joints of the found ones' peak values (1): A 17, C 16, B 15
    assert decoded["scores"].tolist() == pytest.approx([1.0, 16 / 17, 15 / 17])
    for person, keypoints, visibility in zip(
        (persons[0], persons[2], persons[1]), decoded["keypoints"], decoded["visibility"]
    ):  # fmt: skip
        expected = expected_detection(person)
        found = expected[:, 2] > 0
        np.testing.assert_array_equal(keypoints[found, :2].numpy(), expected[found, :2])
        np.testing.assert_array_equal(keypoints[found, 2].numpy(), 1.0)
        np.testing.assert_array_equal(keypoints[~found].numpy(), 0.0)  # missing and outside: (0, 0, 0)
        np.testing.assert_array_equal((visibility[found] > 0.5).numpy(), expected[found, 2] == 2)
        np.testing.assert_array_equal(visibility[~found].numpy(), 0.0)


def test_decoding_takes_no_peak_from_the_padding_and_keeps_sizes_per_image():
    persons = hand_made_persons()
    maps = perfect_maps(persons)
    # a batch of two: the second image is smaller, its map padded; a strong blob in its padding
    padded = {name: torch.cat([m, m.clone()]) for name, m in maps.items()}
    padded["heatmaps"][1, :, 20:, :] = 0.0
    padded["heatmaps"][1, :, 22, 5] = 5.0
    small = (80, IMAGE_SIZE[1])  # 20 rows of the map
    out = decode_persons(padded, [IMAGE_SIZE, small], STRIDE, **DECODING)
    assert len(out[0]["scores"]) == 3
    assert (out[1]["keypoints"][..., 1] <= small[0]).all()
    assert not ((out[1]["keypoints"][..., 0] == 22.0) & (out[1]["keypoints"][..., 1] == 90.0)).any()


def test_decoding_refines_a_quarter_pixel_toward_the_higher_neighbor():
    heat = torch.zeros(1, K, 8, 8)
    heat[0, 0, 4, 4] = 1.0
    heat[0, 0, 4, 5] = 0.6  # right neighbor higher than the left one
    heat[0, 0, 3, 4] = 0.2  # upper neighbor higher than the lower one
    outputs = {"heatmaps": heat, "tags": torch.zeros(1, K, 1, 8, 8), "visibility_logits": torch.zeros(1, K, 8, 8)}
    out = decode_persons(outputs, [(32, 32)], STRIDE, **DECODING)[0]
    assert out["keypoints"][0, 0].tolist() == [(4.25 + 0.5) * STRIDE, (3.75 + 0.5) * STRIDE, 1.0]
    plain = decode_persons(outputs, [(32, 32)], STRIDE, **DECODING, refine=False)[0]
    assert plain["keypoints"][0, 0].tolist() == [(4 + 0.5) * STRIDE, (4 + 0.5) * STRIDE, 1.0]


# ---------------------------------------------------------------------------- losses
def reference_pull_push(tags, usable, batch_index, push_sigma=1.0):
    """The grouping loss written out person by person and pair by pair."""
    pulls, pushes = {}, {}
    images = sorted(set(batch_index.tolist()))
    for i in images:
        members = [p for p in range(len(tags)) if batch_index[p] == i and usable[p].any()]
        refs = [tags[p][usable[p]].mean(0) for p in members]
        if members:
            pulls[i] = np.mean([((tags[p][usable[p]] - r) ** 2).sum(-1).mean() for p, r in zip(members, refs)])
        pairs = [(a, b) for a in range(len(refs)) for b in range(len(refs)) if a != b]
        if pairs:
            pushes[i] = np.mean([math.exp(-float(((refs[a] - refs[b]) ** 2).sum()) / (2 * push_sigma**2)) for a, b in pairs])
    mean = lambda d: float(np.mean(list(d.values()))) if d else 0.0  # noqa: E731
    return mean(pulls), mean(pushes)


def person_tags(values, num_joints=K):
    return torch.tensor(values, dtype=torch.float64)[:, None, None].expand(len(values), num_joints, 1).clone()


def test_pull_is_zero_for_perfect_tags_and_grows_as_two_persons_exchange_tags():
    tags = person_tags([0.0, 2.0, -2.0])
    usable = torch.ones(3, K, dtype=torch.bool)
    usable[1, 9:11] = False
    batch_index = torch.zeros(3, dtype=torch.long)
    pull, _ = tag_losses(tags, usable, batch_index, 1)
    assert pull.item() == 0.0
    previous = 0.0
    for exchanged_joints in range(1, 7):
        mixed = tags.clone()
        j = slice(0, exchanged_joints)
        mixed[0, j], mixed[1, j] = tags[1, j], tags[0, j]
        pull, _ = tag_losses(mixed, usable, batch_index, 1)
        assert pull.item() > previous
        assert pull.item() == pytest.approx(reference_pull_push(mixed, usable, batch_index)[0], rel=1e-9)
        previous = pull.item()


def test_push_falls_as_persons_tags_move_apart():
    usable = torch.ones(3, K, dtype=torch.bool)
    batch_index = torch.zeros(3, dtype=torch.long)
    pushes = []
    for gap in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0):
        tags = person_tags([0.0, gap, 2 * gap])
        _, push = tag_losses(tags, usable, batch_index, 1)
        assert push.item() == pytest.approx(reference_pull_push(tags, usable, batch_index)[1], rel=1e-9)
        pushes.append(push.item())
    assert pushes[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(pushes, pushes[1:])), pushes
    assert pushes[-1] < 1e-3


def test_tag_losses_keep_images_apart():
    # image 0: two persons far apart; image 1: one person with the same tag as image 0's first
    # (no pair, no push); a person without usable joints takes no part
    tags = person_tags([0.0, 5.0, 0.0, 0.0])
    usable = torch.ones(4, K, dtype=torch.bool)
    usable[3] = False
    batch_index = torch.tensor([0, 0, 1, 1])
    pull, push = tag_losses(tags, usable, batch_index, 2)
    assert pull.item() == 0.0
    assert push.item() == pytest.approx(math.exp(-12.5), rel=1e-9)
    tags[2, :3] = 1.0  # image 1's person now has spread tags
    expected = reference_pull_push(tags, usable, batch_index)
    pull, push = tag_losses(tags, usable, batch_index, 2)
    assert (pull.item(), push.item()) == pytest.approx(expected, rel=1e-9)


def test_values_at_joints_reads_each_persons_pixels():
    b, c, h, w = 2, 3, 5, 7
    maps = torch.arange(b * K * c * h * w, dtype=torch.float32).reshape(b, K, c, h, w)
    batch_index = torch.tensor([1, 0, 1])
    joint_index = torch.randint(0, h * w, (3, K), generator=torch.Generator().manual_seed(0))
    got = values_at_joints(maps, batch_index, joint_index)
    for p in range(3):
        for k in range(K):
            y, x = divmod(int(joint_index[p, k]), w)
            assert got[p, k].tolist() == maps[batch_index[p], k, :, y, x].tolist()


def test_joint_pixels_and_targets_agree_on_where_a_joint_is():
    persons = hand_made_persons()
    keypoints = torch.tensor(np.stack([input_keypoints(p) for p in persons]))
    index, usable = joint_pixels(keypoints, MAP_SIZE, STRIDE)
    expected_usable = torch.tensor(np.stack([p["inside"] for p in persons]))
    assert torch.equal(usable, expected_usable)
    # the heatmap targets of the joints inside the image are the perfect maps' heatmaps
    keypoints[~usable] = 0.0
    heat = heatmap_targets(keypoints, torch.zeros(3, dtype=torch.long), 1, MAP_SIZE, STRIDE, SIGMA)
    np.testing.assert_allclose(heat.numpy(), perfect_maps(persons, blob=False)["heatmaps"].numpy(), atol=1e-6)
    # every usable joint's pixel is where its Gaussian peaks, at 1
    values = values_at_joints(heat[:, :, None], torch.zeros(3, dtype=torch.long), index)[..., 0]
    assert torch.allclose(values[usable], torch.ones(int(usable.sum())))


def test_visibility_loss_counts_labeled_joints_only():
    logits = torch.tensor([[3.0, -3.0, 50.0]])
    visible = torch.tensor([[1.0, 0.0, 0.0]])
    usable = torch.tensor([[True, True, False]])
    expected = -math.log(1 / (1 + math.exp(-3.0)))
    assert visibility_loss(logits, visible, usable).item() == pytest.approx(expected, rel=1e-6)


def test_losses_of_perfect_maps_and_of_a_batch_without_persons():
    from detectron2.structures import Instances, Keypoints

    from pose2seg_d2.modeling.bottom_up import BottomUpKeypoints

    model = object.__new__(BottomUpKeypoints)  # the losses need only these attributes
    nn.Module.__init__(model)
    model.stride, model.heatmap_sigma, model.heatmap_loss = STRIDE, SIGMA, "mse"
    model.loss_options = {
        "heatmap_positive_weight": 9.0, "heatmap": 1.0, "pull": 1.0, "push": 1.0, "push_sigma": 1.0, "visibility": 1.0,
    }  # fmt: skip
    persons = hand_made_persons()
    keypoints = torch.tensor(np.stack([input_keypoints(p) for p in persons]))
    keypoints[~torch.tensor(np.stack([p["inside"] for p in persons]))] = 0.0  # as the mapper unlabels them
    with_persons = Instances(IMAGE_SIZE, gt_keypoints=Keypoints(keypoints))
    losses = model.losses(perfect_maps(persons, blob=False), [with_persons])
    assert losses["loss_heatmap"].item() == pytest.approx(0.0, abs=1e-12)
    assert losses["loss_pull"].item() == 0.0
    assert losses["loss_push"].item() == pytest.approx(np.mean([math.exp(-2.0), math.exp(-2.0), math.exp(-8.0)]))
    assert losses["loss_visibility"].item() < 0.02  # logits of +-4 at every labeled joint
    maps = {name: m.clone().requires_grad_() for name, m in perfect_maps(persons).items()}
    empty = [Instances(IMAGE_SIZE)]  # no gt_keypoints at all, as Detectron2 maps an image without persons
    losses = model.losses(maps, empty)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_pull"].item() == losses["loss_push"].item() == losses["loss_visibility"].item() == 0.0
    sum(losses.values()).backward()
    assert all(m.grad is not None for m in maps.values())


# ---------------------------------------------------------------------------- models
class ReplayHead(nn.Module):
    """A bottom-up head whose maps are :func:`perfect_maps` of the hand-made persons whatever
    its features (at their size); it records the features it is given."""

    seen = []

    @configurable
    def __init__(self, *, num_keypoints, stride):
        super().__init__()
        self.num_keypoints, self.tag_dim, self.stride = num_keypoints, 1, stride
        self.weight = nn.Parameter(torch.zeros(()))  # something to load and to learn

    @classmethod
    def from_config(cls, cfg, input_shape):
        return {"num_keypoints": cfg.MODEL.BOTTOM_UP.NUM_KEYPOINTS, "stride": input_shape.stride}

    def forward(self, features):
        ReplayHead.seen.append(features)
        maps = perfect_maps(hand_made_persons(), tuple(features.shape[-2:]))
        return {name: m.expand(len(features), *m.shape[1:]).to(features.device) + self.weight for name, m in maps.items()}


if "ReplayHead" not in BOTTOM_UP_HEAD_REGISTRY:
    BOTTOM_UP_HEAD_REGISTRY.register(ReplayHead)


class TinyStride4Backbone(Backbone):
    """Three convolutions to a 32-channel "p2" of stride 4: a backbone that trains in seconds."""

    def __init__(self, cfg, input_shape):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        )  # fmt: skip

    def forward(self, x):
        return {"p2": self.body(x)}

    def output_shape(self):
        return {"p2": ShapeSpec(channels=32, stride=4)}


if "TinyStride4Backbone" not in BACKBONE_REGISTRY:
    BACKBONE_REGISTRY.register(TinyStride4Backbone)


def tiny_bottom_up_cfg(output_dir, train=(), test=(), *opts):
    """A BottomUpKeypoints config with the backbone of the tiny Pose2Seg config (R-18, FPN 32)."""
    cfg = get_cfg()
    add_pose2seg_config(cfg)
    cfg.merge_from_file(os.path.join(REPO, "configs", "Base-BottomUp.yaml"))
    cfg.merge_from_list([
        "MODEL.DEVICE", "cpu",
        "MODEL.RESNETS.DEPTH", 18, "MODEL.RESNETS.RES2_OUT_CHANNELS", 64, "MODEL.FPN.OUT_CHANNELS", 32,
        "MODEL.RESNETS.NORM", "BN", "MODEL.FPN.NORM", "BN",
        "MODEL.BOTTOM_UP.CONV_DIMS", (32,),
        "INPUT.MIN_SIZE_TRAIN", (96,), "INPUT.MAX_SIZE_TRAIN", 160,
        "INPUT.MIN_SIZE_TEST", 96, "INPUT.MAX_SIZE_TEST", 160,
        "DATASETS.TRAIN", tuple(train), "DATASETS.TEST", tuple(test),
        "DATALOADER.NUM_WORKERS", 0,
        "SOLVER.IMS_PER_BATCH", 2, "SOLVER.BASE_LR", 1e-3, "SOLVER.WARMUP_ITERS", 0,
        "SOLVER.MAX_ITER", 30, "SOLVER.CHECKPOINT_PERIOD", 1000,
        "TEST.EVAL_PERIOD", 0, "OUTPUT_DIR", output_dir, "SEED", 3,
        *opts,
    ])  # fmt: skip
    return cfg


def write_hand_made_dataset(root):
    """One 96 x 128 image with the hand-made persons drawn as sticks, and its COCO json (keypoints
    in COCO's pixel indices; C's ankle outside the image unlabeled, as COCO labels it)."""
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    image = np.full((*IMAGE_SIZE, 3), 30, np.uint8)
    annotations = []
    for n, person in enumerate(hand_made_persons()):
        keypoints = input_keypoints(person)
        keypoints[~person["inside"]] = 0.0
        labeled = keypoints[:, 2] > 0
        for a, b in COCO_PERSON_LIMBS:
            if labeled[a] and labeled[b]:
                ends = [tuple(int(v) for v in keypoints[j, :2]) for j in (a, b)]
                cv2.line(image, *ends, (80 + 60 * n,) * 3, 3)
        coco = keypoints.copy()
        coco[labeled, :2] -= 0.5  # continuous -> COCO pixel indices
        x0, y0 = keypoints[labeled, :2].min(0) - 4
        x1, y1 = keypoints[labeled, :2].max(0) + 4
        annotations.append({
            "id": n + 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
            "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], "area": float((x1 - x0) * (y1 - y0) / 2),
            "keypoints": coco.reshape(-1).tolist(), "num_keypoints": int(labeled.sum()),
        })  # fmt: skip
    cv2.imwrite(os.path.join(root, "images", "000001.png"), image)
    data = {
        "images": [{"id": 1, "file_name": "000001.png", "height": IMAGE_SIZE[0], "width": IMAGE_SIZE[1]}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO_PERSON_KEYPOINT_NAMES),
                        "skeleton": [[a + 1, b + 1] for a, b in COCO_PERSON_LIMBS]}],
    }  # fmt: skip
    path = os.path.join(root, "annotations.json")
    with open(path, "w") as f:
        json.dump(data, f)
    return path


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    """The hand-made dataset registered, a replay bottom-up model's checkpoint and config, and a
    Pose2Seg checkpoint holding the same backbone."""
    root = tmp_path_factory.mktemp("bottom_up")
    name = "bottom_up_hand_made"
    json_file = write_hand_made_dataset(str(root / "data"))
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_coco_instances(name, {}, json_file, str(root / "data" / "images"))
    MetadataCatalog.get(name).set(
        keypoint_names=list(COCO_PERSON_KEYPOINT_NAMES), keypoint_flip_map=list(COCO_PERSON_FLIP_MAP.items()),
        thing_classes=["person"],
    )  # fmt: skip
    torch.manual_seed(0)
    bu_cfg = tiny_bottom_up_cfg(str(root / "bu"), (name,), (name,), "MODEL.BOTTOM_UP.HEAD_NAME", "ReplayHead")
    bottom_up = build_model(bu_cfg)
    bu_weights = root / "bottom_up.pth"
    torch.save({"model": bottom_up.state_dict()}, bu_weights)
    bu_config = root / "bottom_up.yaml"
    bu_cfg.DATASETS.TRAIN, bu_cfg.DATASETS.TEST = (), ()
    bu_config.write_text(bu_cfg.dump())
    templates = write_templates(str(root / "templates.json"))
    p2s_cfg = tiny_pose2seg_cfg(str(root / "p2s"), name, name, templates)
    pose2seg = build_model(p2s_cfg)
    pose2seg.backbone.load_state_dict(bottom_up.backbone.state_dict())
    p2s_weights = root / "pose2seg.pth"
    torch.save({"model": pose2seg.state_dict()}, p2s_weights)
    # the head alone, shipped over the full checkpoint, with its training record
    heads = root / "heads" / "bottom_up_heads.pth"
    save_partial_checkpoint(str(heads), bottom_up.state_dict(), str(bu_weights))
    (root / "heads" / "bottom_up_heads.json").write_text(
        json.dumps({"command": "python tools/ship_heads.py", "iterations": 123, "train_seconds": 45.6})
    )
    return {
        "root": root, "dataset": name, "templates": templates, "bu_cfg": bu_cfg, "bu_config": str(bu_config),
        "bu_weights": str(bu_weights), "p2s_weights": str(p2s_weights), "heads": str(heads),
    }  # fmt: skip


def pose2seg_with_source(hand, share_backbone, *opts):
    cfg = tiny_pose2seg_cfg(str(hand["root"] / "p2s"), hand["dataset"], hand["dataset"], hand["templates"])
    cfg.merge_from_list([
        "MODEL.WEIGHTS", hand["p2s_weights"], "MODEL.POSE2SEG.KEYPOINT_SOURCE", "bottom_up",
        "MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE", hand["bu_config"],
        "MODEL.POSE2SEG.KEYPOINT_MODEL.WEIGHTS", hand["bu_weights"],
        "MODEL.POSE2SEG.KEYPOINT_MODEL.SHARE_BACKBONE", share_backbone, *opts,
    ])  # fmt: skip
    model = Pose2SegTrainer.build_model(cfg)
    from detectron2.checkpoint import DetectionCheckpointer

    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    return cfg, model.eval()


def assert_persons_are_the_hand_made_ones(keypoints):
    """``keypoints`` (3, 17, 3) of (x, y, v) in any order: the hand-made persons as detected,
    with each found joint's v (2 visible, 1 covered) as annotated."""
    expected = [expected_detection(p) for p in hand_made_persons()]
    keypoints = keypoints.detach().cpu().numpy()
    assert len(keypoints) == len(expected)
    for e in expected:
        matches = [k for k in keypoints if np.array_equal(k, e)]
        assert len(matches) == 1, (e, keypoints)


@pytest.mark.parametrize("share_backbone", [True, False])
def test_source_persons_pass_through_pose2seg_forward(hand, share_backbone):
    cfg, model = pose2seg_with_source(hand, share_backbone, "MODEL.POSE2SEG.SCORE", "person")
    source = model.keypoint_source
    assert hasattr(source.model, "backbone") != share_backbone  # shared: the source holds no backbone
    inputs = [Pose2SegDatasetMapper(cfg, False)(d) for d in DatasetCatalog.get(hand["dataset"])]
    passes = []
    handle = model.backbone.register_forward_hook(lambda module, args, output: passes.append(output))
    ReplayHead.seen.clear()
    try:
        with torch.no_grad():
            instances = model(inputs)[0]["instances"]
    finally:
        handle.remove()
    assert len(passes) == 1 and len(ReplayHead.seen) == 1
    if share_backbone:  # the head ran on Pose2Seg's own p2: one backbone pass from image to masks
        assert ReplayHead.seen[0] is passes[0]["p2"]
    assert_persons_are_the_hand_made_ones(instances.pred_keypoints)
    assert instances.pred_masks.shape == (3, *IMAGE_SIZE)  # one mask per person (random weights: maybe empty)
    # SCORE "person": each mask scores its person's score, the mean of its 17 joint scores
    assert instances.scores.tolist() == pytest.approx([1.0, 16 / 17, 15 / 17])


def test_a_shipped_head_gives_the_images_alone_row_on_pose2segs_own_backbone(hand, tmp_path):
    import sys

    sys.path.insert(0, os.path.join(REPO, "tools"))
    import compare

    p2s_config = tmp_path / "pose2seg.yaml"
    p2s = tiny_pose2seg_cfg(str(tmp_path / "p2s"), hand["dataset"], hand["dataset"], hand["templates"])
    p2s_config.write_text(p2s.dump())
    bu_config = tmp_path / "bottom_up.yaml"  # with its training set, as a trained model's config has
    bu = hand["bu_cfg"].clone()
    bu.DATASETS.TRAIN = (hand["dataset"],)
    bu_config.write_text(bu.dump())
    args = compare.parse_args([
        "--pose2seg-config", str(p2s_config), "--mask-rcnn-config", "unused", "--datasets", hand["dataset"],
        "--output-dir", str(tmp_path / "out"), "--pose2seg-weights", hand["p2s_weights"],
        "--keypoint-config", str(bu_config), "--keypoint-weights", hand["heads"],
    ])  # fmt: skip
    notes, extra = [], {}
    row = compare._images_alone_row(args, args.keypoint_config[0], args.keypoint_weights[0], True, notes, extra)
    name, keypoints, label, cfg, model, iters, seconds = row
    # one of several keypoint models: the row and its folders say which
    assert (name, keypoints, label) == ("pose2seg", "predicted", "Pose2Seg (images alone, bottom-up)")
    assert os.path.isfile(tmp_path / "out" / "keypoint_model_bottom_up" / "config.yaml")
    assert cfg.OUTPUT_DIR == str(tmp_path / "out" / "pose2seg_images_alone_bottom_up")
    # the train columns are the shipped head's training, from its record
    assert (iters, seconds) == (123, 45.6)
    assert extra["keypoint_models"]["bottom-up"]["shipped"]["command"] == "python tools/ship_heads.py"
    assert "its head on Pose2Seg's own backbone features" in notes[0] and "123 iterations" in notes[0]
    assert cfg.MODEL.POSE2SEG.KEYPOINT_SOURCE == "bottom_up" and cfg.MODEL.POSE2SEG.KEYPOINT_MODEL.SHARE_BACKBONE
    # the head (loaded over its base checkpoint) finds the hand-made persons exactly, and scores
    # them perfectly
    assert extra["keypoint_models"]["bottom-up"]["keypoint_AP"][hand["dataset"]] == pytest.approx(100.0)
    inputs = [Pose2SegDatasetMapper(cfg, False)(d) for d in DatasetCatalog.get(hand["dataset"])]
    passes = []
    handle = model.backbone.register_forward_hook(lambda module, args, output: passes.append(output))
    ReplayHead.seen.clear()
    try:
        with torch.no_grad():
            instances = model(inputs)[0]["instances"]
    finally:
        handle.remove()
    assert len(passes) == 1 and len(ReplayHead.seen) == 1 and ReplayHead.seen[0] is passes[0]["p2"]
    assert_persons_are_the_hand_made_ones(instances.pred_keypoints)


def test_shared_backbone_must_hold_the_bottom_up_models_weights(hand):
    cfg, model = pose2seg_with_source(hand, True)
    inputs = [Pose2SegDatasetMapper(cfg, False)(d) for d in DatasetCatalog.get(hand["dataset"])]
    with torch.no_grad():
        model(inputs)
        model.backbone.fpn_output2.weight.add_(0.01)  # Pose2Seg's backbone changes: checked again
        with pytest.raises(ValueError, match="SHARE_BACKBONE.*fpn_output2.weight"):
            model(inputs)


def test_keypoints_only_reference_refuses_a_shared_backbone(hand):
    cfg = tiny_pose2seg_cfg(str(hand["root"] / "ko"), hand["dataset"], hand["dataset"], hand["templates"])
    cfg.merge_from_list([
        "MODEL.META_ARCHITECTURE", "KeypointsOnlyMasks", "MODEL.POSE2SEG.KEYPOINT_SOURCE", "bottom_up",
        "MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE", hand["bu_config"],
        "MODEL.POSE2SEG.KEYPOINT_MODEL.WEIGHTS", hand["bu_weights"], "MODEL.POSE2SEG.KEYPOINT_MODEL.SHARE_BACKBONE", True,
    ])  # fmt: skip
    model = build_model(cfg).eval()
    inputs = [Pose2SegDatasetMapper(cfg, False)(d) for d in DatasetCatalog.get(hand["dataset"])]
    with pytest.raises(ValueError, match="SHARE_BACKBONE False"):
        model(inputs)


def load_demo():
    spec = importlib.util.spec_from_file_location("pose2seg_demo", os.path.join(REPO, "demo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_segments_the_bottom_up_models_persons(hand, tmp_path, monkeypatch, caplog):
    cfg = tiny_pose2seg_cfg(str(tmp_path / "p2s"), "unused", "unused", hand["templates"])
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = (), ()
    config = tmp_path / "pose2seg.yaml"
    config.write_text(cfg.dump())
    demo = load_demo()
    drawn = []
    draw = demo.draw
    def recording_draw(image, instances, threshold):
        drawn.append(instances)
        return draw(image, instances, threshold)

    monkeypatch.setattr(demo, "draw", recording_draw)
    image = str(hand["root"] / "data" / "images" / "000001.png")
    out = tmp_path / "out"
    args = ["--config-file", str(config), "--input", image, "--output", str(out),
            "--keypoint-config", hand["bu_config"], "--keypoint-weights", hand["bu_weights"],
            # the random-weight segmenter's masks score low: draw every person
            "--confidence-threshold", "0",
            "--opts", "MODEL.WEIGHTS", hand["p2s_weights"],
            "MODEL.POSE2SEG.KEYPOINT_MODEL.SHARE_BACKBONE", "True"]  # fmt: skip
    logger = logging.getLogger("pose2seg_d2")
    logger.addHandler(caplog.handler)
    try:
        assert demo.main(args) == 0
    finally:
        logger.removeHandler(caplog.handler)
    assert os.listdir(out) == ["000001.png"]
    assert len(drawn) == 1
    assert_persons_are_the_hand_made_ones(drawn[0].pred_keypoints)
    assert drawn[0].pred_masks.shape == (3, *IMAGE_SIZE)
    original, written = cv2.imread(image), cv2.imread(str(out / "000001.png"))
    assert written.shape == original.shape and np.abs(written.astype(int) - original).sum() > 0


# ---------------------------------------------------------------------------- options
def test_a_head_with_the_wrong_number_of_joints_names_the_option(hand, tmp_path):
    wrong = tiny_bottom_up_cfg(str(tmp_path / "w"), (hand["dataset"],), (), "MODEL.BOTTOM_UP.NUM_KEYPOINTS", 16)
    with pytest.raises(ValueError, match=r"MODEL\.BOTTOM_UP\.NUM_KEYPOINTS is 16, but dataset 'bottom_up_hand_made' has 17"):
        build_model(wrong)
    sigmas = tiny_bottom_up_cfg(str(tmp_path / "s"), (), (), "TEST.KEYPOINT_OKS_SIGMAS", [0.1] * 14)
    with pytest.raises(ValueError, match=r"MODEL\.BOTTOM_UP\.NUM_KEYPOINTS is 17, but TEST\.KEYPOINT_OKS_SIGMAS has 14"):
        build_model(sigmas)
    order = tiny_bottom_up_cfg(str(tmp_path / "o"), (), (), "MODEL.BOTTOM_UP.JOINT_ORDER", list(range(16)))
    with pytest.raises(ValueError, match=r"MODEL\.BOTTOM_UP\.JOINT_ORDER"):
        build_model(order)
    # a 16-joint bottom-up model builds without datasets, but cannot give Pose2Seg its 17 keypoints
    sixteen = tiny_bottom_up_cfg(str(tmp_path / "k"), (), (), "MODEL.BOTTOM_UP.NUM_KEYPOINTS", 16)
    config = tmp_path / "sixteen.yaml"
    config.write_text(sixteen.dump())
    build_model(sixteen)
    p2s = tiny_pose2seg_cfg(str(tmp_path / "p"), "unused", "unused", hand["templates"])
    p2s.DATASETS.TRAIN, p2s.DATASETS.TEST = (), ()
    p2s.merge_from_list(
        ["MODEL.POSE2SEG.KEYPOINT_SOURCE", "bottom_up", "MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE", str(config)]
    )
    with pytest.raises(ValueError, match=r"sixteen\.yaml: MODEL\.BOTTOM_UP\.NUM_KEYPOINTS is 16"):
        build_model(p2s)


def test_focal_heatmap_loss_rewards_sharp_peaks_at_the_joints_and_spares_their_neighbors():
    persons = hand_made_persons()
    keypoints = torch.tensor(np.stack([input_keypoints(p) for p in persons]))
    batch_index = torch.zeros(len(persons), dtype=torch.long)
    target = heatmap_targets(keypoints, batch_index, 1, MAP_SIZE, STRIDE, SIGMA)
    index, usable = joint_pixels(keypoints, MAP_SIZE, STRIDE)
    positive = torch.zeros(1, K, MAP_SIZE[0] * MAP_SIZE[1], dtype=torch.bool)
    for p in range(len(persons)):
        positive[0, torch.arange(K)[usable[p]], index[p][usable[p]]] = True
    positive = positive.reshape(1, K, *MAP_SIZE)

    def loss(logits):
        return heatmap_focal_loss(logits, target, batch_index, index, usable).item()

    sharp = torch.where(positive, 8.0, -8.0)
    assert loss(sharp) < 1e-2
    assert loss(torch.where(positive, -8.0, -8.0)) > 50 * loss(sharp)  # the joints missed
    # a false peak one pixel from a joint costs far less than one far from every joint
    near, far = sharp.clone(), sharp.clone()
    k, y, x = [int(v) for v in torch.nonzero(positive[0])[0]]
    near[0, k, y + 1, x] = 8.0
    far_pixel = torch.nonzero(target[0, k] < 1e-6)[0]
    far[0, k, far_pixel[0], far_pixel[1]] = 8.0
    assert loss(sharp) < loss(near) < 0.1 * loss(far)
    assert heatmap_focal_loss(torch.zeros(1, K, 2, 2), torch.zeros(1, K, 2, 2), batch_index[:0], index[:0], usable[:0]).item() > 0


# ---------------------------------------------------------------------------- spatial tags
def test_pixel_positions_are_the_feature_pixels_centers_in_the_input_image():
    positions = pixel_positions((3, 5), 4)
    assert positions.shape == (2, 3, 5)
    # feature pixel (row 2, column 4) covers input [16, 20) x [8, 12): center (18, 10)
    assert positions[:, 2, 4].tolist() == [18.0, 10.0]
    assert positions[:, 0, 0].tolist() == [2.0, 2.0]


def test_spatial_tags_are_positions_plus_offsets_and_a_person_pointing_at_one_place_has_no_pull():
    head = AssociativeEmbeddingHead(in_channels=8, num_keypoints=K, tag_dim=2, conv_dims=(8,), stride=STRIDE, tag_offset_unit=32.0)
    features = torch.randn(1, 8, *MAP_SIZE)
    with torch.no_grad():
        free_tags = head.predictor(head.convs(features))[:, K : 3 * K].reshape(1, K, 2, *MAP_SIZE)
        tags = head(features)["tags"]
    torch.testing.assert_close(tags - free_tags, pixel_positions(MAP_SIZE, STRIDE)[None, None].expand_as(tags) / 32.0)

    # two persons' joints at the hand-made figure's places, each offset exactly to its own
    # center: no pull, and the push is that of the centers' distance in 32-pixel units
    persons = hand_made_persons()[:2]
    keypoints = torch.tensor(np.stack([input_keypoints(p) for p in persons]))
    index, usable = joint_pixels(keypoints, MAP_SIZE, STRIDE)
    positions = values_at_joints(pixel_positions(MAP_SIZE, STRIDE)[None, None].expand(1, K, 2, *MAP_SIZE), torch.zeros(2, dtype=torch.long), index)
    centers = torch.tensor([[30.0, 50.0], [39.0, 53.0]])
    pointing = positions / 32.0 + (centers[:, None] - positions) / 32.0
    pull, push = tag_losses(pointing, usable, torch.zeros(2, dtype=torch.long), 1)
    assert pull.item() == pytest.approx(0.0, abs=1e-10)
    assert push.item() == pytest.approx(math.exp(-((9 / 32) ** 2 + (3 / 32) ** 2) / 2), rel=1e-5)
    # without offsets the tags are the joints' own places: a person spreads over its height
    pull_positions, _ = tag_losses(positions / 32.0, usable, torch.zeros(2, dtype=torch.long), 1)
    assert pull_positions.item() > 0.1


def test_spatial_tags_need_two_numbers_per_tag():
    with pytest.raises(ValueError, match=r"MODEL\.BOTTOM_UP\.TAG_DIM must be 2, got 1"):
        AssociativeEmbeddingHead(in_channels=8, num_keypoints=K, tag_dim=1, tag_offset_unit=32.0)
    with pytest.raises(ValueError, match=r"MODEL\.BOTTOM_UP\.TAG_OFFSET_UNIT must be >= 0"):
        AssociativeEmbeddingHead(in_channels=8, num_keypoints=K, tag_dim=2, tag_offset_unit=-1.0)


# ---------------------------------------------------------------------------- training and evaluation
def test_evaluation_gives_keypoint_ap_and_a_results_file_the_json_source_reads(hand, tmp_path):
    cfg = hand["bu_cfg"].clone()
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = (hand["dataset"],), (hand["dataset"],)
    cfg.OUTPUT_DIR = str(tmp_path / "eval")
    model = Pose2SegTrainer.build_model(cfg).eval()
    results = Pose2SegTrainer.test(cfg, model)
    # the hand-made persons are the dataset's ground truth, and come out exactly: every OKS is 1
    assert results["keypoints"]["AP"] == pytest.approx(100.0)
    path = os.path.join(cfg.OUTPUT_DIR, "inference", hand["dataset"], "coco_instances_results.json")
    entries = json.load(open(path))
    assert len(entries) == 3 and all(len(e["keypoint_visibility"]) == K for e in entries)
    # the json source reads the file: the same persons, their found joints labeled with their v
    p2s = tiny_pose2seg_cfg(str(tmp_path / "p2s"), hand["dataset"], hand["dataset"], hand["templates"])
    p2s.merge_from_list(["MODEL.POSE2SEG.KEYPOINT_SOURCE", "json", "MODEL.POSE2SEG.KEYPOINTS_FILE", path])
    source = JSONKeypointSource(p2s)
    inputs = [Pose2SegDatasetMapper(p2s, False)(d) for d in DatasetCatalog.get(hand["dataset"])]
    (keypoints, scores), = source(inputs, [tuple(x["image"].shape[-2:]) for x in inputs], "cpu")
    assert_persons_are_the_hand_made_ones(keypoints)
    assert sorted(scores.tolist()) == pytest.approx(sorted([1.0, 16 / 17, 15 / 17]))
    loaded, _ = load_keypoint_results(path)
    assert np.isnan(loaded["1"][0][..., 2]).sum() == 3  # B's wrists, C's ankle: not found, unlabeled


def test_training_through_the_trainer_lowers_the_losses(tmp_path_factory, tmp_path):
    root = tmp_path_factory.mktemp("bottom_up_train")
    name = register_tiny_person_dataset("bottom_up_tiny", str(root), num_images=2, size=(64, 96))
    # two images, always the same batch, a three-convolution backbone: a sample to overfit; the
    # grouping terms weighed as much as the heatmaps, so that each one's fall shows in 30 steps
    cfg = tiny_bottom_up_cfg(
        str(tmp_path / "run"), (name,), (), "MODEL.BACKBONE.NAME", "TinyStride4Backbone",
        "MODEL.PIXEL_STD", [57.375, 57.12, 58.395], "SOLVER.MAX_ITER", 30, "SOLVER.BASE_LR", 3e-3,
        "INPUT.MIN_SIZE_TRAIN", (64,), "INPUT.RANDOM_FLIP", "none",
        "MODEL.BOTTOM_UP.HEATMAP_POSITIVE_WEIGHT", 9.0, "MODEL.BOTTOM_UP.PULL_LOSS_WEIGHT", 1.0,
        "MODEL.BOTTOM_UP.PUSH_LOSS_WEIGHT", 1.0, "MODEL.BOTTOM_UP.VISIBILITY_LOSS_WEIGHT", 1.0,
    )  # fmt: skip
    trainer = Pose2SegTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    history = trainer.storage.history
    for name in ("total_loss", "loss_heatmap", "loss_push", "loss_visibility"):
        values = [v for v, _ in history(name).values()]
        assert len(values) == 30 and all(math.isfinite(v) for v in values), name
        first, last = np.mean(values[:5]), np.mean(values[-5:])
        assert last < 0.8 * first, (name, values)
    assert os.path.isfile(tmp_path / "run" / "model_final.pth")


# ---------------------------------------------------------------------------- visibility flags
def test_predicted_flags_are_read_at_the_ground_truths_joints_and_replace_its_flags(hand):
    from pose2seg_d2.evaluation.visibility import records_with_flags, visibility_accuracy, visibility_at_joints

    cfg = hand["bu_cfg"].clone()
    cfg.DATASETS.TRAIN = (hand["dataset"],)
    model = build_model(cfg).eval()
    from detectron2.checkpoint import DetectionCheckpointer

    DetectionCheckpointer(model).load(hand["bu_weights"])
    records = DatasetCatalog.get(hand["dataset"])
    before = copy.deepcopy(records)
    probabilities = visibility_at_joints(model, cfg, records)
    persons = hand_made_persons()
    assert probabilities[0].shape == (3, K)
    for p, person in enumerate(persons):
        inside = person["inside"]
        # the replay head's logits are +4 at visible joints and -4 at covered ones
        expected = np.where(person["v"][inside] == 2, 1 / (1 + math.exp(-4)), 1 / (1 + math.exp(4)))
        np.testing.assert_allclose(probabilities[0][p, inside].numpy(), expected, rtol=1e-5)
        assert torch.isnan(probabilities[0][p, ~inside]).all()  # unlabeled or outside the image
    accuracy = visibility_accuracy(records, probabilities)
    labeled_inside = sum(int(p["inside"].sum()) for p in persons)
    covered = sum(int((p["v"][p["inside"]] == 1).sum()) for p in persons)
    assert accuracy == {
        "joints": labeled_inside, "accuracy": 1.0, "covered_fraction": pytest.approx(covered / labeled_inside),
        "covered_recall": 1.0, "visible_recall": 1.0,
    }  # fmt: skip
    # wrong flags are counted as wrong
    flipped = [1 - q for q in probabilities]
    assert visibility_accuracy(records, flipped)["accuracy"] == 0.0

    def flags(recs):
        return [np.array(a["keypoints"]).reshape(K, 3)[:, 2] for a in recs[0]["annotations"]]

    same = records_with_flags(records, probabilities)
    for got, original in zip(flags(same), flags(records)):
        np.testing.assert_array_equal(got, original)  # perfect predictions: the annotated flags
    for got, original in zip(flags(records_with_flags(records, flipped)), flags(records)):
        np.testing.assert_array_equal(got[original > 0], 3 - original[original > 0])  # 1 <-> 2
        np.testing.assert_array_equal(got[original == 0], 0)
    for got, original in zip(flags(records_with_flags(records, None)), flags(records)):
        np.testing.assert_array_equal(got, np.where(original > 0, 2, 0))
    assert records == before  # the records are untouched


def test_covered_joints_can_weigh_more_in_the_visibility_loss():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    visible = torch.tensor([[1.0, 0.0, 0.0]])
    usable = torch.tensor([[True, True, False]])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, visible, reduction="none")[0]
    assert visibility_loss(logits, visible, usable).item() == pytest.approx(((bce[0] + bce[1]) / 2).item())
    weighted = visibility_loss(logits, visible, usable, covered_weight=3.0).item()
    assert weighted == pytest.approx(((bce[0] + 3 * bce[1]) / 4).item())
