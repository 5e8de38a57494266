"""
Pose templates by k-means over normalized poses (docs/method.md §2.2).

Each pose (17 COCO keypoints) is normalized into the unit square: its box (the person's
``bbox`` by default, as the release does, or the labeled keypoints' box) is scaled by
1 / max(width, height) (aspect kept) and centered in [0, 1]^2. Only poses with at least
``min_keypoints`` labeled keypoints (v > 0) are clustered. The k-means features are the 51
values (x, y, labeled) with unlabeled keypoints at (0.5, 0.5, 0), like the release; the
templates are, per cluster, the mean x, y over the members that label the keypoint and
v = the fraction of members that label it. Clusters are ordered by size (largest first).

Coordinates follow Detectron2: keypoints of dataset dicts are continuous (pixel centers at
+0.5); keypoints read from a COCO JSON are pixel indices and get +0.5 here, so a file and the
dataset registered from it give the same templates.
"""
import json
import os

import numpy as np

from .keypoints import COCO_PERSON_FLIP_MAP, COCO_PERSON_KEYPOINT_NAMES, NUM_KEYPOINTS, flip_permutation
from .templates import PoseTemplates

__all__ = ["collect_poses", "normalize_poses", "kmeans", "cluster_templates"]

NORMALIZATIONS = ("box", "keypoints")


def _boxes_xyxy_from_dicts(annos):
    from detectron2.structures import BoxMode

    out = []
    for a in annos:
        if "bbox" in a and a["bbox"] is not None and len(a["bbox"]) == 4:
            out.append(BoxMode.convert(list(a["bbox"]), a.get("bbox_mode", BoxMode.XYWH_ABS), BoxMode.XYXY_ABS))
        else:
            out.append([np.nan] * 4)
    return out


def collect_poses(source):
    """
    Read every person's keypoints and box.

    Args:
        source: a COCO-format keypoint JSON (path), its parsed dict, or a list of Detectron2
            dataset dicts.

    Returns:
        tuple: ``keypoints`` (N, 17, 3) float64 in continuous coordinates and ``boxes``
        (N, 4) float64 [x1, y1, x2, y2] (NaN where an annotation has no box). Crowd
        annotations and annotations without keypoints are skipped.
    """
    where = "<dataset dicts>"
    if isinstance(source, (str, os.PathLike)):
        where = str(source)
        if not os.path.isfile(where):
            raise FileNotFoundError(f"keypoint annotation file not found: {where}")
        with open(where) as f:
            try:
                source = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not valid JSON ({e})") from e
    keypoints, boxes = [], []
    if isinstance(source, dict):
        if "annotations" not in source:
            raise ValueError(f"{where}: no 'annotations' field; expected a COCO-format keypoint file")
        annos = [a for a in source["annotations"] if not a.get("iscrowd", 0) and a.get("keypoints")]
        for i, a in enumerate(annos):
            if len(a["keypoints"]) != 3 * NUM_KEYPOINTS:
                raise ValueError(
                    f"{where}: annotation id {a.get('id')!r}, field 'keypoints': {len(a['keypoints'])} values, "
                    f"expected {3 * NUM_KEYPOINTS}"
                )
            kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(NUM_KEYPOINTS, 3)
            kp[:, :2] += 0.5  # pixel indices -> continuous, as Detectron2's loader does
            keypoints.append(kp)
            bbox = a.get("bbox")
            boxes.append([bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]] if bbox and len(bbox) == 4 else [np.nan] * 4)
    else:
        for record in source:
            annos = [a for a in record.get("annotations", []) if not a.get("iscrowd", 0) and a.get("keypoints")]
            for a in annos:
                kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
                if kp.shape[0] != NUM_KEYPOINTS:
                    raise ValueError(
                        f"{record.get('file_name', where)}: an annotation has {kp.shape[0]} keypoints, expected {NUM_KEYPOINTS}"
                    )
                keypoints.append(kp)
            boxes += _boxes_xyxy_from_dicts(annos)
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 3)
    return keypoints, np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def normalize_poses(keypoints, boxes=None, return_valid=False):
    """
    Normalize poses into the unit square, aspect kept, centered.

    Args:
        keypoints (ndarray): (N, 17, 3); v > 0 means labeled.
        boxes (ndarray or None): (N, 4) [x1, y1, x2, y2]; None, or rows that are NaN or
            empty, use the labeled keypoints' box.
        return_valid (bool): also return which poses had a box with extent.

    Returns:
        ndarray: (N, 17, 3) float64; unlabeled keypoints are (0, 0, 0), labeled ones keep
        their v. A pose without a box with extent has its labeled keypoints at (0.5, 0.5).
        With ``return_valid``, also a (N,) bool array, False for those poses.
    """
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 3)
    labeled = kp[..., 2] > 0
    lo = np.where(labeled[..., None], kp[..., :2], np.inf).min(1)
    hi = np.where(labeled[..., None], kp[..., :2], -np.inf).max(1)
    box = np.concatenate([lo, hi], axis=1)  # the keypoints' box, (N, 4)
    if boxes is not None:
        given = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        good = np.isfinite(given).all(1) & (given[:, 2] > given[:, 0]) & (given[:, 3] > given[:, 1])
        box = np.where(good[:, None], given, box)
    w, h = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
    size = np.maximum(w, h)
    valid = np.isfinite(box).all(1) & (size > 0)
    box = np.where(valid[:, None], box, 0.0)
    scale = np.where(valid, 1.0 / np.where(valid, size, 1.0), 0.0)
    off_x = np.where(valid, (1.0 - np.where(valid, w, 0.0) * scale) / 2.0, 0.5)
    off_y = np.where(valid, (1.0 - np.where(valid, h, 0.0) * scale) / 2.0, 0.5)
    out = np.zeros_like(kp)
    out[..., 0] = (kp[..., 0] - box[:, None, 0]) * scale[:, None] + off_x[:, None]
    out[..., 1] = (kp[..., 1] - box[:, None, 1]) * scale[:, None] + off_y[:, None]
    out[..., 2] = kp[..., 2]
    out[~labeled] = 0.0
    if return_valid:
        return out, valid
    return out


