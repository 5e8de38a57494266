from .occlusion import (
    MAX_IOU_BUCKETS,
    MaxIoURangeCOCOeval,
    OcclusionBucketEvaluator,
    ensure_gt_max_iou,
    evaluate_by_max_iou,
)
from .keypoints import KeypointVisibilityEvaluator, visibility_flags
