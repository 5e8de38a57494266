"""Pose templates by k-means over normalized poses (docs/method.md §2.2)."""
import importlib.util
import json
import os

import numpy as np
import pytest

from pose2seg_d2.pose.clustering import cluster_templates, kmeans, normalize_poses
from pose2seg_d2.pose.templates import PoseTemplates

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def prototypes():
    """Three well separated poses in the unit square (keypoints' box fills it, centered);
    the third labels only the 12 upper keypoints (no knees or ankles... and no hips' y below)."""
    rng = np.random.default_rng(7)
    protos = np.zeros((3, 17, 3))
    protos[..., 2] = 1.0
    for i in range(3):
        xy = rng.uniform(0, 1, (17, 2))
        # stretch to [0, 1] on the longer side, centered on the other: keypoints' box normalization
        lo, hi = xy.min(0), xy.max(0)
        size = (hi - lo).max()
        xy = (xy - lo) / size + (1 - (hi - lo) / size) / 2
        protos[i, :, :2] = xy
    protos[2, 13:, :] = 0.0  # unlabeled knees and ankles
    lo, hi = protos[2, :13, :2].min(0), protos[2, :13, :2].max(0)
    size = (hi - lo).max()
    protos[2, :13, :2] = (protos[2, :13, :2] - lo) / size + (1 - (hi - lo) / size) / 2
    return protos


