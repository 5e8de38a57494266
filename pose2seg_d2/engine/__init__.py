from .trainer import Pose2SegTrainer, build_adam_or_sgd_optimizer, uses_pose2seg

__all__ = ["Pose2SegTrainer", "build_adam_or_sgd_optimizer", "uses_pose2seg"]
