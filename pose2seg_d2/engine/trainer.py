"""The trainer behind train_net.py, for Pose2Seg and the Mask R-CNN baseline alike."""
import contextlib
import logging
import os
import weakref

import torch
from detectron2.data import build_detection_test_loader, build_detection_train_loader
from detectron2.engine import DefaultTrainer, hooks
from detectron2.engine import defaults as d2_defaults
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping
from detectron2.utils import comm

from ..data.dataset_mapper import DensePretrainingMapper, Pose2SegDatasetMapper, ValidatingDatasetMapper
from ..evaluation import OcclusionBucketEvaluator
from ..modeling.frozen_backbone import apply_backbone_options, freeze_fpn  # noqa: F401 (re-exported)
from .checkpoint import AtomicDetectionCheckpointer

__all__ = ["Pose2SegTrainer", "build_adam_or_sgd_optimizer", "freeze_fpn", "uses_pose2seg"]


# meta-architectures whose inputs are persons' keypoints: mapped by Pose2SegDatasetMapper,
# which keeps them at test time
KEYPOINT_INPUT_ARCHITECTURES = ("Pose2Seg", "KeypointsOnlyMasks")


def uses_pose2seg(cfg):
    """Whether ``cfg``'s model takes keypoints as input and is mapped as Pose2Seg is: Pose2Seg, a
    subclass of it (e.g. ReleasePose2Seg) or the keypoints-only reference."""
    from detectron2.modeling import META_ARCH_REGISTRY

    from ..modeling import Pose2Seg

    name = cfg.MODEL.META_ARCHITECTURE
    if name in KEYPOINT_INPUT_ARCHITECTURES:
        return True
    return name in META_ARCH_REGISTRY and issubclass(META_ARCH_REGISTRY.get(name), Pose2Seg)


def build_adam_or_sgd_optimizer(cfg, model):
    """Detectron2's parameter groups with SGD or Adam, as cfg.SOLVER.OPTIMIZER says."""
    params = get_default_optimizer_params(
        model,
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
        bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
        weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
    )
    name = cfg.SOLVER.OPTIMIZER.upper()
    if name == "SGD":
        optimizer = torch.optim.SGD(
            params, lr=cfg.SOLVER.BASE_LR, momentum=cfg.SOLVER.MOMENTUM, nesterov=cfg.SOLVER.NESTEROV,
            weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        )  # fmt: skip
    elif name == "ADAM":
        optimizer = torch.optim.Adam(params, lr=cfg.SOLVER.BASE_LR, weight_decay=cfg.SOLVER.WEIGHT_DECAY)
    else:
        raise ValueError(f"SOLVER.OPTIMIZER must be 'SGD' or 'ADAM', got {cfg.SOLVER.OPTIMIZER!r}")
    return maybe_add_gradient_clipping(cfg, optimizer)


_D2_CREATE_DDP_MODEL = d2_defaults.create_ddp_model


def _create_ddp_model_any_device(model, *, fp16_compression=False, **kwargs):
    """Detectron2's create_ddp_model, which also works for models on the CPU (gloo)."""
    if comm.get_world_size() > 1 and next(model.parameters()).device.type == "cpu":
        kwargs.setdefault("device_ids", None)  # DDP rejects device ids for CPU modules
    return _D2_CREATE_DDP_MODEL(model, fp16_compression=fp16_compression, **kwargs)


@contextlib.contextmanager
def _cpu_capable_ddp():
    # DefaultTrainer.__init__ wraps the model with detectron2.engine.defaults.create_ddp_model.
    d2_defaults.create_ddp_model = _create_ddp_model_any_device
    try:
        yield
    finally:
        d2_defaults.create_ddp_model = _D2_CREATE_DDP_MODEL


class Pose2SegTrainer(DefaultTrainer):
    """
    DefaultTrainer with: the Pose2Seg dataset mapper (for Pose2Seg models; Detectron2's with
    clear errors on bad data, :class:`ValidatingDatasetMapper`, for the others), Adam or SGD,
    COCO mask AP overall and by MaxIoU bucket, distributed training on CPUs (gloo) as well
    as GPUs, and checkpoints written atomically (:class:`AtomicDetectionCheckpointer`), so a
    training killed at any moment resumes (``--resume``) from its last complete checkpoint.
    """

    def __init__(self, cfg):
        with _cpu_capable_ddp():
            super().__init__(cfg)
        periodic = [h for h in self._hooks if isinstance(h, hooks.PeriodicCheckpointer)]
        assert isinstance(self.checkpointer, AtomicDetectionCheckpointer) and all(
            h.checkpointer is self.checkpointer for h in periodic
        ), "the periodic checkpoints must go through the atomic checkpointer"

    def build_hooks(self):
        # DefaultTrainer.__init__ creates self.checkpointer (a DetectionCheckpointer) right
        # before it calls build_hooks; swap in the atomic one first, so that the
        # PeriodicCheckpointer built here and resume_or_load both use it.
        self.checkpointer = AtomicDetectionCheckpointer(
            self.model, self.cfg.OUTPUT_DIR, trainer=weakref.proxy(self)
        )
        return super().build_hooks()

    @classmethod
    def build_model(cls, cfg):
        has_backbone = cfg.MODEL.META_ARCHITECTURE != "KeypointsOnlyMasks"
        if has_backbone and not cfg.MODEL.WEIGHTS and cfg.MODEL.RESNETS.NORM == "FrozenBN":
            logging.getLogger(__name__).warning(
                "MODEL.WEIGHTS is empty and MODEL.RESNETS.NORM is FrozenBN: the backbone starts "
                "from random weights it cannot normalize, and trains poorly. Give ImageNet weights "
                "(README.md, 'Weights') or set MODEL.RESNETS.NORM and MODEL.FPN.NORM to BN or GN."
            )
        return apply_backbone_options(super().build_model(cfg), cfg)

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_adam_or_sgd_optimizer(cfg, model)

    @classmethod
    def build_train_loader(cls, cfg):
        # Detectron2's mapping for any model, with errors that name the file, record and field
        if cfg.MODEL.META_ARCHITECTURE == "DenseHumanPretraining":
            mapper = DensePretrainingMapper(cfg, True)
        else:
            mapper = (Pose2SegDatasetMapper if uses_pose2seg(cfg) else ValidatingDatasetMapper)(cfg, True)
        return build_detection_train_loader(cfg, mapper=mapper)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        mapper = (Pose2SegDatasetMapper if uses_pose2seg(cfg) else ValidatingDatasetMapper)(cfg, False)
        return build_detection_test_loader(cfg, dataset_name, mapper=mapper)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        # COCO mask AP (results["segm"]) and the same per MaxIoU bucket (results["segm_by_max_iou"])
        return OcclusionBucketEvaluator(dataset_name, distributed=True, output_dir=output_folder)
