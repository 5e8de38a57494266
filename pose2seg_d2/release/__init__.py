"""
The release's test-time model (docs/method.md §6), to run the authors' trained Pose2Seg: its
square-input and window-sampling geometry, its FPN, :class:`ReleasePose2Seg` and the conversion
of its checkpoint. Importing it registers ``ReleasePose2Seg`` (META_ARCH_REGISTRY) and
``build_release_resnet_fpn_backbone`` (BACKBONE_REGISTRY).
"""
from .backbone import ReleaseFPN, build_release_resnet_fpn_backbone
from .checkpoint import ReleaseCheckpointError, convert_release_state_dict, load_release_state_dict, release_to_pose2seg_key
from .geometry import (
    align_corners_sampling_matrices,
    feature_from_image_matrices,
    pixel_from_continuous_matrix,
    release_input_matrices,
    warp_into_input,
)
from .meta_arch import ReleasePose2Seg

__all__ = [
    "ReleaseCheckpointError",
    "ReleaseFPN",
    "ReleasePose2Seg",
    "align_corners_sampling_matrices",
    "build_release_resnet_fpn_backbone",
    "convert_release_state_dict",
    "feature_from_image_matrices",
    "load_release_state_dict",
    "pixel_from_continuous_matrix",
    "release_input_matrices",
    "release_to_pose2seg_key",
    "warp_into_input",
]
