from .atomic_io import atomic_write
from .checkpoint import AtomicDetectionCheckpointer
from .weights import WeightsUnavailableError, check_weights_available
from .predictor import Pose2SegPredictor
from .trainer import (
    Pose2SegTrainer,
    build_adam_or_sgd_optimizer,
    build_tta_model,
    has_backbone,
    input_kind,
    takes_keypoints,
)

__all__ = [
    "AtomicDetectionCheckpointer",
    "WeightsUnavailableError",
    "Pose2SegPredictor",
    "Pose2SegTrainer",
    "atomic_write",
    "build_adam_or_sgd_optimizer",
    "build_tta_model",
    "check_weights_available",
    "has_backbone",
    "input_kind",
    "takes_keypoints",
]
