"""Copy-paste of persons: what it keeps true of the annotations, on hand-made scenes, polygons,
RLE, the synthetic data and through the training mappers."""
import os

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from pose2seg_d2.config import add_pose2seg_config
from pose2seg_d2.data.builtin import read_person_json
from pose2seg_d2.data.coco_format import decode_segmentation, dump_json, encode_mask
from pose2seg_d2.data.copy_paste import (
    CopyPaste,
    CopyPasteDatasetMapper,
    CopyPastePose2SegMapper,
    CopyPasteSources,
    PersonCrop,
    Placement,
    paste_persons,
    place_randomly,
    place_to_occlude,
)
from pose2seg_d2.data.dataset_mapper import Pose2SegDatasetMapper
from pose2seg_d2.data.synthetic import generate_split
from pose2seg_d2.data.validation import InvalidDatasetError
from pose2seg_d2.engine.trainer import train_mapper_class
from pose2seg_d2.pose.keypoints import COCO_PERSON_KEYPOINT_NAMES, flip_permutation

from .fixtures import register_tiny_person_dataset, tiny_pose2seg_cfg, write_templates

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLIP = np.asarray(flip_permutation())
K = len(COCO_PERSON_KEYPOINT_NAMES)
LEFT_WRIST, RIGHT_WRIST = COCO_PERSON_KEYPOINT_NAMES.index("left_wrist"), COCO_PERSON_KEYPOINT_NAMES.index("right_wrist")
H, W = 40, 60


