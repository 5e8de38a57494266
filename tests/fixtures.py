"""A tiny COCO-format person dataset drawn by the tests, and small configs to train on it."""
import importlib.util
import json
import os

import cv2
import numpy as np
import pycocotools.mask as mask_util

from pose2seg_d2.pose import COCO_PERSON_FLIP_MAP, COCO_PERSON_KEYPOINT_NAMES, COCO_PERSON_LIMBS, PoseTemplates

# A standing person in a unit box (x right, y down): nose, eyes, ears, shoulders, elbows,
# wrists, hips, knees, ankles.
STANDING = np.array([
    [0.50, 0.08], [0.47, 0.06], [0.53, 0.06], [0.44, 0.08], [0.56, 0.08],
    [0.38, 0.22], [0.62, 0.22], [0.33, 0.40], [0.67, 0.40], [0.30, 0.56], [0.70, 0.56],
    [0.42, 0.55], [0.58, 0.55], [0.41, 0.76], [0.59, 0.76], [0.40, 0.97], [0.60, 0.97],
])  # fmt: skip
ARMS_UP = STANDING.copy()
ARMS_UP[[7, 8, 9, 10]] = [[0.30, 0.10], [0.70, 0.10], [0.28, 0.0], [0.72, 0.0]]


def draw_person(canvas, keypoints, color, thickness):
    """Limbs as thick lines and a head disc; returns the drawn pixels as a bool mask."""
    mask = np.zeros(canvas.shape[:2], np.uint8)
    pts = np.round(keypoints[:, :2]).astype(int)
    for a, b in COCO_PERSON_LIMBS:
        cv2.line(mask, tuple(pts[a]), tuple(pts[b]), 1, thickness)
    cv2.fillConvexPoly(mask, pts[[5, 6, 12, 11]], 1)
    cv2.circle(mask, tuple(pts[0]), thickness, 1, -1)
    canvas[mask > 0] = color
    return mask > 0


def make_tiny_person_dataset(root, num_images=6, size=(96, 128), persons_per_image=2, seed=0):
    """
    Write ``root/images/*.png`` and ``root/annotations.json`` (COCO format, RLE masks, 17
    keypoints; persons overlap, later ones in front). Returns the JSON path.
    """
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    h, w = size
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        canvas = (rng.integers(0, 60, (h, w, 3))).astype(np.uint8)
        visible_masks, people = [], []
        for p in range(persons_per_image):
            pose = STANDING if rng.random() < 0.5 else ARMS_UP
            height = rng.uniform(0.55, 0.85) * h
            x0 = rng.uniform(0.05 * w, w - 0.45 * height) + p * 0.15 * height
            y0 = rng.uniform(0, h - height)
            xy = pose * [0.5 * height, height] + [x0, y0]
            color = rng.integers(90, 255, 3).tolist()
            drawn = draw_person(canvas, xy, color, thickness=max(2, int(height / 14)))
            visible_masks = [m & ~drawn for m in visible_masks] + [drawn]
            people.append(xy)
        for mask, xy in zip(visible_masks, people):
            if mask.sum() < 20:
                continue
            v = np.where(mask[np.clip(np.round(xy[:, 1]).astype(int), 0, h - 1),
                              np.clip(np.round(xy[:, 0]).astype(int), 0, w - 1)], 2, 1)  # fmt: skip
            inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
            v = np.where(inside, v, 0)
            keypoints = np.concatenate([xy, v[:, None]], 1)
            keypoints[v == 0] = 0
            rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
            ys, xs = np.nonzero(mask)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                "bbox": [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                         float(ys.max() - ys.min() + 1)],
                "area": float(mask.sum()),
                "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
                "keypoints": [float(x) for x in keypoints.reshape(-1)],
                "num_keypoints": int((v > 0).sum()),
            })  # fmt: skip
        file_name = f"{image_id:06d}.png"
        cv2.imwrite(os.path.join(root, "images", file_name), canvas)
        images.append({"id": image_id, "file_name": file_name, "height": h, "width": w})
    data = {
        "images": images,
        "annotations": annotations,
        "categories": [{
            "id": 1, "name": "person", "supercategory": "person",
            "keypoints": list(COCO_PERSON_KEYPOINT_NAMES),
            "skeleton": [[a + 1, b + 1] for a, b in COCO_PERSON_LIMBS],
        }],
    }  # fmt: skip
    path = os.path.join(root, "annotations.json")
    with open(path, "w") as f:
        json.dump(data, f)
    return path


