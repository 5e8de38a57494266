"""Pose2Seg on Detectron2. Importing the package registers its components."""
from . import layers, modeling, pose  # noqa: F401

__version__ = "0.1.0"
