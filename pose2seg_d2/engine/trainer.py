"""The trainer behind train_net.py, for Pose2Seg and the Mask R-CNN baseline alike."""
import contextlib
import functools
import logging
import os
import weakref
from collections import OrderedDict

import torch
from detectron2.data import build_detection_test_loader, build_detection_train_loader
from detectron2.engine import DefaultTrainer, hooks
from detectron2.engine import defaults as d2_defaults
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping
from detectron2.utils import comm

from ..data.copy_paste import CopyPasteDatasetMapper, CopyPastePose2SegMapper
from ..data.dataset_mapper import DensePretrainingMapper, Pose2SegDatasetMapper, ValidatingDatasetMapper
from ..data.train_keypoints import train_dicts_with_predicted_keypoints
from ..evaluation import OcclusionBucketEvaluator
from ..modeling.frozen_backbone import check_backbone_options_are_read
from .checkpoint import AtomicDetectionCheckpointer

__all__ = [
    "Pose2SegTrainer", "build_adam_or_sgd_optimizer", "build_tta_model", "has_backbone", "input_kind",
    "takes_keypoints", "train_mapper_class",
]  # fmt: skip

# What a meta-architecture's class declares as ``input_kind``: what its inputs hold, and so
# the dataset mapper the trainer gives it, in training and at test time. Those without the
# attribute (Detectron2's own, e.g. GeneralizedRCNN) are "images".
TRAIN_MAPPERS = {
    "images": ValidatingDatasetMapper,  # Detectron2's, with errors naming file, record and field
    "keypoints": Pose2SegDatasetMapper,  # persons' keypoints, kept at test time
    "dense": DensePretrainingMapper,  # person masks and keypoint heatmap targets
}
TEST_MAPPERS = {"images": ValidatingDatasetMapper, "keypoints": Pose2SegDatasetMapper, "dense": ValidatingDatasetMapper}
# The training mappers with INPUT.COPY_PASTE.ENABLED: the same, pasting persons onto the images.
COPY_PASTE_TRAIN_MAPPERS = {"images": CopyPasteDatasetMapper, "keypoints": CopyPastePose2SegMapper}


def _meta_architecture(cfg):
    from detectron2.modeling import META_ARCH_REGISTRY

    from .. import modeling  # noqa: F401  (registers the package's meta-architectures)

    return META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE)


def input_kind(cfg):
    """The ``input_kind`` that ``cfg``'s meta-architecture declares (a key of TRAIN_MAPPERS)."""
    kind = getattr(_meta_architecture(cfg), "input_kind", "images")
    if kind not in TRAIN_MAPPERS:
        raise ValueError(
            f"{cfg.MODEL.META_ARCHITECTURE}.input_kind must be one of {sorted(TRAIN_MAPPERS)}, got {kind!r}"
        )
    return kind


def takes_keypoints(cfg):
    """Whether ``cfg``'s model takes persons' keypoints as input (Pose2Seg, its subclasses, the
    keypoints-only reference), mapped by Pose2SegDatasetMapper."""
    return input_kind(cfg) == "keypoints"


def train_mapper_class(cfg):
    """The training mapper class of ``cfg``'s model: TRAIN_MAPPERS', or with
    INPUT.COPY_PASTE.ENABLED its copy-paste counterpart (none for the dense pretraining)."""
    kind = input_kind(cfg)
    if not cfg.INPUT.COPY_PASTE.ENABLED:
        return TRAIN_MAPPERS[kind]
    if kind not in COPY_PASTE_TRAIN_MAPPERS:
        raise ValueError(
            f"INPUT.COPY_PASTE.ENABLED is not supported for {cfg.MODEL.META_ARCHITECTURE} (input_kind "
            f"{kind!r}); it is for models trained on instances: {sorted(COPY_PASTE_TRAIN_MAPPERS)}"
        )
    return COPY_PASTE_TRAIN_MAPPERS[kind]


def has_backbone(cfg):
    """Whether ``cfg``'s meta-architecture computes image features (its class's ``has_backbone``,
    True when it declares none): the keypoints-only reference has none, and nothing to learn."""
    return bool(getattr(_meta_architecture(cfg), "has_backbone", True))


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


def build_tta_model(cfg, model):
    """
    ``model`` with test-time augmentation (TEST.AUG): :class:`Pose2SegWithTTA` for Pose2Seg and
    its subclasses (the horizontal flip), Detectron2's ``GeneralizedRCNNWithTTA`` for its
    GeneralizedRCNN (Mask R-CNN: flip and TEST.AUG.MIN_SIZES); other meta-architectures have
    none, an error.
    """
    from detectron2.modeling import GeneralizedRCNN, GeneralizedRCNNWithTTA
    from torch.nn.parallel import DistributedDataParallel

    from ..modeling import Pose2Seg, Pose2SegWithTTA

    module = model.module if isinstance(model, DistributedDataParallel) else model
    if isinstance(module, Pose2Seg):
        return Pose2SegWithTTA(cfg, model)
    if isinstance(module, GeneralizedRCNN):
        return GeneralizedRCNNWithTTA(cfg, model)
    raise ValueError(
        f"TEST.AUG.ENABLED: MODEL.META_ARCHITECTURE {cfg.MODEL.META_ARCHITECTURE!r} has no test-time "
        "augmentation (Pose2Seg and its subclasses, and GeneralizedRCNN, have); set TEST.AUG.ENABLED False"
    )


