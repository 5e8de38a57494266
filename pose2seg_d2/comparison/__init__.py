"""
Side-by-side runs of Pose2Seg, Mask R-CNN and the keypoints-only reference (tools/compare.py):
train (or load) through :class:`~pose2seg_d2.engine.Pose2SegTrainer`, evaluate by occlusion on
several test sets, time inference on the same images, and write the tables and the figures.
"""
from .plots import (
    FIGURE_MATCH_IOU,
    FIGURE_SCORE_THRESHOLD,
    PANEL_GAP,
    TITLE_HEIGHT,
    ground_truth_matches,
    masks_panel,
    plot_ap_by_max_iou,
    titled_grid,
    write_figures,
)
from .report import write_results
from .runner import ModelRun, TimedModel, describe_config, evaluate_run, keypoint_ap, train_or_load

__all__ = [
    "FIGURE_MATCH_IOU",
    "FIGURE_SCORE_THRESHOLD",
    "ModelRun",
    "PANEL_GAP",
    "TITLE_HEIGHT",
    "TimedModel",
    "describe_config",
    "evaluate_run",
    "ground_truth_matches",
    "keypoint_ap",
    "masks_panel",
    "plot_ap_by_max_iou",
    "titled_grid",
    "train_or_load",
    "write_figures",
    "write_results",
]
