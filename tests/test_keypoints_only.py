"""The keypoints-only reference: drawn figures, the model, and the choice of its widths."""
import json
import os

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances

from pose2seg_d2.config import load_config
from pose2seg_d2.evaluation.keypoints_only_fit import fit_keypoints_only_widths
from pose2seg_d2.modeling.keypoints_only import figure_distances, figure_masks, person_scales
from pose2seg_d2.pose import COCO_PERSON_FLIP_MAP, COCO_PERSON_KEYPOINT_NAMES, COCO_PERSON_LIMBS

from .fixtures import ARMS_UP, STANDING

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
K = {n: i for i, n in enumerate(COCO_PERSON_KEYPOINT_NAMES)}


def person(pose, height, x0, y0):
    """(17, 3) keypoints of a unit-box pose scaled to ``height`` (width half of it) at (x0, y0)."""
    xy = torch.tensor(pose, dtype=torch.float32) * torch.tensor([0.5 * height, height]) + torch.tensor([x0, y0])
    return torch.cat([xy, torch.full((17, 1), 2.0)], dim=1)


def test_person_scale_is_the_torso_length_or_a_third_of_the_box():
    p = person(STANDING, 90.0, 10, 5)
    shoulders = (p[K["left_shoulder"], :2] + p[K["right_shoulder"], :2]) / 2
    hips = (p[K["left_hip"], :2] + p[K["right_hip"], :2]) / 2
    no_hips = p.clone()
    no_hips[[K["left_hip"], K["right_hip"]]] = 0
    box = no_hips[no_hips[:, 2] > 0, :2]
    scales = person_scales(torch.stack([p, no_hips]))
    assert scales[0] == pytest.approx(float(torch.linalg.vector_norm(shoulders - hips)), rel=1e-5)
    assert scales[1] == pytest.approx(float((box.amax(0) - box.amin(0)).max() / 3), rel=1e-5)


def test_figure_distances_are_exact_segment_and_head_distances():
    p = person(STANDING, 90.0, 10, 5)
    d = figure_distances(p[None], (100, 80))[0]
    scale = float(person_scales(p[None])[0])
    ys, xs = torch.meshgrid(torch.arange(100) + 0.5, torch.arange(80) + 0.5, indexing="ij")
    pixels = torch.stack([xs, ys], -1).reshape(-1, 2).double()

    def brute(pairs):
        best = torch.full((len(pixels),), float("inf"), dtype=torch.float64)
        for a, b in pairs:
            pa, pb = p[a, :2].double(), p[b, :2].double()
            t = ((pixels - pa) @ (pb - pa) / ((pb - pa) @ (pb - pa))).clamp(0, 1)
            best = torch.minimum(best, torch.linalg.vector_norm(pixels - (pa + t[:, None] * (pb - pa)), dim=1))
        return best.reshape(100, 80) / scale

    arms = [(K[f"{s}_{a}"], K[f"{s}_{b}"]) for s in ("left", "right") for a, b in (("shoulder", "elbow"), ("elbow", "wrist"))]
    torch.testing.assert_close(d[0].double(), brute(arms), atol=1e-4, rtol=1e-4)
    head = p[:5, :2].mean(0).double()
    torch.testing.assert_close(d[2].double(), (torch.linalg.vector_norm(pixels - head, dim=1) / scale).reshape(100, 80), atol=1e-4, rtol=1e-4)
    # a person without face keypoints has no head; without elbows, no arms
    q = p.clone()
    q[:5] = 0
    q[[K["left_elbow"], K["right_elbow"]]] = 0
    d = figure_distances(q[None], (100, 80))[0]
    assert torch.isinf(d[0]).all() and torch.isinf(d[2]).all() and torch.isfinite(d[1]).all()


def test_figure_masks_grow_with_the_widths_and_hold_the_skeleton():
    p = person(ARMS_UP, 80.0, 20, 10)
    thin = figure_masks(p[None], (100, 90), 0.05, 0.05, 0.1)[0]
    thick = figure_masks(p[None], (100, 90), 0.2, 0.3, 0.3)[0]
    assert (thin <= thick).all() and thick.sum() > 2 * thin.sum()
    for x, y, _ in p:  # every keypoint's pixel is on the figure
        assert thin[int(y), int(x)]
    assert not thick[0:5, 0:5].any()  # far from the person


