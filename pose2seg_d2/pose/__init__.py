from .keypoints import (
    COCO_PERSON_FLIP_MAP,
    COCO_PERSON_KEYPOINT_NAMES,
    COCO_PERSON_LIMBS,
    NUM_KEYPOINTS,
    NUM_SKELETON_CHANNELS,
    flip_permutation,
)
from .skeleton import skeleton_features
from .templates import FALLBACKS, MIN_SPREAD, MIRRORS, PoseFit, PoseTemplates
from .transforms import (
    MAX_COORDINATE,
    continuous_from_pixel_matrices,
    feature_from_input_matrix,
    keypoint_box_matrices,
    keypoint_box_roi_matrices,
    keypoint_boxes,
    labeled_keypoint_box,
    labeled_mask,
    mirror_keypoints,
    random_window_augmentation,
    per_person_sizes,
    resize_padding_matrices,
    resize_padding_matrix,
    scale_matrix,
    transform_keypoints,
)
from .clustering import cluster_templates, collect_poses, kmeans, normalize_poses
