"""The keypoint sources (gt, json, model) and the per-mask scores."""
import json
import os

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.engine import DefaultPredictor
from detectron2.modeling import build_model

from pose2seg_d2.config import load_config
from pose2seg_d2.data import Pose2SegDatasetMapper
from pose2seg_d2.engine import Pose2SegPredictor
from pose2seg_d2.modeling import JSONKeypointSource, KeypointsFileError, confident_persons, load_keypoint_results
from pose2seg_d2.modeling.keypoint_sources import image_keys
from pose2seg_d2.modeling.mask_scores import mask_confidence

from .fixtures import register_tiny_person_dataset, tiny_pose2seg_cfg, write_templates

REPO = os.path.join(os.path.dirname(__file__), "..")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_kpt")
    name = register_tiny_person_dataset("tiny_kpt_sources", str(root / "data"), num_images=4)
    return {"root": root, "dataset": name, "templates": write_templates(str(root / "templates.json"))}


def coco_result(image_id, keypoints_xyv, score, confidence=0.9):
    """A results entry from COCO-style keypoints (pixel indices) with one confidence for all."""
    kpt = np.asarray(keypoints_xyv, np.float64).reshape(17, 3).copy()
    kpt[:, 2] = np.where(kpt[:, 2] > 0, confidence, 0.0)
    return {"image_id": image_id, "category_id": 1, "keypoints": kpt.reshape(-1).tolist(), "score": score}


def gt_results(tiny, scores=None):
    """Results entries made from the ground truth of the tiny dataset (COCO annotation coordinates)."""
    with open(os.path.join(str(tiny["root"]), "data", "annotations.json")) as f:
        data = json.load(f)
    entries = []
    for i, ann in enumerate(data["annotations"]):
        score = 0.9 if scores is None else scores[i]
        entries.append(coco_result(ann["image_id"], ann["keypoints"], score))
    return entries, data


def write_json(path, entries):
    with open(path, "w") as f:
        json.dump(entries, f)
    return str(path)


def json_cfg(tiny, results_file, *opts):
    cfg = tiny_pose2seg_cfg(str(tiny["root"] / "out"), tiny["dataset"], tiny["dataset"], tiny["templates"])
    cfg.merge_from_list(["MODEL.POSE2SEG.KEYPOINT_SOURCE", "json", "MODEL.POSE2SEG.KEYPOINTS_FILE", results_file, *opts])
    return cfg


def mapped(cfg, dataset):
    mapper = Pose2SegDatasetMapper(cfg, False)
    return [mapper(d) for d in DatasetCatalog.get(dataset)]


def image_sizes(inputs):
    return [tuple(x["image"].shape[-2:]) for x in inputs]


def test_json_source_gives_the_right_persons_per_image(tiny, tmp_path):
    entries, data = gt_results(tiny)
    # image 2 gets no entry at all; image 3 one more person of too low a score and one with only
    # two confident keypoints, and a non-person entry
    entries = [e for e in entries if e["image_id"] != 2]
    low = coco_result(3, data["annotations"][0]["keypoints"], score=0.01)
    few = coco_result(3, data["annotations"][0]["keypoints"], score=0.8)
    few["keypoints"][8::3] = [0.01] * 15  # confidence of keypoints 2..16 below the threshold
    other = dict(coco_result(3, data["annotations"][0]["keypoints"], 0.9), category_id=2)
    path = write_json(tmp_path / "results.json", entries + [low, few, other])
    cfg = json_cfg(tiny, path, "MODEL.POSE2SEG.MIN_PERSON_SCORE", 0.05, "INPUT.MIN_SIZE_TEST", 192, "INPUT.MAX_SIZE_TEST", 400)
    source = JSONKeypointSource(cfg)
    inputs = mapped(cfg, tiny["dataset"])
    assert inputs[0]["image"].shape[-2:] == (192, 256)  # resized 2x from 96 x 128
    out = source(inputs, image_sizes(inputs), torch.device("cpu"))

    for x, (keypoints, scores) in zip(inputs, out):
        anns = [a for a in data["annotations"] if a["image_id"] == x["image_id"]]
        if x["image_id"] == 2:
            assert keypoints.shape == (0, 17, 3) and scores.shape == (0,)
            continue
        assert len(keypoints) == len(anns) and scores.tolist() == pytest.approx([0.9] * len(anns))
        for kpt, ann in zip(keypoints.numpy(), anns):
            expected = np.asarray(ann["keypoints"], np.float64).reshape(17, 3)
            labeled = expected[:, 2] > 0
            # COCO pixel indices -> continuous (+0.5) -> the 2x resized input
            np.testing.assert_allclose(kpt[labeled, :2], (expected[labeled, :2] + 0.5) * 2, rtol=1e-5)
            assert (kpt[labeled, 2] == 2).all() and (kpt[~labeled] == 0).all()


