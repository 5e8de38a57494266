"""
The bottom-up keypoint estimator (Associative Embedding, docs/method.md §7): its head
(``head``), training targets (``targets``) and losses (``losses``), the grouping of joints into
persons (``decoding``), the meta-architecture ``BottomUpKeypoints`` (``meta_arch``) and the
"bottom_up" keypoint source of Pose2Seg (``source``).
"""
from .decoding import COCO_JOINT_ORDER, decode_persons, group_joints, heatmap_peaks, quarter_pixel_offsets
from .head import BOTTOM_UP_HEAD_REGISTRY, AssociativeEmbeddingHead, build_bottom_up_head, pixel_positions
from .losses import heatmap_focal_loss, heatmap_loss, tag_losses, values_at_joints, visibility_loss
from .meta_arch import BottomUpKeypoints, check_bottom_up_options, keypoint_boxes
from .source import BottomUpKeypointSource
from .targets import heatmap_targets, joint_pixels, visibility_targets
