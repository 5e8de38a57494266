"""pose2seg_d2.visualization: OKS and mask IoU against pycocotools, the one-to-one matching, the
colors that follow persons across video frames, and the video files."""
from collections import defaultdict

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from pycocotools.cocoeval import COCOeval

from pose2seg_d2.visualization import (
    FrameDecodeError,
    PersonColors,
    VideoError,
    greedy_match,
    keypoint_similarity,
    mask_iou,
    read_frames,
    video_output_path,
)

from .fixtures import STANDING


def random_persons(rng, n, labeled_fraction=0.8):
    xy = rng.uniform(0, 200, (n, 17, 2))
    v = np.where(rng.random((n, 17)) < labeled_fraction, 2.0, 0.0)
    return np.concatenate([xy, v[..., None]], -1)


def test_keypoint_similarity_is_cocos_oks():
    """Against pycocotools' own OKS (its sigmas, its formula), the references all labeled
    (COCO averages over the ground truth's labeled keypoints, this over those labeled in both)."""
    rng = np.random.default_rng(0)
    reference = random_persons(rng, 4, labeled_fraction=1.0)
    areas = rng.uniform(500, 20000, 4)
    # persons near the references, and far ones
    others = np.concatenate([reference[[2, 0, 1]] + np.pad(rng.normal(0, 6, (3, 17, 2)), ((0, 0), (0, 0), (0, 1))),
                             random_persons(rng, 2, labeled_fraction=1.0)])  # fmt: skip
    ours = keypoint_similarity(torch.tensor(others), torch.tensor(reference), torch.tensor(areas))

    evaluator = COCOeval(iouType="keypoints")
    evaluator._gts, evaluator._dts = defaultdict(list), defaultdict(list)
    evaluator._gts[1, 1] = [
        {"keypoints": k.reshape(-1).tolist(), "area": a, "bbox": [0, 0, 10, 10]} for k, a in zip(reference, areas)
    ]
    # scores descending in the given order: computeOks sorts the detections by score
    evaluator._dts[1, 1] = [{"keypoints": k.reshape(-1).tolist(), "score": 1 - 0.1 * i} for i, k in enumerate(others)]
    coco = evaluator.computeOks(1, 1)
    assert ours.shape == (5, 4)
    np.testing.assert_allclose(ours.numpy(), coco, rtol=1e-5, atol=1e-6)
    assert (ours[[0, 1, 2], [2, 0, 1]] > 0.5).all() and ours[3:].max() < 0.2


def test_keypoint_similarity_counts_keypoints_labeled_in_both():
    rng = np.random.default_rng(1)
    a = random_persons(rng, 3)
    b = random_persons(rng, 2)
    b[1, :, 2] = 0  # nothing labeled
    areas = np.array([3000.0, 3000.0])
    ours = keypoint_similarity(torch.tensor(a), torch.tensor(b), torch.tensor(areas)).numpy()
    sigmas = np.array([0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
                       0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089])  # fmt: skip
    for i in range(3):
        for j in range(2):
            both = (a[i, :, 2] > 0) & (b[j, :, 2] > 0)
            d2 = ((a[i, :, :2] - b[j, :, :2]) ** 2).sum(-1)
            expected = np.exp(-d2 / (2 * areas[j] * (2 * sigmas) ** 2))[both].mean() if both.any() else 0.0
            assert ours[i, j] == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert (ours[:, 1] == 0).all()


def test_mask_iou_is_pycocotools():
    rng = np.random.default_rng(2)
    masks = rng.random((5, 20, 30)) < rng.uniform(0.1, 0.6, (5, 1, 1))
    reference = rng.random((3, 20, 30)) < 0.3
    reference[2] = False  # empty
    ours = mask_iou(torch.from_numpy(masks), torch.from_numpy(reference)).numpy()
    rle = lambda m: mask_util.encode(np.asfortranarray(m.transpose(1, 2, 0).astype(np.uint8)))  # noqa: E731
    expected = mask_util.iou(rle(masks), rle(reference), [0, 0, 0])
    np.testing.assert_allclose(ours, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="pixels"):
        mask_iou(torch.zeros(1, 4, 4, dtype=torch.bool), torch.zeros(1, 4, 5, dtype=torch.bool))


def sequential_match(similarity, minimum):
    """The reference: all pairs sorted by similarity (descending, ties by row then column),
    each taken when its row and column are both free."""
    n, m = similarity.shape
    pairs = sorted(((-similarity[i, j], i, j) for i in range(n) for j in range(m)))
    match, used = [-1] * n, set()
    for negative, i, j in pairs:
        if -negative >= minimum and match[i] < 0 and j not in used:
            match[i] = j
            used.add(j)
    return match