def planted_coco(per_cluster=40, noise=0.004, seed=0):
    """A COCO keypoint file with ``per_cluster`` persons of each prototype at random scales
    and positions, plus persons with too few keypoints and a crowd region."""
    rng = np.random.default_rng(seed)
    protos = prototypes()
    annos, truth = [], []
    for i, proto in enumerate(protos):
        for _ in range(per_cluster):
            scale = rng.uniform(60, 300)
            offset = rng.uniform(0, 400, 2)
            xy = (proto[:, :2] + rng.normal(0, noise, (17, 2))) * scale + offset
            v = np.where(proto[:, 2] > 0, rng.choice([1, 2], 17), 0)
            kp = np.concatenate([xy - 0.5, v[:, None]], 1)  # file keypoints are pixel indices
            kp[v == 0] = 0
            lab = xy[v > 0]
            box = [*lab.min(0), *(lab.max(0) - lab.min(0))]
            annos.append({"keypoints": kp.reshape(-1).tolist(), "bbox": box, "iscrowd": 0})
            truth.append(i)
    few = np.zeros((17, 3))
    few[:5] = [[10, 10, 2]] * 5
    annos.append({"keypoints": few.reshape(-1).tolist(), "bbox": [0, 0, 20, 20], "iscrowd": 0})
    annos.append({"keypoints": [0] * 51, "bbox": [0, 0, 50, 50], "iscrowd": 1, "segmentation": {}})
    for k, a in enumerate(annos):
        a.update(id=k + 1, image_id=k // 3 + 1, category_id=1, num_keypoints=int(sum(v > 0 for v in a["keypoints"][2::3])))
    images = [{"id": j + 1, "file_name": f"{j}.jpg", "height": 800, "width": 800} for j in range(len(annos) // 3 + 1)]
    return {"images": images, "annotations": annos, "categories": [{"id": 1, "name": "person"}]}, np.array(truth)


def match(templates, protos):
    """For each prototype, the template closest to it (over labeled keypoints)."""
    t = templates.raw_templates.numpy()
    out = []
    for p in protos:
        lab = p[:, 2] > 0
        d = [np.abs(tt[lab, :2] - p[lab, :2]).max() for tt in t]
        out.append(int(np.argmin(d)))
    return out


def test_recovers_planted_clusters():
    coco, truth = planted_coco()
    templates, info = cluster_templates(coco, num_clusters=3, min_keypoints=8, seed=0, return_info=True)
    assert info["num_poses"] == 120  # the 5-keypoint pose and the crowd region are left out
    assert sorted(info["cluster_sizes"]) == [40, 40, 40]
    protos = prototypes()
    which = match(templates, protos)
    assert sorted(which) == [0, 1, 2]
    raw = templates.raw_templates.numpy()
    for p, t in zip(protos, which):
        lab = p[:, 2] > 0
        np.testing.assert_allclose(raw[t, lab, :2], p[lab, :2], atol=0.01)
        np.testing.assert_allclose(raw[t, :, 2], lab.astype(float))  # v = fraction labeled
    # the cluster labels agree with the planted ones (up to renaming)
    labels = info["labels"]
    for i in range(3):
        assert len(set(labels[truth == i])) == 1


def test_deterministic_and_same_from_file_dicts_and_json(tmp_path):
    coco, _ = planted_coco(per_cluster=15, noise=0.05, seed=1)
    a = cluster_templates(coco, seed=5)
    b = cluster_templates(coco, seed=5)
    np.testing.assert_array_equal(a.raw_templates.numpy(), b.raw_templates.numpy())
    path = tmp_path / "kp.json"
    path.write_text(json.dumps(coco))
    c = cluster_templates(str(path), seed=5)
    np.testing.assert_array_equal(a.raw_templates.numpy(), c.raw_templates.numpy())
    # Detectron2 dataset dicts (keypoints + 0.5, XYWH boxes) give the same templates
    from detectron2.structures import BoxMode

    dicts = []
    for anno in coco["annotations"]:
        kp = np.array(anno["keypoints"], dtype=float).reshape(17, 3)
        kp[:, :2] += 0.5
        dicts.append({"annotations": [{"keypoints": kp.reshape(-1).tolist(), "bbox": anno["bbox"],
                                       "bbox_mode": BoxMode.XYWH_ABS, "iscrowd": anno["iscrowd"]}]})  # fmt: skip
    d = cluster_templates(dicts, seed=5)
    np.testing.assert_allclose(a.raw_templates.numpy(), d.raw_templates.numpy(), atol=1e-9)


def test_normalize_keeps_aspect_and_centers():
    kp = np.zeros((1, 17, 3))
    kp[0, :2] = [[100, 50, 2], [300, 150, 1]]
    out = normalize_poses(kp)  # keypoints' box 200 x 100
    np.testing.assert_allclose(out[0, :2], [[0, 0.25, 2], [1, 0.75, 1]])
    assert (out[0, 2:] == 0).all()
    out = normalize_poses(kp, boxes=np.array([[100, 0, 200, 400]]))  # a 100 x 400 box
    np.testing.assert_allclose(out[0, :2, :2], [[0.375, 0.125], [0.875, 0.375]])


def test_flip_and_min_keypoints_and_errors():
    coco, _ = planted_coco(per_cluster=10)
    _, info = cluster_templates(coco, flip=True, return_info=True)
    assert info["num_poses"] == 60
    _, info = cluster_templates(coco, min_keypoints=13, return_info=True)
    assert info["num_poses"] == 30
    with pytest.raises(ValueError, match="only 0 poses"):
        cluster_templates(coco, min_keypoints=18)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        cluster_templates("nope.json")


def test_kmeans_plus_plus():
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    x = np.concatenate([c + rng.normal(0, 0.3, (50, 2)) for c in centers])
    found, labels, inertia = kmeans(x, 4, seed=1)
    assert sorted(np.bincount(labels).tolist()) == [50, 50, 50, 50]
    for c in centers:
        assert np.min(np.linalg.norm(found - c, axis=1)) < 0.2
    assert inertia == pytest.approx(((x - found[labels]) ** 2).sum())
    with pytest.raises(ValueError):
        kmeans(x[:3], 4)


def test_cli_writes_loadable_templates(tmp_path):
    coco, _ = planted_coco(per_cluster=10)
    src = tmp_path / "kp.json"
    src.write_text(json.dumps(coco))
    spec = importlib.util.spec_from_file_location("cluster_templates_cli", os.path.join(ROOT, "tools", "cluster_templates.py"))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = tmp_path / "sub" / "templates.json"
    assert cli.main([str(src), "--num-clusters", "3", "--min-keypoints", "8", "--vis-threshold", "0.5", "--seed", "2", "--output", str(out)]) == 0
    templates = PoseTemplates.load(str(out))
    assert templates.num_clusters == 3 and len(templates) == 6 and templates.vis_threshold == 0.5
    with pytest.raises(SystemExit):
        cli.main(["missing.json", "--output", str(out)])


def test_shipped_templates_load():
    path = os.path.join(ROOT, "pose2seg_d2", "assets", "templates_synthetic.json")
    templates = PoseTemplates.load(path)
    assert templates.num_clusters == 3 and len(templates) == 6
    raw = templates.raw_templates.numpy()
    assert ((raw[..., :2] >= -0.1) & (raw[..., :2] <= 1.1)).all()
    assert (raw[0, :, 2] > 0.9).all()  # the largest cluster: full bodies
