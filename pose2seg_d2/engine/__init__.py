from .checkpoint import AtomicDetectionCheckpointer, atomic_write
from .predictor import Pose2SegPredictor
from .trainer import Pose2SegTrainer, build_adam_or_sgd_optimizer, uses_pose2seg

__all__ = [
    "AtomicDetectionCheckpointer",
    "Pose2SegPredictor",
    "Pose2SegTrainer",
    "atomic_write",
    "build_adam_or_sgd_optimizer",
    "uses_pose2seg",
]
