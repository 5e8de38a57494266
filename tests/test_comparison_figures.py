"""The comparison's grids: a run's masks take the colors of the ground-truth persons they match."""
import cv2
import numpy as np
import torch
from detectron2.data import DatasetCatalog
from detectron2.structures import Instances

from pose2seg_d2.comparison import FIGURE_MATCH_IOU, PANEL_GAP, TITLE_HEIGHT, ModelRun, write_figures
from pose2seg_d2.comparison.plots import FIGURE_SCORE_THRESHOLD
from pose2seg_d2.data.coco_format import decode_segmentation
from pose2seg_d2.visualization import CONFIDENCE_THRESHOLD, FALSE_POSITIVE_COLOR, PALETTE, mask_iou

from .fixtures import register_tiny_person_dataset

ALPHA = 0.55  # the grids' mask opacity


def panel(grid, i, width):
    x = i * (width + PANEL_GAP)
    return grid[TITLE_HEIGHT:, x : x + width].astype(float)


def drawn_color(panel_bgr, image_bgr, region):
    """The RGB color (0-255) blended over ``region``: panel = (1 - a) image + a color."""
    colors = (panel_bgr[region] - (1 - ALPHA) * image_bgr[region]) / ALPHA
    return np.median(colors, axis=0)[::-1]


def interior(mask, others):
    return cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~others


def test_matched_masks_take_their_ground_truth_persons_colors(tmp_path):
    name = register_tiny_person_dataset("tiny_figure_colors", str(tmp_path / "data"), num_images=1, seed=3)
    record = DatasetCatalog.get(name)[0]
    h, w = record["height"], record["width"]
    gt = np.stack([decode_segmentation(a["segmentation"], h, w).astype(bool) for a in record["annotations"]])
    assert len(gt) == 2
    dilated = cv2.dilate(gt[0].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    false_positive = np.zeros((h, w), bool)
    low_score = np.zeros((h, w), bool)
    free = ~cv2.dilate(gt.any(0).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    # two 12 x 12 squares in the image's corners away from every person
    corners = [(y, x) for y in (0, h - 12) for x in (0, w - 12) if free[y : y + 12, x : x + 12].all()]
    assert len(corners) >= 2, "the image has no two free corners"
    for square, (y, x) in zip((false_positive, low_score), corners):
        square[y : y + 12, x : x + 12] = True
    # the run's masks, best first: person 1 exactly, person 0 grown by a pixel, a false
    # positive, and one below the threshold; in palette order, person 1 would be color 0
    predicted = np.stack([gt[1], dilated, false_positive, low_score])
    assert mask_iou(torch.from_numpy(predicted[1:2]), torch.from_numpy(gt[:1])).item() >= FIGURE_MATCH_IOU
    instances = Instances((h, w))
    instances.pred_masks = torch.from_numpy(predicted)
    instances.scores = torch.tensor([0.95, 0.9, 0.8, CONFIDENCE_THRESHOLD - 0.1])
    run = ModelRun(model="pose2seg", keypoints="gt", label="Pose2Seg", config={}, dataset=name, predictions=[instances])
    assert FIGURE_SCORE_THRESHOLD == CONFIDENCE_THRESHOLD

    paths, _ = write_figures(str(tmp_path), name, [run], [0])
    grid = cv2.imread(paths[0])
    image = cv2.imread(record["file_name"]).astype(float)
    truth, ours = panel(grid, 1, w), panel(grid, 2, w)
    for person in (0, 1):
        region = interior(gt[person], gt[1 - person] | dilated * (person == 1))
        assert region.sum() >= 40, f"person {person}: {region.sum()} pixels to test"
        expected = 255 * PALETTE[person]
        np.testing.assert_allclose(drawn_color(truth, image, region), expected, atol=3)  # the reference palette
        np.testing.assert_allclose(drawn_color(ours, image, region), expected, atol=3, err_msg=f"person {person}")
    region = interior(false_positive, np.zeros_like(free))
    np.testing.assert_allclose(drawn_color(ours, image, region), 255 * np.array(FALSE_POSITIVE_COLOR), atol=3)
    # the mask below the threshold is not drawn
    assert np.array_equal(ours[low_score], image[low_score])
