from .atomic_io import atomic_write
from .checkpoint import AtomicDetectionCheckpointer
from .partial_checkpoints import BASE_WEIGHTS_KEY, base_weights_of, file_sha256, save_partial_checkpoint
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
    "BASE_WEIGHTS_KEY",
    "WeightsUnavailableError",
    "Pose2SegPredictor",
    "Pose2SegTrainer",
    "atomic_write",
    "base_weights_of",
    "build_adam_or_sgd_optimizer",
    "build_tta_model",
    "check_weights_available",
    "file_sha256",
    "has_backbone",
    "input_kind",
    "save_partial_checkpoint",
    "takes_keypoints",
]
