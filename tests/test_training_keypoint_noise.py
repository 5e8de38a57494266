"""MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE in Pose2Seg's training step: the keypoints change, the masks do not."""
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model
from detectron2.structures import BitMasks, PolygonMasks

import pose2seg_d2.modeling.meta_arch as meta_arch
from pose2seg_d2.data import Pose2SegDatasetMapper
from pose2seg_d2.modeling.training_keypoints import build_training_keypoint_noise, instance_mask_areas

from .fixtures import register_tiny_person_dataset, tiny_pose2seg_cfg, write_templates


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_noise")
    name = register_tiny_person_dataset("tiny_training_noise", str(root / "data"), num_images=2)
    return {"root": root, "dataset": name, "templates": write_templates(str(root / "templates.json"))}


def noise_cfg(tiny, *opts):
    cfg = tiny_pose2seg_cfg(str(tiny["root"] / "out"), tiny["dataset"], tiny["dataset"], tiny["templates"])
    cfg.merge_from_list(["MODEL.POSE2SEG.AUGMENT", False, *opts])
    return cfg


def training_batch(cfg, dataset):
    torch.manual_seed(0)
    mapper = Pose2SegDatasetMapper(cfg, True)
    return [mapper(d) for d in DatasetCatalog.get(dataset)]


def recorded_step(model, batch, monkeypatch, seed):
    """One training forward; returns (loss, keypoints given to the head's inputs, the full-image
    masks sampled into the windows)."""
    seen = {}
    window_logits = model._window_logits
    sample = meta_arch.sample_masks_into_windows

    def record_window_logits(features, keypoints, *args):
        seen["keypoints"] = keypoints.clone()
        return window_logits(features, keypoints, *args)

    def record_sample(masks, *args):
        seen["masks"] = masks.clone()
        return sample(masks, *args)

    monkeypatch.setattr(model, "_window_logits", record_window_logits)
    monkeypatch.setattr(meta_arch, "sample_masks_into_windows", record_sample)
    torch.manual_seed(seed)
    losses = model(batch)
    monkeypatch.undo()
    return losses["loss_mask"], seen["keypoints"], seen["masks"]


def test_noise_changes_the_keypoints_given_and_not_the_mask_targets(tiny, monkeypatch):
    noisy_cfg = noise_cfg(
        tiny, "MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.ENABLED", True,
        "MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.SIGMA_SCALE", 1.0, "MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.DROP_PROB", 0.0,
        "MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.SWAP_PROB", 0.0, "MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.NEIGHBOR_PROB", 0.0,
        "MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.KEEP_VISIBILITY", False,
    )  # fmt: skip
    clean_cfg = noise_cfg(tiny)
    batch = training_batch(clean_cfg, tiny["dataset"])
    gt = torch.cat([x["instances"].gt_keypoints.tensor for x in batch])
    assert 2 <= len(gt) <= clean_cfg.MODEL.POSE2SEG.MAX_INSTANCES_PER_BATCH  # every person is segmented
    assert (gt[..., 2] == 1).any()  # the tiny data has occluded joints
    saved = [x["instances"].gt_keypoints.tensor.clone() for x in batch]

    torch.manual_seed(0)
    clean = build_model(clean_cfg).train()
    torch.manual_seed(0)
    noisy = build_model(noisy_cfg).train()
    assert clean.training_keypoint_noise is None and noisy.training_keypoint_noise is not None
    _, clean_keypoints, clean_masks = recorded_step(clean, batch, monkeypatch, seed=1)
    loss, noisy_keypoints, noisy_masks = recorded_step(noisy, batch, monkeypatch, seed=1)

    assert torch.isfinite(loss)
    labeled = gt[..., 2] > 0
    assert torch.equal(clean_keypoints, gt)
    # the same persons, every labeled joint moved, the visibility removed, unlabeled ones unchanged
    moved = (noisy_keypoints[..., :2] - gt[..., :2]).norm(dim=-1)
    assert (moved[labeled] > 0).all() and (moved[~labeled] == 0).all()
    assert torch.equal(noisy_keypoints[..., 2], torch.where(labeled, 2.0, 0.0))
    # the masks the targets are sampled from are the true ones, with and without noise
    assert torch.equal(noisy_masks, clean_masks)
    expected = torch.cat([x["instances"].gt_masks.tensor.float() for x in batch if len(x["instances"])], 0)
    assert torch.equal(noisy_masks[:, : expected.shape[1], : expected.shape[2]].bool(), expected.bool())
    # and the data is left as it was
    for x, before in zip(batch, saved):
        assert torch.equal(x["instances"].gt_keypoints.tensor, before)


def test_noise_in_training_is_fixed_by_the_seed(tiny):
    cfg = noise_cfg(tiny, "MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.ENABLED", True)  # the defaults
    instances = [x["instances"] for x in training_batch(cfg, tiny["dataset"])]
    noise = build_training_keypoint_noise(cfg)
    runs = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)  # Detectron2 seeds torch's global generator with cfg.SEED
        runs.append(torch.cat(noise(instances)))
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    assert runs[0].shape == torch.cat([i.gt_keypoints.tensor for i in instances]).shape


def test_mask_areas_of_bit_and_polygon_masks():
    bits = torch.zeros(2, 10, 12, dtype=torch.bool)
    bits[0, 2:5, 3:7] = True
    bits[1, :, :] = True
    assert instance_mask_areas(BitMasks(bits)).tolist() == [12.0, 120.0]
    assert instance_mask_areas(bits).tolist() == [12.0, 120.0]
    square = [[0.0, 0.0, 4.0, 0.0, 4.0, 5.0, 0.0, 5.0]]
    assert instance_mask_areas(PolygonMasks([square, square + [[10.0, 10.0, 12.0, 10.0, 12.0, 12.0]]])).tolist() == [20.0, 22.0]


def test_noise_options_are_checked_and_named(tiny):
    assert build_training_keypoint_noise(noise_cfg(tiny)) is None
    with pytest.raises(ValueError, match=r"MODEL\.POSE2SEG\.TRAIN_KEYPOINT_NOISE\.DROP_PROB"):
        build_training_keypoint_noise(noise_cfg(tiny, "MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.ENABLED", True,
                                                "MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.DROP_PROB", 2.0))  # fmt: skip
