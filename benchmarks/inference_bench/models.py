"""The benchmarked models: their configs, built with random weights and calibrated
FrozenBatchNorm statistics."""
import os

import torch
from detectron2.config import get_cfg
from detectron2.modeling import build_model

import pose2seg_d2  # noqa: F401  (registers the models)
from pose2seg_d2.config import add_pose2seg_config
from pose2seg_d2.diagnostics import calibrate_frozen_batchnorm

from .inputs import make_input
from .package_root import ROOT

# name -> (config file, label)
MODELS = {
    "pose2seg": ("configs/pose2seg_R_50_FPN_coco_persons.yaml", "Pose2Seg"),
    "pose2seg_light": ("configs/pose2seg_R_50_FPN_light_head_coco_persons.yaml", "Pose2Seg light head"),
    "pose2seg_release": ("configs/pose2seg_R_50_FPN_release.yaml", "Pose2Seg release model"),
    "mask_rcnn": ("configs/mask_rcnn_R_50_FPN_coco_persons.yaml", "Mask R-CNN"),
}
BASELINE = "mask_rcnn"


def is_pose2seg(name):
    return name != BASELINE


def build_cfg(name, device, opts=()):
    """The model's config with random weights on ``device``, then ``opts`` (KEY VALUE ...)."""
    cfg = get_cfg()
    add_pose2seg_config(cfg)
    cfg.merge_from_file(os.path.join(ROOT, MODELS[name][0]))
    cfg.MODEL.DEVICE = device
    cfg.MODEL.WEIGHTS = ""
    if not is_pose2seg(name):
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    cfg.merge_from_list(list(opts))
    return cfg


def build(name, device, opts=(), seed=0, train=False):
    """A model in eval (or training) mode, its weights drawn from ``seed`` and its
    FrozenBatchNorm statistics calibrated on a synthetic image (see
    :func:`calibrate_frozen_batchnorm`)."""
    torch.manual_seed(seed)
    model = build_model(build_cfg(name, device, opts))
    calibrate_frozen_batchnorm(model, make_input(256, 1, seed=seed))
    return model.train(train)


def set_detections(model, name, persons):
    """Mask R-CNN: keep exactly ``persons`` detections (TEST.DETECTIONS_PER_IMAGE)."""
    if not is_pose2seg(name):
        model.roi_heads.box_predictor.test_topk_per_image = persons


def model_label(name, variant=""):
    """The model's name in the tables, with its variant's in brackets."""
    return MODELS[name][1] + (f" [{variant}]" if variant else "")
