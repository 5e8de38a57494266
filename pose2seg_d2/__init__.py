"""Pose2Seg on Detectron2. Importing the package registers its components."""
from . import layers, modeling, pose  # noqa: F401  (modeling registers Pose2Seg and its parts)
from .config import add_pose2seg_config

__version__ = "0.1.0"
__all__ = ["add_pose2seg_config"]