@contextlib.contextmanager
def _ddp_without_device_ids_on_cpu(cfg):
    """
    Within the block, DefaultTrainer.__init__'s DistributedDataParallel of a model on the CPU
    (gloo, more than one process) is given no device ids.
    """
    # detectron2.engine.defaults.create_ddp_model passes device_ids=[local rank] unless told
    # otherwise, which DistributedDataParallel rejects for a module on the CPU, and
    # DefaultTrainer.__init__ calls it with no way to pass device_ids=None: swap the module-level
    # function for the constructor's duration, and only for distributed CPU training.
    if comm.get_world_size() == 1 or torch.device(cfg.MODEL.DEVICE).type != "cpu":
        yield
        return
    upstream = d2_defaults.create_ddp_model
    d2_defaults.create_ddp_model = functools.partial(upstream, device_ids=None)
    try:
        yield
    finally:
        d2_defaults.create_ddp_model = upstream


class Pose2SegTrainer(DefaultTrainer):
    """
    DefaultTrainer with: the Pose2Seg dataset mapper (for Pose2Seg models; Detectron2's with
    clear errors on bad data, :class:`ValidatingDatasetMapper`, for the others; in training with
    INPUT.COPY_PASTE.ENABLED, their copy-paste counterparts, :func:`train_mapper_class`), Adam or SGD,
    COCO mask AP overall and by MaxIoU bucket, distributed training on CPUs (gloo) as well
    as GPUs, and checkpoints written atomically (:class:`AtomicDetectionCheckpointer`), so a
    training killed at any moment resumes (``--resume``) from its last complete checkpoint.
    """

    def __init__(self, cfg):
        with _ddp_without_device_ids_on_cpu(cfg):
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
        if has_backbone(cfg):
            check_backbone_options_are_read(cfg)
            if not cfg.MODEL.WEIGHTS and cfg.MODEL.RESNETS.NORM == "FrozenBN":
                logging.getLogger(__name__).warning(
                    "MODEL.WEIGHTS is empty and MODEL.RESNETS.NORM is FrozenBN: the backbone starts "
                    "from random weights it cannot normalize, and trains poorly. Give ImageNet weights "
                    "(README.md, 'Weights') or set MODEL.RESNETS.NORM and MODEL.FPN.NORM to BN or GN."
                )
        return super().build_model(cfg)

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_adam_or_sgd_optimizer(cfg, model)

    @classmethod
    def build_train_loader(cls, cfg):
        mapper = train_mapper_class(cfg)(cfg, True)
        if takes_keypoints(cfg) and cfg.MODEL.POSE2SEG.TRAIN_KEYPOINTS_FILE:
            # the training records with a pose estimator's keypoints in place of the annotated ones
            return build_detection_train_loader(cfg, mapper=mapper, dataset=train_dicts_with_predicted_keypoints(cfg))
        return build_detection_train_loader(cfg, mapper=mapper)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_detection_test_loader(cfg, dataset_name, mapper=TEST_MAPPERS[input_kind(cfg)](cfg, False))

    @classmethod
    def test_with_TTA(cls, cfg, model):
        """
        :meth:`test` of ``model`` with test-time augmentation (:func:`build_tta_model`), the
        evaluation written to OUTPUT_DIR/inference_TTA/; the results' keys end in "_TTA".
        """
        logging.getLogger(__name__).info("Running inference with test-time augmentation ...")
        tta_model = build_tta_model(cfg, model)
        evaluators = [
            cls.build_evaluator(cfg, name, output_folder=os.path.join(cfg.OUTPUT_DIR, "inference_TTA", name))
            for name in cfg.DATASETS.TEST
        ]
        results = cls.test(cfg, tta_model, evaluators)
        return OrderedDict((key + "_TTA", value) for key, value in results.items())

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        own = getattr(_meta_architecture(cfg), "build_evaluator", None)
        if own is not None:  # e.g. BottomUpKeypoints: COCO keypoint AP
            return own(cfg, dataset_name, output_folder)
        # COCO mask AP (results["segm"]) and the same per MaxIoU bucket (results["segm_by_max_iou"])
        return OcclusionBucketEvaluator(dataset_name, distributed=True, output_dir=output_folder)