def test_json_source_wrong_length_names_the_file_and_entry(tmp_path):
    good = coco_result(1, np.ones((17, 3)) * 5, 0.9)
    bad = dict(good, keypoints=good["keypoints"][:50])
    path = write_json(tmp_path / "bad.json", [good, bad])
    with pytest.raises(KeypointsFileError) as e:
        load_keypoint_results(path)
    message = str(e.value)
    assert path in message and "entry 1" in message and "'keypoints'" in message and "50" in message


@pytest.mark.parametrize(
    "entry, field",
    [({"category_id": 1, "keypoints": [0] * 51, "score": 1}, "image_id"),
     ({"image_id": 1, "keypoints": [0] * 51, "score": "high"}, "score"),
     ({"image_id": 1, "score": 1}, "keypoints")],
)  # fmt: skip
def test_json_source_names_a_bad_field(tmp_path, entry, field):
    path = write_json(tmp_path / "bad.json", [entry])
    with pytest.raises(KeypointsFileError, match=f"entry 0 .*'{field}'"):
        load_keypoint_results(path)


def test_image_lookup_by_file_stem():
    assert image_keys({"file_name": "/x/000123.jpg"}) == ["000123", "123"]
    assert image_keys({"file_name": "a/b/img_7.png", "image_id": 7}) == ["7", "img_7"]


def test_confident_persons_threshold_and_filters():
    kpt = torch.zeros(3, 17, 3)
    kpt[..., :2] = 10
    kpt[0, :, 2] = 0.9
    kpt[1, :2, 2] = 0.9  # two confident keypoints only
    kpt[2, :, 2] = 0.9
    kpt[2, 3, 2] = float("nan")
    kpt[2, 4, 0] = float("inf")
    out, scores, kept = confident_persons(kpt, torch.tensor([0.5, 0.9, 0.02]), 0.5, 0.0, 3)
    assert kept.tolist() == [True, False, True]
    assert out[1, 3].tolist() == [0, 0, 0] and out[1, 4].tolist() == [0, 0, 0] and out[1, 5].tolist() == [10, 10, 2]
    _, _, kept = confident_persons(kpt, torch.tensor([0.5, 0.9, 0.02]), 0.5, 0.05, 3)
    assert kept.tolist() == [True, False, False]


def test_mask_confidence_is_the_mean_probability_inside_the_mask():
    p = torch.tensor([[[0.2, 0.6], [0.8, 1.0]], [[0.1, 0.2], [0.3, 0.4]]])
    assert mask_confidence(p, 0.5).tolist() == pytest.approx([0.8, 0.0])


def test_scores_rank_masks_and_follow_the_keypoint_score(tiny, tmp_path):
    entries, data = gt_results(tiny)
    image_id = max({a["image_id"] for a in data["annotations"]}, key=lambda i: sum(a["image_id"] == i for a in data["annotations"]))
    entries = [e for e in entries if e["image_id"] == image_id]
    assert len(entries) >= 2
    torch.manual_seed(0)
    outputs = {}
    for tag, factor in (("base", 1.0), ("changed", 0.25)):
        for e, s in zip(entries, [0.9, 0.6, 0.7, 0.5]):
            e["score"] = s
        entries[0]["score"] *= factor
        path = write_json(tmp_path / f"{tag}.json", entries)
        cfg = json_cfg(tiny, path)
        model = build_model(cfg).eval()
        if tag == "base":
            torch.save(model.state_dict(), tmp_path / "weights.pt")
        else:
            model.load_state_dict(torch.load(tmp_path / "weights.pt"))
        x = [d for d in mapped(cfg, tiny["dataset"]) if d["image_id"] == image_id]
        with torch.no_grad():
            outputs[tag] = model(x)[0]["instances"]
    base, changed = outputs["base"], outputs["changed"]
    for inst in (base, changed):
        assert (inst.scores[:-1] >= inst.scores[1:]).all(), "instances must be sorted by score"
    # find the changed person by its keypoints; its score scales with its keypoint score, the others stay
    first = np.asarray(entries[0]["keypoints"]).reshape(17, 3)

    def index_of(inst):
        d = (inst.pred_keypoints[:, :, :2] - torch.as_tensor(first[:, :2] + 0.5, dtype=torch.float32)).abs()
        return int(d.sum(dim=(1, 2)).argmin())
    i, j = index_of(base), index_of(changed)
    assert base.scores[i].item() > 0
    assert changed.scores[j].item() == pytest.approx(0.25 * base.scores[i].item(), rel=1e-4)
    others_base = sorted(s for k, s in enumerate(base.scores.tolist()) if k != i)
    others_changed = sorted(s for k, s in enumerate(changed.scores.tolist()) if k != j)
    assert others_changed == pytest.approx(others_base, rel=1e-5)
    # the mask factor: with rule "person" the scores are the keypoint scores alone, and the
    # combined score is that times a mean probability inside the mask (in [0.5, 1], or 0)
    cfg = json_cfg(tiny, str(tmp_path / "base.json"), "MODEL.POSE2SEG.SCORE", "person")
    model = build_model(cfg).eval()
    model.load_state_dict(torch.load(tmp_path / "weights.pt"))
    x = [d for d in mapped(cfg, tiny["dataset"]) if d["image_id"] == image_id]
    with torch.no_grad():
        person_only = model(x)[0]["instances"]
    assert sorted(person_only.scores.tolist()) == pytest.approx(sorted([0.9, 0.6, 0.7, 0.5][: len(entries)]))
    by_nose = lambda inst: inst.scores[inst.pred_keypoints[:, 0, 0].argsort()]  # noqa: E731
    ratio = by_nose(base) / by_nose(person_only)
    assert ((ratio >= 0.5) & (ratio <= 1.0) | (ratio == 0)).all(), ratio