def kmeans(data, k, seed=0, num_init=10, max_iter=100, tol=1e-8):
    """
    Lloyd's k-means with k-means++ seeding; the best of ``num_init`` runs (lowest inertia).

    Args:
        data (ndarray): (N, D), N >= k.
        k (int): number of clusters.
        seed (int): the result depends only on the data and the seed.

    Returns:
        tuple: ``centers`` (k, D), ``labels`` (N,) int64, ``inertia`` (float, the sum of
        squared distances to the nearest center).
    """
    x = np.asarray(data, dtype=np.float64)
    n = x.shape[0]
    if k < 1 or n < k:
        raise ValueError(f"k-means needs 1 <= k <= number of points, got k={k} for {n} points")
    rng = np.random.default_rng(seed)
    sq = (x * x).sum(1)

    def dist2(centers):
        d = sq[:, None] - 2.0 * x @ centers.T + (centers * centers).sum(1)[None]
        return np.maximum(d, 0.0)

    best = None
    for _ in range(num_init):
        # k-means++: each next center drawn with probability proportional to D^2
        centers = np.empty((k, x.shape[1]))
        centers[0] = x[rng.integers(n)]
        closest = dist2(centers[:1])[:, 0]
        for c in range(1, k):
            total = closest.sum()
            idx = rng.choice(n, p=closest / total) if total > 0 else rng.integers(n)
            centers[c] = x[idx]
            closest = np.minimum(closest, dist2(centers[c : c + 1])[:, 0])
        labels = np.full(n, -1)
        for _ in range(max_iter):
            d = dist2(centers)
            new_labels = d.argmin(1)
            counts = np.bincount(new_labels, minlength=k)
            new_centers = np.zeros_like(centers)
            np.add.at(new_centers, new_labels, x)
            empty = counts == 0
            new_centers[~empty] /= counts[~empty, None]
            if empty.any():  # re-seed empty clusters with the farthest points
                far = np.argsort(-d[np.arange(n), new_labels])[: int(empty.sum())]
                new_centers[empty] = x[far]
            shift = ((new_centers - centers) ** 2).sum()
            centers = new_centers
            if np.array_equal(new_labels, labels) or shift <= tol:
                labels = new_labels
                break
            labels = new_labels
        d = dist2(centers)
        labels = d.argmin(1)
        inertia = float(d[np.arange(n), labels].sum())
        if best is None or inertia < best[2] - 1e-12:
            best = (centers, labels, inertia)
    return best


