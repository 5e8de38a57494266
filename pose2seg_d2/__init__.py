"""Pose2Seg on Detectron2. Importing the package registers its components."""
from . import assets_path, data, layers, modeling, pose, release  # noqa: F401  (registers Pose2Seg, its
# parts, the release's model, the datasets and the pose2seg_d2:// paths)
from .config import add_pose2seg_config

__version__ = "0.1.0"
__all__ = ["add_pose2seg_config"]