def test_greedy_match_is_one_to_one_most_similar_first():
    similarity = torch.tensor([[0.9, 0.8, 0.0], [0.95, 0.1, 0.0], [0.2, 0.3, 0.4]])
    # row 1 takes column 0 (0.95), row 0 the next best free one; row 2's 0.4 is below 0.5
    assert greedy_match(similarity, 0.5).tolist() == [1, 0, -1]
    assert greedy_match(similarity, 0.3).tolist() == [1, 0, 2]
    assert greedy_match(torch.zeros(0, 3), 0.5).tolist() == []
    assert greedy_match(torch.zeros(2, 0), 0.5).tolist() == [-1, -1]
    assert greedy_match(torch.tensor([[float("nan"), 0.7]]), 0.5).tolist() == [1]
    rng = np.random.default_rng(3)
    for _ in range(50):
        n, m = rng.integers(0, 7, 2)
        values = np.round(rng.random((n, m)), 1)  # ties
        assert greedy_match(torch.tensor(values), 0.3).tolist() == sequential_match(values, 0.3)


def person(x, y, height=60.0):
    """(17, 3) keypoints of a standing person with its box's top left corner at (x, y)."""
    xy = STANDING * [0.5 * height, height] + [x, y]
    return np.concatenate([xy, np.full((17, 1), 2.0)], 1)


def frame(*persons):
    keypoints = torch.tensor(np.stack(persons) if persons else np.zeros((0, 17, 3)), dtype=torch.float32)
    return keypoints, torch.full((len(persons),), 600.0)


def test_person_colors_follow_persons_across_frames():
    colors = PersonColors()
    p, q = colors(*frame(person(10, 10), person(100, 10))).tolist()
    assert p != q
    # the next frame: both moved a little, listed the other way round (as a score order swap gives)
    assert colors(*frame(person(104, 12), person(13, 11))).tolist() == [q, p]
    # q is gone, a new person r comes in: p keeps its color, r gets one nobody has had
    p2, r = colors(*frame(person(15, 11), person(200, 30))).tolist()
    assert p2 == p and r not in (p, q)
    # q comes back two frames later near where it was: its color again
    assert colors(*frame(person(106, 12), person(16, 11), person(201, 30))).tolist() == [q, p, r]
    # a frame without anyone, then p again
    assert colors(*frame()).tolist() == []
    assert colors(*frame(person(17, 11))).tolist() == [p]


def test_person_colors_remember_only_the_previous_frame_when_told():
    colors = PersonColors(memory_frames=1)
    p, q = colors(*frame(person(10, 10), person(100, 10))).tolist()
    assert colors(*frame(person(11, 10))).tolist() == [p]
    back = colors(*frame(person(11, 10), person(100, 10))).tolist()
    assert back[0] == p and back[1] not in (p, q)
    with pytest.raises(ValueError, match="memory_frames"):
        PersonColors(memory_frames=0)


def test_person_colors_keep_persons_apart_when_they_cross():
    """Two persons passing each other: each is matched to itself, not to the other."""
    colors = PersonColors()
    first = colors(*frame(person(40, 10), person(80, 10))).tolist()
    for step in range(1, 8):
        a, b = 40 + 5 * step, 80 - 5 * step
        assert colors(*frame(person(a, 10), person(b, 10))).tolist() == first, f"step {step}"


class FailingCapture:
    """A capture whose ``read`` gives ``good`` frames and then fails as OpenCV's FFmpeg does."""

    def __init__(self, good, error):
        self.good, self.error, self.calls = good, error, 0

    def read(self):
        self.calls += 1
        if self.calls <= self.good:
            return True, np.full((8, 8, 3), self.calls, np.uint8)
        if self.error:
            raise cv2.error("decoding failed")
        return False, None


def test_read_frames_says_which_frame_failed_to_decode():
    with pytest.raises(FrameDecodeError, match="frame 2 could not be decoded") as e:
        list(read_frames(FailingCapture(2, error=True)))
    assert e.value.index == 2
    with pytest.raises(FrameDecodeError, match="frame 3 could not be decoded.*announces 5 frames"):
        list(read_frames(FailingCapture(3, error=False), frame_count=5))
    # a failed read at the announced end, or without an announced length, is the end
    assert len(list(read_frames(FailingCapture(3, error=False), frame_count=3))) == 3
    assert len(list(read_frames(FailingCapture(4, error=False)))) == 4


def test_video_output_path(tmp_path):
    assert video_output_path(str(tmp_path), "clips/street.avi") == str(tmp_path / "street.mp4")
    assert video_output_path(str(tmp_path / "new") + "/", "street.avi") == str(tmp_path / "new" / "street.mp4")
    assert video_output_path(str(tmp_path / "new_folder"), "street.avi") == str(tmp_path / "new_folder" / "street.mp4")
    assert video_output_path("out/drawn.mkv", "street.avi") == "out/drawn.mkv"
    with pytest.raises(VideoError, match=r"--output out/drawn.gif.*\.mp4, \.avi, \.mkv"):
        video_output_path("out/drawn.gif", "street.avi")