# ------------------------------------------------------------------------------ hand-made scenes
def rect_mask(y0, y1, x0, x1, size=(H, W)):
    mask = np.zeros(size, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def keypoints_on(mask, rng, v=None):
    """K keypoints at pixel centers of ``mask`` (continuous coordinates), flags ``v`` (default 2)."""
    ys, xs = np.nonzero(mask)
    pick = rng.choice(len(ys), K, replace=len(ys) < K)
    flags = np.full(K, 2.0) if v is None else np.asarray(v, float)
    return np.stack([xs[pick] + 0.5, ys[pick] + 0.5, flags], 1)


def make_crop(rng, h=10, w=8):
    """An L-shaped person with unique colors and keypoints on its pixels (x: its left and right
    keypoints on different sides)."""
    mask = np.zeros((h, w), bool)
    mask[:, : w // 2] = True
    mask[h - 3 :, :] = True
    image = rng.permutation(256 * 256)[: h * w].reshape(h, w)
    image = np.stack([image % 256, image // 256, np.full_like(image, 7)], -1).astype(np.uint8)
    keypoints = keypoints_on(mask, rng)
    keypoints[LEFT_WRIST, :2] = [0.5, 0.5]
    keypoints[RIGHT_WRIST, :2] = [w - 0.5, h - 0.5]
    return PersonCrop(image, mask, keypoints, category_id=0, source={"id": 99})


def placed_mask(mask, x0, y0, size=(H, W)):
    """``mask`` at offset (x0, y0) in an image of ``size``, cut at its borders: the reference."""
    out = np.zeros((size[0] + 2 * mask.shape[0], size[1] + 2 * mask.shape[1]), bool)
    h, w = mask.shape
    out[y0 + h : y0 + 2 * h, x0 + w : x0 + 2 * w] = mask
    return out[h : h + size[0], w : w + size[1]]


def tight_box(mask):
    ys, xs = np.nonzero(mask)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@pytest.fixture
def scene():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    masks = np.stack([rect_mask(5, 30, 5, 20), rect_mask(5, 30, 35, 50)])
    flags_a = [2] * 9 + [1] * 4 + [0] * 4
    keypoints = np.stack([keypoints_on(masks[0], rng, flags_a), keypoints_on(masks[1], rng)])
    # a few of person 0's keypoints (visible, not visible, unlabeled) where the crop goes at (15, 10)
    keypoints[0, [0, 1, 2, 9, 13], :2] = [[16.5, 12.5], [17.5, 18.5], [15.5, 11.5], [16.5, 14.5], [15.5, 15.5]]
    keypoints[0, [3, 4], :2] = [[6.5, 6.5], [10.5, 20.5]]  # and visible ones away from it
    return image, masks, keypoints, make_crop(rng)


def test_covered_pixels_leave_the_persons_underneath(scene):
    image, masks, keypoints, crop = scene
    result = paste_persons(image, masks, keypoints, [crop], [Placement(1.0, False, 15, 10)], FLIP, 0.1)
    pasted = placed_mask(crop.mask, 15, 10)
    assert (pasted & masks[0]).any(), "the scene must cover person 0"
    assert list(result.origin) == [0, 1, 2] and list(result.changed) == [True, False, True]
    np.testing.assert_array_equal(result.masks[0], masks[0] & ~pasted)
    np.testing.assert_array_equal(result.masks[1], masks[1])
    np.testing.assert_array_equal(result.masks[2], pasted)
    assert result.masks.sum(0).max() == 1, "a pixel in two persons' masks"
    # the image: the crop's pixels where its mask is, the target's elsewhere
    expected = image.copy()
    expected[10:20, 15:23][crop.mask] = crop.image[crop.mask]
    np.testing.assert_array_equal(result.image, expected)
    for row in range(3):
        assert result.boxes[row].tolist() == tight_box(result.masks[row])


def test_covered_keypoints_become_not_visible_and_the_others_keep_their_flags(scene):
    image, masks, keypoints, crop = scene
    result = paste_persons(image, masks, keypoints, [crop], [Placement(1.0, False, 15, 10)], FLIP, 0.1)
    pasted = placed_mask(crop.mask, 15, 10)
    on_pasted = pasted[keypoints[0, :, 1].astype(int), keypoints[0, :, 0].astype(int)]
    v_before, v_after = keypoints[0, :, 2], result.keypoints[0, :, 2]
    assert (on_pasted & (v_before == 2)).any() and (~on_pasted & (v_before == 2)).any()
    np.testing.assert_array_equal(v_after[on_pasted & (v_before == 2)], 1)
    np.testing.assert_array_equal(v_after[~on_pasted | (v_before != 2)], v_before[~on_pasted | (v_before != 2)])
    np.testing.assert_array_equal(result.keypoints[0, :, :2], keypoints[0, :, :2])
    np.testing.assert_array_equal(result.keypoints[1], keypoints[1])


def test_persons_left_below_min_visible_are_removed(scene):
    image, masks, keypoints, _ = scene
    rng = np.random.default_rng(1)
    cover = rect_mask(0, 26, 0, 16, size=(26, 16))  # covers rows 5-25 of person 1 (x 35-50): 21 / 25
    big = PersonCrop(np.zeros((26, 16, 3), np.uint8), cover, keypoints_on(cover, rng))
    visible_fraction = 4 / 25
    kept = paste_persons(image, masks, keypoints, [big], [Placement(1.0, False, 35, 0)], FLIP, visible_fraction - 0.01)
    assert list(kept.origin) == [0, 1, 2]
    assert kept.masks[1].sum() == masks[1].sum() * visible_fraction
    assert kept.boxes[1].tolist() == [35, 26, 50, 30]
    dropped = paste_persons(image, masks, keypoints, [big], [Placement(1.0, False, 35, 0)], FLIP, visible_fraction + 0.01)
    assert list(dropped.origin) == [0, 2]
    # wholly covered: removed even with MIN_VISIBLE 0
    whole = rect_mask(0, 40, 0, 30, size=(40, 30))
    gone = PersonCrop(np.zeros((40, 30, 3), np.uint8), whole, keypoints_on(whole, rng))
    none_left = paste_persons(image, masks, keypoints, [gone], [Placement(1.0, False, 0, 0)], FLIP, 0.0)
    assert list(none_left.origin) == [1, 2]


@pytest.mark.parametrize("scale", [1.0, 3.0])
@pytest.mark.parametrize("flip", [False, True])
def test_pasted_keypoints_move_with_their_pixels(scene, scale, flip):
    # at scale 3, output pixel 3i + 1 samples exactly source pixel i, where the keypoint of
    # pixel i lands: the color under every pasted keypoint is that under its source keypoint
    image, masks, keypoints, crop = scene
    image = cv2.resize(image, (W * 2, H * 2))
    masks = np.zeros((0, H * 2, W * 2), bool)
    x0, y0 = 30, 4
    result = paste_persons(image, masks, np.zeros((0, K, 3)), [crop], [Placement(scale, flip, x0, y0)], FLIP, 0.1)
    (row,) = np.flatnonzero(result.origin == 0)
    out_kp, src_kp = result.keypoints[row], crop.keypoints[FLIP] if flip else crop.keypoints
    np.testing.assert_array_equal(out_kp[:, 2], src_kp[:, 2])
    for k in range(K):
        out_px = result.image[int(out_kp[k, 1]), int(out_kp[k, 0])]
        src_px = crop.image[int(src_kp[k, 1]), int(src_kp[k, 0])]
        np.testing.assert_array_equal(out_px, src_px, err_msg=f"keypoint {COCO_PERSON_KEYPOINT_NAMES[k]}")
        assert result.masks[row][int(out_kp[k, 1]), int(out_kp[k, 0])]
    h, w = crop.mask.shape
    reference = cv2.resize(crop.mask.astype(np.uint8), (int(w * scale), int(h * scale)), interpolation=cv2.INTER_NEAREST)
    reference = placed_mask(reference[:, ::-1] if flip else reference, x0, y0, size=(H * 2, W * 2))
    # the mask is resized bilinearly and thresholded: at scale 3 it differs from the blocky
    # nearest-neighbor reference only on a pixel touching the L's inner corner, which it rounds
    rows, cols = np.nonzero(result.masks[row] != (reference > 0))
    corner = np.array([x0 + scale * (w // 2), y0 + scale * (h - 3)])
    assert scale != 1 or len(rows) == 0
    assert (np.abs(cols + 0.5 - corner[0]) <= 1).all() and (np.abs(rows + 0.5 - corner[1]) <= 1).all()
    # mirrored, the left wrist is where the right one was, seen in a mirror
    if flip:
        assert out_kp[LEFT_WRIST, 0] == x0 + w * scale - scale * crop.keypoints[RIGHT_WRIST, 0]
        assert out_kp[LEFT_WRIST, 1] == y0 + scale * crop.keypoints[RIGHT_WRIST, 1]


def test_later_pasted_persons_cover_earlier_ones(scene):
    image, masks, keypoints, crop = scene
    first, second = Placement(1.0, False, 22, 12), Placement(1.0, False, 25, 14)
    result = paste_persons(image, masks, keypoints, [crop, crop], [first, second], FLIP, 0.0)
    assert list(result.origin) == [0, 1, 2, 3]
    under, over = placed_mask(crop.mask, 22, 12), placed_mask(crop.mask, 25, 14)
    np.testing.assert_array_equal(result.masks[2], under & ~over)
    np.testing.assert_array_equal(result.masks[3], over)
    assert result.masks.sum(0).max() == 1
    kp = result.keypoints[2]
    covered = over[(crop.keypoints[:, 1] + 12).astype(int), (crop.keypoints[:, 0] + 22).astype(int)]
    assert covered.any() and not covered.all()
    np.testing.assert_array_equal(kp[:, 2], np.where(covered, 1, 2))
    np.testing.assert_array_equal(result.keypoints[3, :, 2], 2)


def test_pasted_persons_are_cut_at_the_border(scene):
    image, masks, keypoints, crop = scene
    result = paste_persons(image, masks, keypoints, [crop], [Placement(1.0, False, -3, 35)], FLIP, 0.0)
    (row,) = np.flatnonzero(result.origin == 2)
    np.testing.assert_array_equal(result.masks[row], placed_mask(crop.mask, -3, 35))
    kp = result.keypoints[row]
    outside = (kp[:, 0] < 0) | (kp[:, 1] > H)
    assert outside.any() and not outside.all()
    np.testing.assert_array_equal(kp[:, 2], np.where(outside, 0, 2))
    # mostly outside (less than MIN_VISIBLE inside): not pasted, not drawn
    away = paste_persons(image, masks, keypoints, [crop], [Placement(1.0, False, -3, 35)], FLIP, 0.5)
    assert list(away.origin) == [0, 1]
    np.testing.assert_array_equal(away.image, image)


def test_overlaps_among_the_targets_own_persons_stay_as_annotated(scene):
    image, _, keypoints, crop = scene
    masks = np.stack([rect_mask(5, 30, 5, 25), rect_mask(5, 30, 20, 40)])
    result = paste_persons(image, masks, keypoints, [crop], [Placement(1.0, False, 45, 10)], FLIP, 0.1)
    np.testing.assert_array_equal(result.masks[:2], masks)
    assert not (result.masks[2] & masks.any(0)).any()


# ---------------------------------------------------------------------------------- placement
def test_random_placement_stays_inside_the_image_with_its_scale():
    rng = np.random.RandomState(0)
    for crop_size in [(10, 8), (80, 20), (30, 200)]:
        for _ in range(50):
            p = place_randomly(rng, (H, W), crop_size, np.zeros((0, 4)), (0.8, 1.2), 0.5, 0.4)
            h, w = round(crop_size[0] * p.scale), round(crop_size[1] * p.scale)
            assert 0 <= p.x0 and p.x0 + w <= W and 0 <= p.y0 and p.y0 + h <= H
            assert p.scale <= 1.2 and (p.scale >= 0.8 or p.scale == min(H / crop_size[0], W / crop_size[1]))
    flips = [place_randomly(rng, (H, W), (10, 8), None, (1, 1), f, 0).flip for f in (0.0, 1.0) for _ in range(20)]
    assert flips == [False] * 20 + [True] * 20


def test_occlude_placement_overlaps_a_person():
    rng = np.random.RandomState(0)
    boxes = np.array([[5.0, 5, 15, 30], [40, 10, 55, 38]])
    hits = np.zeros(2, int)
    for _ in range(100):
        p = place_to_occlude(rng, (H, W), (12, 8), boxes, (1.0, 1.0), 0.5, 0.0)
        pasted = [p.x0, p.y0, p.x0 + 8, p.y0 + 12]
        overlaps = [(min(pasted[2], b[2]) > max(pasted[0], b[0])) and (min(pasted[3], b[3]) > max(pasted[1], b[1])) for b in boxes]
        assert any(overlaps) and 0 <= p.x0 <= W - 8 and 0 <= p.y0 <= H - 12
        hits += overlaps
    assert (hits > 20).all(), "every person is a target"
    p = place_to_occlude(rng, (H, W), (12, 8), np.zeros((0, 4)), (1.0, 1.0), 0.5, 0.4)
    assert 0 <= p.x0 <= W - 8 and 0 <= p.y0 <= H - 12


# ------------------------------------------------------------------------ records: polygons, RLE
class FixedSources:
    def __init__(self, crop):
        self.crop = crop

    def draw(self, rng, exclude_file_name=None):
        return self.crop


def fixed_placement(x0, y0):
    return lambda rng, image_size, crop_size, boxes, scale_range, flip_prob, buffer: Placement(1.0, False, x0, y0)


def as_polygon(mask):
    x0, y0, x1, y1 = tight_box(mask)
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


SEGMENTATIONS = {
    "polygon": as_polygon,
    "rle": encode_mask,
    "rle_bytes": lambda m: mask_util.encode(np.asfortranarray(m.astype(np.uint8))),
    "rle_uncompressed": lambda m: {"size": [H, W], "counts": uncompressed_counts(m)},
}


def uncompressed_counts(mask):
    flat = mask.T.reshape(-1).astype(np.int8)
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return np.diff(np.concatenate([[0], changes])).tolist()


@pytest.mark.parametrize("encoding", sorted(SEGMENTATIONS))
def test_records_in_every_mask_encoding(scene, encoding):
    image, masks, keypoints, crop = scene
    encode = SEGMENTATIONS[encoding]
    for m in masks:
        np.testing.assert_array_equal(decode_segmentation(encode(m), H, W), m)  # the fixture itself
    crowd = {"iscrowd": 1, "bbox": [0, 0, 4, 4], "bbox_mode": BoxMode.XYWH_ABS, "segmentation": encode(rect_mask(0, 4, 0, 4))}
    annotations = [
        {"id": i + 1, "iscrowd": 0, "category_id": 0, "bbox": [5 + 30 * i, 5, 15, 25], "bbox_mode": BoxMode.XYWH_ABS,
         "segmentation": encode(masks[i]), "keypoints": keypoints[i].reshape(-1).tolist()}
        for i in range(2)
    ] + [crowd]  # fmt: skip
    copy_paste = CopyPaste(sources=FixedSources(crop), flip_indices=FLIP, prob=1.0, max_pasted=1, placement=fixed_placement(15, 10))
    new_image, new_annotations = copy_paste(image, annotations, rng=np.random.RandomState(0))
    pasted = placed_mask(crop.mask, 15, 10)
    assert [a.get("id") for a in new_annotations] == [1, 2, None, None] and new_annotations[-1] is crowd
    covered, untouched, added = new_annotations[:3]
    np.testing.assert_array_equal(decode_segmentation(covered["segmentation"], H, W), masks[0] & ~pasted)
    assert covered["bbox"] == tight_box(masks[0] & ~pasted) and covered["bbox_mode"] == BoxMode.XYXY_ABS
    assert untouched["segmentation"] is annotations[1]["segmentation"] and untouched["bbox"] == annotations[1]["bbox"]
    np.testing.assert_array_equal(decode_segmentation(added["segmentation"], H, W), pasted)
    assert added["copy_paste_source"] == {"id": 99} and added["iscrowd"] == 0
    on_pasted = pasted[keypoints[0, :, 1].astype(int), keypoints[0, :, 0].astype(int)]
    v = np.asarray(covered["keypoints"]).reshape(K, 3)[:, 2]
    np.testing.assert_array_equal(v, np.where(on_pasted & (keypoints[0, :, 2] == 2), 1, keypoints[0, :, 2]))
    assert annotations[0]["segmentation"] == encode(masks[0]), "the record is not modified"
    assert new_image[12, 16].tolist() == crop.image[2, 1].tolist()


def test_prob_zero_and_empty_images(scene):
    image, _, _, crop = scene
    never = CopyPaste(sources=FixedSources(crop), flip_indices=FLIP, prob=0.0)
    annotations = []
    assert never(image, annotations) == (image, annotations)
    always = CopyPaste(sources=FixedSources(crop), flip_indices=FLIP, prob=1.0, max_pasted=3, placement="occlude")
    new_image, new_annotations = always(image, [], rng=np.random.RandomState(0))
    assert 1 <= len(new_annotations) <= 3 and all("copy_paste_source" in a for a in new_annotations)
    assert (new_image != image).any()


def test_bad_options_name_the_option(scene):
    crop = scene[3]
    for kwargs, option in [({"prob": 1.5}, "PROB"), ({"placement": "nearby"}, "PLACEMENT"),
                           ({"min_visible": -0.1}, "MIN_VISIBLE"), ({"scale_range": (1.2, 0.8)}, "SCALE_RANGE"),
                           ({"max_pasted": 0}, "MAX_PASTED")]:  # fmt: skip
        with pytest.raises(ValueError, match=f"INPUT.COPY_PASTE: {option}"):
            CopyPaste(sources=FixedSources(crop), flip_indices=FLIP, **kwargs)


# ------------------------------------------------------------------------------------- sources
@pytest.fixture(scope="module")
def source_records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("copy_paste_sources")
    rng = np.random.default_rng(2)
    records = []
    for image_id in (1, 2):
        image = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
        file_name = str(folder / f"{image_id}.png")
        cv2.imwrite(file_name, image)
        person, crowd = rect_mask(2, 30, 3, 20), rect_mask(0, 40, 25, 60)
        annotations = [
            {"id": 10 * image_id, "iscrowd": 0, "category_id": 0, "bbox": [3, 2, 17, 28], "bbox_mode": BoxMode.XYWH_ABS,
             "segmentation": as_polygon(person), "keypoints": keypoints_on(person, rng).reshape(-1).tolist()},
            {"id": 10 * image_id + 1, "iscrowd": 1, "category_id": 0, "bbox": [25, 0, 35, 40], "bbox_mode": BoxMode.XYWH_ABS,
             "segmentation": encode_mask(crowd), "keypoints": keypoints_on(crowd, rng).reshape(-1).tolist()},
            {"id": 10 * image_id + 2, "iscrowd": 0, "category_id": 0, "bbox": [0, 0, 3, 3], "bbox_mode": BoxMode.XYWH_ABS,
             "segmentation": encode_mask(rect_mask(0, 3, 0, 3)), "keypoints": [0.0] * (3 * K)},
        ]  # fmt: skip
        records.append({"file_name": file_name, "image_id": image_id, "height": H, "width": W, "annotations": annotations})
    return records


def test_crowds_and_small_or_unlabeled_persons_are_never_drawn(source_records):
    sources = CopyPasteSources(source_records, min_area=100, min_keypoints=3, cache_size=1)
    assert len(sources) == 2
    rng = np.random.RandomState(0)
    drawn = {sources.draw(rng).source["id"] for _ in range(30)}
    assert drawn == {10, 20}
    with pytest.raises(ValueError, match="INPUT.COPY_PASTE: no person"):
        CopyPasteSources([dict(r, annotations=r["annotations"][1:2]) for r in source_records])
    # only the small unlabeled persons qualify once the thresholds allow them
    assert len(CopyPasteSources(source_records, min_area=0, min_keypoints=0)) == 4


def test_sources_cut_the_person_out_of_its_image(source_records):
    sources = CopyPasteSources(source_records, min_area=100, min_keypoints=3, cache_size=1)
    record = source_records[0]
    crop = sources.crop(0)
    image = cv2.imread(record["file_name"])
    np.testing.assert_array_equal(crop.image, image[2:30, 3:20])
    assert crop.mask.all() and crop.mask.shape == (28, 17)
    keypoints = np.asarray(record["annotations"][0]["keypoints"]).reshape(K, 3)
    np.testing.assert_allclose(crop.keypoints, keypoints - [3, 2, 0])
    sources.crop(1)
    assert len(sources._cache) == 1, "the cache is bounded"
    rng = np.random.RandomState(0)
    assert {sources.draw(rng, exclude_file_name=record["file_name"]).source["id"] for _ in range(10)} == {20}
    only_one = CopyPasteSources(source_records[:1], min_area=100, min_keypoints=3)
    assert only_one.draw(rng, exclude_file_name=record["file_name"]) is None


def test_a_source_image_of_another_size_names_the_record(source_records, tmp_path):
    wrong = dict(source_records[0], height=H + 1)
    with pytest.raises(InvalidDatasetError) as e:
        CopyPasteSources([wrong], min_area=100, min_keypoints=3).crop(0)
    assert e.value.file == wrong["file_name"] and e.value.annotation_id == 10 and e.value.field == "height/width"


# ------------------------------------------------------------------------------ synthetic data
@pytest.fixture(scope="module")
def synthetic_records(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("copy_paste_synthetic"))
    json_file = dump_json(generate_split(root, "train", 8, seed=5, progress=False), os.path.join(root, "train.json"))
    records, _ = read_person_json(json_file, os.path.join(root, "images", "train"))
    return records


def test_synthetic_records_keep_their_keypoint_codes(synthetic_records):
    # the synthetic data's rule: v = 2 exactly where the keypoint's pixel is on its person's
    # visible mask; copy-paste at scale 1 (with flips) must keep it, covered joints turning to 1
    copy_paste = CopyPaste(
        sources=CopyPasteSources(synthetic_records, min_area=500, min_keypoints=3), flip_indices=FLIP, prob=1.0,
        max_pasted=3, placement="occlude", min_visible=0.2, scale_range=(1.0, 1.0), flip_prob=0.5,
    )  # fmt: skip
    rng = np.random.RandomState(0)
    removed = covered_joints = 0
    for _ in range(3):
        for record in synthetic_records:
            image = cv2.imread(record["file_name"])
            new_image, annotations = copy_paste(image, record["annotations"], record["file_name"], rng)
            masks = np.stack([decode_segmentation(a["segmentation"], *image.shape[:2]).astype(bool) for a in annotations])
            pasted = np.array(["copy_paste_source" in a for a in annotations])
            assert pasted.any() and masks.sum(0).max() == 1
            for a, mask in zip(annotations, masks):
                kp = np.asarray(a["keypoints"]).reshape(K, 3)
                labeled = kp[:, 2] > 0
                on_mask = mask[kp[labeled, 1].astype(int), kp[labeled, 0].astype(int)]
                np.testing.assert_array_equal(kp[labeled, 2] == 2, on_mask)
                bbox = BoxMode.convert(list(a["bbox"]), a["bbox_mode"], BoxMode.XYXY_ABS)
                assert list(bbox) == tight_box(mask)  # synthetic boxes are their masks' tight boxes
            union_pasted = masks[pasted].any(0)
            kept = {a["id"]: a for a in annotations if "id" in a}
            for before in record["annotations"]:
                mask = decode_segmentation(before["segmentation"], *image.shape[:2]).astype(bool)
                visible = (mask & ~union_pasted).sum()
                if before["id"] in kept:
                    assert visible >= 0.2 * mask.sum()
                    v_old = np.asarray(before["keypoints"]).reshape(K, 3)[:, 2]
                    v_new = np.asarray(kept[before["id"]]["keypoints"]).reshape(K, 3)[:, 2]
                    covered_joints += int(((v_old == 2) & (v_new == 1)).sum())
                else:
                    assert visible < 0.2 * mask.sum()
                    removed += 1
    assert covered_joints > 0 and removed > 0, (covered_joints, removed)


# ------------------------------------------------------------------------------------ mappers
@pytest.fixture(scope="module")
def mapper_cfgs(tmp_path_factory):
    root = tmp_path_factory.mktemp("copy_paste_tiny")
    name = register_tiny_person_dataset("copy_paste_tiny", str(root), num_images=4)
    templates = write_templates(str(root / "templates.json"))
    options = ["INPUT.COPY_PASTE.ENABLED", True, "INPUT.COPY_PASTE.PROB", 1.0, "INPUT.COPY_PASTE.MAX_PASTED", 3,
               "INPUT.COPY_PASTE.MIN_SOURCE_AREA", 200, "INPUT.COPY_PASTE.SCALE_RANGE", (1.0, 1.0)]  # fmt: skip
    pose2seg = tiny_pose2seg_cfg(str(root / "out"), name, name, templates)
    pose2seg.merge_from_list(["INPUT.MASK_FORMAT", "bitmask"] + options)
    rcnn = get_cfg()
    add_pose2seg_config(rcnn)
    rcnn.merge_from_file(os.path.join(REPO, "configs", "Base-KeypointRCNN-FPN.yaml"))
    rcnn.merge_from_list([
        "MODEL.DEVICE", "cpu", "MODEL.MASK_ON", True, "DATASETS.TRAIN", (name,), "DATASETS.TEST", (name,),
        "INPUT.MASK_FORMAT", "bitmask", "INPUT.MIN_SIZE_TRAIN", (96,), "INPUT.MAX_SIZE_TRAIN", 160,
    ] + options)  # fmt: skip
    yield {"pose2seg": pose2seg, "rcnn": rcnn, "dicts": DatasetCatalog.get(name), "root": root}
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


@pytest.mark.parametrize("model, mapper_class", [("pose2seg", CopyPastePose2SegMapper), ("rcnn", CopyPasteDatasetMapper)])
def test_training_mappers_paste_and_keep_the_annotations_true(mapper_cfgs, model, mapper_class):
    cfg = mapper_cfgs[model]
    assert train_mapper_class(cfg) is mapper_class
    mapper = mapper_class(cfg, True)
    np.random.seed(0)
    grew = 0
    for record in mapper_cfgs["dicts"] * 2:
        instances = mapper(record)["instances"]
        masks = instances.gt_masks.tensor.numpy()
        keypoints = instances.gt_keypoints.tensor.numpy()
        grew += len(instances) > len(record["annotations"])
        assert masks.sum(0).max() <= 1
        for mask, kp, box in zip(masks, keypoints, instances.gt_boxes.tensor.numpy()):
            visible = kp[:, 2] == 2
            assert mask[kp[visible, 1].astype(int), kp[visible, 0].astype(int)].all()
            ys, xs = np.nonzero(mask)
            assert box.tolist() == pytest.approx([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], abs=1)
    assert grew > 0
    # at test time, nothing is pasted
    assert not mapper_class(cfg, False).copy_paste


def test_pose2seg_mapper_with_prob_zero_maps_as_without(mapper_cfgs):
    cfg = mapper_cfgs["pose2seg"].clone()
    cfg.merge_from_list(["INPUT.COPY_PASTE.PROB", 0.0])
    record = mapper_cfgs["dicts"][0]
    np.random.seed(3)
    with_option = CopyPastePose2SegMapper(cfg, True)(record)
    np.random.seed(3)
    without = Pose2SegDatasetMapper(cfg, True)(record)
    assert (with_option["image"] == without["image"]).all()
    assert (with_option["instances"].gt_masks.tensor == without["instances"].gt_masks.tensor).all()
    assert (with_option["instances"].gt_keypoints.tensor == without["instances"].gt_keypoints.tensor).all()


def test_mapper_on_a_polygon_record(mapper_cfgs):
    cfg = mapper_cfgs["rcnn"]
    rng = np.random.default_rng(4)
    file_name = str(mapper_cfgs["root"] / "polygon_record.png")
    cv2.imwrite(file_name, rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    masks = [rect_mask(10, 80, 10, 50, (96, 128)), rect_mask(10, 80, 60, 100, (96, 128))]
    record = {"file_name": file_name, "image_id": "polygons", "height": 96, "width": 128, "annotations": [
        {"id": i, "iscrowd": 0, "category_id": 0, "bbox": tight_box(m), "bbox_mode": BoxMode.XYXY_ABS,
         "segmentation": as_polygon(m), "keypoints": keypoints_on(m, rng).reshape(-1).tolist()}
        for i, m in enumerate(masks)
    ]}  # fmt: skip
    mapper = CopyPasteDatasetMapper(cfg, True)
    np.random.seed(1)
    for _ in range(4):
        instances = mapper(record)["instances"]
        assert len(instances) >= 2 and instances.gt_masks.tensor.sum(0).max() <= 1


def test_mapper_options_that_cannot_work(mapper_cfgs):
    polygon = mapper_cfgs["pose2seg"].clone()
    polygon.merge_from_list(["INPUT.MASK_FORMAT", "polygon"])
    with pytest.raises(ValueError, match="INPUT.MASK_FORMAT 'bitmask'"):
        train_mapper_class(polygon)(polygon, True)
    keypoints_only = mapper_cfgs["rcnn"].clone()  # Keypoint R-CNN: no masks, polygons are fine
    keypoints_only.merge_from_list(["MODEL.MASK_ON", False, "INPUT.MASK_FORMAT", "polygon"])
    assert CopyPasteDatasetMapper(keypoints_only, True).copy_paste is not None
    dense = mapper_cfgs["rcnn"].clone()
    dense.merge_from_list(["MODEL.META_ARCHITECTURE", "DenseHumanPretraining"])
    with pytest.raises(ValueError, match="INPUT.COPY_PASTE.ENABLED is not supported"):
        train_mapper_class(dense)


def test_visualization_tool_writes_the_grid(mapper_cfgs, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("visualize_copy_paste", os.path.join(REPO, "tools", "visualize_copy_paste.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(mapper_cfgs["pose2seg"].dump())
    output = tmp_path / "grid.png"
    tool.main(["--config-file", str(config_file), "--output", str(output), "--num-samples", "3", "--columns", "2"])
    grid = cv2.imread(str(output))
    cell = tool.CELL_SIZE + tool.TITLE_HEIGHT
    assert grid.shape == (2 * cell + tool.GAP, 2 * tool.CELL_SIZE + tool.GAP, 3)
    # a sample cell holds the drawing, not the blank of a missing one
    assert grid[tool.TITLE_HEIGHT : cell, : tool.CELL_SIZE].std() > 10
    assert (grid[cell + tool.GAP :, tool.CELL_SIZE + tool.GAP :] == 255).all()
