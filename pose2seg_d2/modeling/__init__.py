from .aligners import (
    POSE2SEG_ALIGNER_REGISTRY,
    KeypointBoxAligner,
    PoseAffineAligner,
    build_aligner,
)
from .bottom_up import BOTTOM_UP_HEAD_REGISTRY, BottomUpKeypoints, BottomUpKeypointSource
from .dense_pretraining import DenseHumanPretraining
from .frozen_backbone import FrozenFPN, build_frozen_resnet_fpn_backbone, freeze_fpn
from .keypoint_sources import (
    KEYPOINT_SOURCE_REGISTRY,
    GTKeypointSource,
    JSONKeypointSource,
    KeypointsFileError,
    ModelKeypointSource,
    build_keypoint_source,
    confident_persons,
    load_keypoint_results,
)
from .keypoints_only import KeypointsOnlyMasks, figure_distances, figure_masks
from .meta_arch import Pose2Seg
from .seg_module import POSE2SEG_HEAD_REGISTRY, Bottleneck, SegModule, build_pose2seg_head
from .skeleton_features import (
    POSE2SEG_SKELETON_REGISTRY,
    NoSkeletonFeatures,
    SkeletonFeatures,
    build_skeleton_features,
)
from .test_time_augmentation import Pose2SegWithTTA