def cluster_templates(
    source,
    num_clusters=3,
    min_keypoints=8,
    vis_threshold=0.4,
    seed=0,
    normalize="box",
    flip=False,
    num_init=10,
    max_iter=100,
    return_info=False,
):
    """
    Cluster normalized poses into pose templates.

    Args:
        source: a COCO-format keypoint JSON (path or parsed dict) or a list of Detectron2
            dataset dicts (see :func:`collect_poses`).
        num_clusters (int): K, 3 in the release.
        min_keypoints (int): poses with fewer labeled keypoints are left out (8 in the
            release).
        vis_threshold (float): stored in the templates (keypoints with v below it are
            absent when the templates are used).
        seed (int): k-means seed; same data and seed give the same templates.
        normalize (str): "box" (the person's bbox, the release's choice; the keypoints' box
            where a bbox is missing) or "keypoints" (the labeled keypoints' box).
        flip (bool): also cluster the left-right mirror of every pose (the release does;
            templates are mirrored when loaded anyway).
        num_init, max_iter (int): k-means restarts and iterations.
        return_info (bool): also return a dict with ``num_poses``, ``cluster_sizes``,
            ``labels`` and ``inertia``.

    Returns:
        PoseTemplates (and the info dict when ``return_info``).
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    keypoints, boxes = collect_poses(source)
    poses, valid = normalize_poses(keypoints, boxes if normalize == "box" else None, return_valid=True)
    poses = poses[valid]
    if flip:
        mirrored = poses[:, flip_permutation(COCO_PERSON_KEYPOINT_NAMES, COCO_PERSON_FLIP_MAP)].copy()
        lab = mirrored[..., 2] > 0
        mirrored[..., 0] = np.where(lab, 1.0 - mirrored[..., 0], 0.0)
        poses = np.concatenate([poses, mirrored])
    labeled = poses[..., 2] > 0
    keep = labeled.sum(1) >= min_keypoints
    poses, labeled = poses[keep], labeled[keep]
    if len(poses) < num_clusters:
        raise ValueError(
            f"only {len(poses)} poses have at least {min_keypoints} labeled keypoints; "
            f"{num_clusters} clusters need at least as many"
        )
    features = np.concatenate(
        [np.where(labeled[..., None], poses[..., :2], 0.5), labeled[..., None].astype(np.float64)], axis=-1
    ).reshape(len(poses), -1)
    _, labels, inertia = kmeans(features, num_clusters, seed=seed, num_init=num_init, max_iter=max_iter)

    sizes = np.bincount(labels, minlength=num_clusters)
    order = sorted(range(num_clusters), key=lambda c: (-sizes[c], c))
    templates = np.zeros((num_clusters, NUM_KEYPOINTS, 3))
    for out, c in enumerate(order):
        member = labels == c
        lab = labeled[member]  # (M, 17)
        count = lab.sum(0)
        xy = np.where(lab[..., None], poses[member, :, :2], 0.0).sum(0)
        templates[out, :, :2] = np.where(count[:, None] > 0, xy / np.maximum(count, 1)[:, None], 0.0)
        templates[out, :, 2] = count / max(int(member.sum()), 1)
    result = PoseTemplates(templates, COCO_PERSON_KEYPOINT_NAMES, COCO_PERSON_FLIP_MAP, vis_threshold)
    if return_info:
        relabel = np.empty(num_clusters, dtype=np.int64)
        relabel[order] = np.arange(num_clusters)
        info = {
            "num_poses": int(len(poses)),
            "cluster_sizes": [int(sizes[c]) for c in order],
            "labels": relabel[labels],
            "inertia": inertia,
        }
        return result, info
    return result