def _write_drawn_dataset(root, widths, num_images=6, size=(80, 96)):
    """Ground-truth masks = figure_masks(keypoints, widths): the fit must find ``widths``."""
    rng = np.random.default_rng(0)
    h, w = size
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        for k in range(2):
            p = person(STANDING if rng.random() < 0.5 else ARMS_UP, rng.uniform(40, 70), rng.uniform(0, 50), rng.uniform(0, 10))
            mask = figure_masks(p[None], (h, w), *widths)[0].numpy()
            rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
            ys, xs = np.nonzero(mask)
            keypoints = p.clone()
            keypoints[:, :2] -= 0.5  # files hold pixel indices; the loader adds 0.5
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                "bbox": [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)],
                "area": float(mask.sum()), "segmentation": {"size": [h, w], "counts": rle["counts"].decode()},
                "keypoints": keypoints.reshape(-1).tolist(), "num_keypoints": 17,
            })  # fmt: skip
        images.append({"id": image_id, "file_name": f"{image_id}.png", "height": h, "width": w})
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    for im in images:  # the loader does not read them; the evaluation only needs the json
        open(os.path.join(root, "images", im["file_name"]), "wb").close()
    data = {
        "images": images, "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO_PERSON_KEYPOINT_NAMES),
                        "skeleton": [[a + 1, b + 1] for a, b in COCO_PERSON_LIMBS]}],
    }  # fmt: skip
    path = os.path.join(root, "annotations.json")
    with open(path, "w") as f:
        json.dump(data, f)
    return path


def test_fit_recovers_the_widths_that_drew_the_ground_truth(tmp_path):
    widths = (0.09, 0.22, 0.28)
    json_file = _write_drawn_dataset(str(tmp_path), widths)
    name = "drawn_figures_fit"
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_coco_instances(name, {}, json_file, str(tmp_path / "images"))
    grid = {"ARM_WIDTH": (0.06, 0.09, 0.12), "LEG_WIDTH": (0.14, 0.18, 0.22, 0.26), "HEAD_RADIUS": (0.2, 0.28, 0.36)}
    fit = fit_keypoints_only_widths(name, grid=grid)
    assert (fit["ARM_WIDTH"], fit["LEG_WIDTH"], fit["HEAD_RADIUS"]) == widths
    assert fit["AP"] > 99.0  # the drawn masks themselves


def test_model_draws_one_mask_per_person_at_the_output_size():
    cfg = load_config(os.path.join(REPO, "configs/synthetic/keypoints_only_synthetic.yaml"), ["MODEL.DEVICE", "cpu"])
    from detectron2.modeling import build_model
    from detectron2.structures import Instances, Keypoints

    model = build_model(cfg).eval()
    assert sum(p.numel() for p in model.parameters()) == 0  # nothing to learn
    a, b = person(STANDING, 50.0, 5, 3), person(ARMS_UP, 40.0, 40, 10)
    inst = Instances((64, 96))
    inst.gt_keypoints = Keypoints(torch.stack([a, b]))  # input (resized) coordinates
    # the input is the original image at 2x: masks come back at 32 x 48, keypoints halved
    out = model([{"image": torch.zeros(3, 64, 96, dtype=torch.uint8), "instances": inst, "height": 32, "width": 48}])
    result = out[0]["instances"]
    assert result.pred_masks.shape == (2, 32, 48) and result.scores.tolist() == [1.0, 1.0]
    half = torch.stack([a, b]).clone()
    half[..., :2] /= 2
    torch.testing.assert_close(result.pred_keypoints, half)
    k = cfg.MODEL.KEYPOINTS_ONLY
    expected = figure_masks(half, (32, 48), k.ARM_WIDTH, k.LEG_WIDTH, k.HEAD_RADIUS)
    assert torch.equal(result.pred_masks, expected)
    with pytest.raises(RuntimeError, match="nothing to learn"):
        model.train()(out)