def register_tiny_person_dataset(name, root, **kwargs):
    """Make (if missing) and register the tiny dataset under ``name`` with keypoint metadata."""
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.datasets import register_coco_instances

    json_file = os.path.join(root, "annotations.json")
    if not os.path.exists(json_file):
        make_tiny_person_dataset(root, **kwargs)
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_coco_instances(name, {}, json_file, os.path.join(root, "images"))
    MetadataCatalog.get(name).set(
        keypoint_names=list(COCO_PERSON_KEYPOINT_NAMES),
        keypoint_flip_map=list(COCO_PERSON_FLIP_MAP.items()),
        thing_classes=["person"],
    )
    return name


def write_templates(path):
    """Two templates (standing, arms up) in the unit box, aspect kept and centered."""
    templates = np.zeros((2, 17, 3))
    for i, pose in enumerate((STANDING, ARMS_UP)):
        templates[i, :, 0] = 0.25 + 0.5 * pose[:, 0]
        templates[i, :, 1] = pose[:, 1]
        templates[i, :, 2] = 1.0
    PoseTemplates(templates).save(path)
    return path


def tiny_pose2seg_cfg(output_dir, train, test, templates_file):
    """A Pose2Seg config small enough to train dozens of iterations in seconds on a CPU."""
    from detectron2.config import get_cfg

    from pose2seg_d2.config import add_pose2seg_config

    cfg = get_cfg()
    add_pose2seg_config(cfg)
    cfg.merge_from_file(os.path.join(os.path.dirname(__file__), "..", "configs", "Base-Pose2Seg.yaml"))
    cfg.merge_from_list([
        "MODEL.DEVICE", "cpu",
        "MODEL.RESNETS.DEPTH", 18, "MODEL.RESNETS.RES2_OUT_CHANNELS", 64, "MODEL.FPN.OUT_CHANNELS", 32,
        "MODEL.RESNETS.NORM", "BN", "MODEL.FPN.NORM", "BN",  # trained from scratch
        "MODEL.POSE2SEG.TEMPLATES_FILE", templates_file,
        "MODEL.POSE2SEG.WINDOW_SIZE", (32, 32),
        "MODEL.POSE2SEG.SEG_MODULE.STEM_CHANNELS", 32, "MODEL.POSE2SEG.SEG_MODULE.NUM_UNITS", 2,
        "MODEL.POSE2SEG.SEG_MODULE.BOTTLENECK_CHANNELS", 16, "MODEL.POSE2SEG.SEG_MODULE.UNIT_OUT_CHANNELS", 64,
        "MODEL.POSE2SEG.SEG_MODULE.DECODER_BOTTLENECK_CHANNELS", 16,
        "MODEL.POSE2SEG.SEG_MODULE.DECODER_OUT_CHANNELS", 32,
        "INPUT.MIN_SIZE_TRAIN", (96,), "INPUT.MAX_SIZE_TRAIN", 160,
        "INPUT.MIN_SIZE_TEST", 96, "INPUT.MAX_SIZE_TEST", 160,
        "DATASETS.TRAIN", (train,), "DATASETS.TEST", (test,),
        "DATALOADER.NUM_WORKERS", 0,
        "SOLVER.IMS_PER_BATCH", 2, "SOLVER.BASE_LR", 1e-3, "SOLVER.WARMUP_ITERS", 0,
        "SOLVER.MAX_ITER", 40, "SOLVER.CHECKPOINT_PERIOD", 1000,
        "TEST.EVAL_PERIOD", 0,
        "OUTPUT_DIR", output_dir,
        "SEED", 7,
    ])  # fmt: skip
    return cfg


def load_script(name):
    """Import ``datasets/<name>.py`` (a preparation script, not a package module)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(name, os.path.join(root, "datasets", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
