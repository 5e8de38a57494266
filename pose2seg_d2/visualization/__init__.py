"""
What demo.py and the comparison's figures draw: persons matched across video frames (keypoint
similarity) or to the ground truth (mask IoU), their colors, the masks and skeletons drawn, and
the video files read and written.
"""
from .colors import (
    FALSE_POSITIVE_COLOR,
    MEMORY_FRAMES,
    MIN_TRACK_SIMILARITY,
    PALETTE,
    PersonColors,
    palette_colors,
)
from .drawing import CONFIDENCE_THRESHOLD, MASK_ALPHA, draw_persons, score_labels
from .matching import COCO_KEYPOINT_SIGMAS, greedy_match, keypoint_similarity, mask_iou
from .video import (
    DEFAULT_FPS,
    DEFAULT_VIDEO_EXTENSION,
    VIDEO_CODECS,
    FrameDecodeError,
    VideoError,
    VideoSink,
    open_video,
    read_frames,
    video_output_path,
)

__all__ = [
    "CONFIDENCE_THRESHOLD",
    "COCO_KEYPOINT_SIGMAS",
    "DEFAULT_FPS",
    "DEFAULT_VIDEO_EXTENSION",
    "FALSE_POSITIVE_COLOR",
    "FrameDecodeError",
    "MASK_ALPHA",
    "MEMORY_FRAMES",
    "MIN_TRACK_SIMILARITY",
    "PALETTE",
    "PersonColors",
    "VIDEO_CODECS",
    "VideoError",
    "VideoSink",
    "draw_persons",
    "greedy_match",
    "keypoint_similarity",
    "mask_iou",
    "open_video",
    "palette_colors",
    "read_frames",
    "score_labels",
    "video_output_path",
]