def write_tiny_keypoint_rcnn_config(path, min_size_test):
    base = os.path.abspath(os.path.join(REPO, "configs", "Base-KeypointRCNN-FPN.yaml"))
    text = f"""
_BASE_: "{base}"
MODEL:
  DEVICE: "cpu"
  RESNETS: {{DEPTH: 18, RES2_OUT_CHANNELS: 64, NORM: "BN"}}
  FPN: {{OUT_CHANNELS: 32, NORM: "BN"}}
  ANCHOR_GENERATOR: {{SIZES: [[16], [32], [64], [128], [256]]}}
  RPN: {{POST_NMS_TOPK_TEST: 50}}
  ROI_HEADS: {{SCORE_THRESH_TEST: 0.0}}
  ROI_BOX_HEAD: {{FC_DIM: 64}}
  ROI_KEYPOINT_HEAD: {{CONV_DIMS: [32, 32]}}
INPUT: {{MIN_SIZE_TEST: {min_size_test}, MAX_SIZE_TEST: 400}}
TEST: {{DETECTIONS_PER_IMAGE: 4}}
"""
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def test_model_source_runs_a_keypoint_model_end_to_end(tiny, tmp_path):
    import cv2

    config = write_tiny_keypoint_rcnn_config(tmp_path / "kp.yaml", 96)
    torch.manual_seed(0)
    kcfg = load_config(config)
    keypoint_model = build_model(kcfg).eval()
    weights = str(tmp_path / "kp.pth")
    torch.save({"model": keypoint_model.state_dict()}, weights)

    cfg = tiny_pose2seg_cfg(str(tmp_path / "out"), tiny["dataset"], tiny["dataset"], tiny["templates"])
    cfg.merge_from_list([
        "MODEL.POSE2SEG.KEYPOINT_SOURCE", "model", "MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE", config,
        "MODEL.POSE2SEG.KEYPOINT_MODEL.WEIGHTS", weights, "MODEL.POSE2SEG.KEYPOINT_CONFIDENCE_THRESHOLD", -1e9,
        "MODEL.POSE2SEG.MIN_CONFIDENT_KEYPOINTS", 0,
    ])  # fmt: skip
    image_file = DatasetCatalog.get(tiny["dataset"])[0]["file_name"]
    image = cv2.imread(image_file)
    with torch.no_grad():
        pose2seg = Pose2SegPredictor(cfg)(image, file_name=image_file)["instances"]
        kcfg.defrost()
        kcfg.MODEL.WEIGHTS = weights
        expected = DefaultPredictor(kcfg)(image)["instances"]
    # every detection of the keypoint model (score threshold 0) becomes one mask at the image size
    assert len(expected) == 4 and len(pose2seg) == 4
    assert pose2seg.pred_masks.shape == (4, *image.shape[:2])
    order = expected.scores.argsort(descending=True)
    got = pose2seg.pred_keypoints[:, :, :2].sort(dim=0).values
    want = expected.pred_keypoints[order, :, :2].sort(dim=0).values
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-3)


def test_model_source_resizes_and_reorders_channels(tiny, tmp_path):
    from pose2seg_d2.modeling import ModelKeypointSource

    config = write_tiny_keypoint_rcnn_config(tmp_path / "kp.yaml", 192)
    cfg = tiny_pose2seg_cfg(str(tmp_path / "out"), tiny["dataset"], tiny["dataset"], tiny["templates"])
    cfg.merge_from_list(["MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE", config, "INPUT.FORMAT", "RGB"])
    source = ModelKeypointSource(cfg)
    image = torch.zeros(3, 96, 128)
    image[0] = 1.0
    out = source._model_input(image)
    assert out.shape == (3, 192, 256) and out[2].min().item() == pytest.approx(1.0) and out[0].abs().max() == 0
