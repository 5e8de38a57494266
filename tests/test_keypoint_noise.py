"""The simulated pose-estimator errors (pose2seg_d2/pose/keypoint_noise.py) and COCO's OKS."""
import math

import numpy as np
import pytest
import torch

from pose2seg_d2.pose import COCO_PERSON_FLIP_MAP, COCO_PERSON_KEYPOINT_NAMES
from pose2seg_d2.pose.keypoint_noise import (
    KeypointNoise,
    drop_keypoints,
    jitter_keypoints,
    move_onto_neighbors,
    perturb_keypoints,
    remove_visibility,
    swap_left_right,
)
from pose2seg_d2.pose.oks import COCO_PERSON_OKS_SIGMAS, object_keypoint_similarity

K = len(COCO_PERSON_KEYPOINT_NAMES)
INDEX = {name: i for i, name in enumerate(COCO_PERSON_KEYPOINT_NAMES)}


def random_persons(num, seed=0, unlabeled_fraction=0.2, occluded_fraction=0.3):
    """(num, 17, 3) persons in a 500 x 500 image, some joints unlabeled (0, 0, 0) and some v = 1."""
    rng = np.random.default_rng(seed)
    kpt = np.zeros((num, K, 3))
    kpt[..., :2] = rng.uniform(0, 500, (num, K, 2))
    v = np.where(rng.random((num, K)) < occluded_fraction, 1.0, 2.0)
    v[rng.random((num, K)) < unlabeled_fraction] = 0
    kpt[..., 2] = v
    kpt[v == 0] = 0
    return torch.tensor(kpt, dtype=torch.float32)


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- OKS
def test_oks_matches_pycocotools_including_persons_without_labeled_joints():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = random_persons(5, seed=1).double()
    gt[3] = 0  # no labeled joint: COCO measures the distance to the grown box
    dt = gt.clone()
    rng = np.random.default_rng(2)
    dt[..., :2] += torch.tensor(rng.normal(0, 15, dt[..., :2].shape))
    # person 3 is measured against its box [200, 150, 60, 90] grown to [140, 320] x [60, 330]:
    # joints inside count fully, outside ones by their distance to it
    dt[3, :, :2] = torch.tensor(rng.uniform([100, 40], [360, 370], (K, 2)))
    dt = torch.cat([dt, random_persons(3, seed=3).double()])  # and three others
    dt[..., 2] = 1.0
    areas = torch.tensor([4000.0, 9000.0, 2500.0, 6000.0, 12000.0])
    boxes = torch.tensor(
        [[100, 100, 50, 80], [10, 20, 90, 100], [300, 300, 40, 60], [200, 150, 60, 90], [0, 0, 120, 100]],
        dtype=torch.float64,
    )

    coco = COCO()
    coco.dataset = {
        "images": [{"id": 1, "height": 500, "width": 500}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [
            {"id": g + 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": float(areas[g]),
             "bbox": boxes[g].tolist(), "keypoints": gt[g].reshape(-1).tolist(), "num_keypoints": int((gt[g, :, 2] > 0).sum())}
            for g in range(len(gt))
        ],
    }  # fmt: skip
    coco.createIndex()
    # scores in decreasing order, so that pycocotools' rows are in our order
    results = [
        {"image_id": 1, "category_id": 1, "keypoints": dt[p].reshape(-1).tolist(), "score": 1.0 - 0.01 * p}
        for p in range(len(dt))
    ]
    evaluation = COCOeval(coco, coco.loadRes(results), "keypoints")
    evaluation.params.imgIds = [1]
    evaluation._prepare()
    expected = np.asarray(evaluation.computeOks(1, 1))
    got = object_keypoint_similarity(dt, gt, areas, boxes).numpy()
    assert expected.shape == got.shape == (8, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert got[[0, 1, 2, 4], [0, 1, 2, 4]].min() > 0.1 and 0.05 < got[3, 3] < 0.95  # not trivially 0 or 1


def test_oks_of_a_non_finite_prediction_is_that_of_a_far_one():
    gt = random_persons(1, seed=4, unlabeled_fraction=0.0).double()
    dt = gt.clone()
    dt[0, 0, 0] = math.nan
    far = gt.clone()
    far[0, 0, 0] = 1e9
    areas = torch.tensor([5000.0])
    nan_oks = object_keypoint_similarity(dt, gt, areas).item()
    assert nan_oks == pytest.approx(object_keypoint_similarity(far, gt, areas).item()) and nan_oks == pytest.approx(16 / 17)


# ---------------------------------------------------------------------------- jitter
def test_jitter_std_is_sigma_scale_times_coco_sigma_times_sqrt_area_per_joint():
    # 3 areas x 3000 persons: each (area, joint, coordinate) has about 3000 x 0.8 labeled samples,
    # whose sample std has a relative standard error of 1 / sqrt(2 n) = 1.4 %; the bound is 5 of
    # them (7 %), for each of the 306 estimates
    per_area = 3000
    areas = torch.tensor([400.0, 10000.0, 90000.0]).repeat_interleave(per_area)
    kpt = random_persons(len(areas), seed=5)
    scale = 0.7
    out = jitter_keypoints(kpt, areas, scale, generator=generator(1))
    labeled = kpt[..., 2] > 0
    assert torch.equal(out[..., 2], kpt[..., 2])
    assert torch.equal(out[~labeled], kpt[~labeled])
    displacement = (out - kpt)[..., :2].double()
    for a, area in enumerate((400.0, 10000.0, 90000.0)):
        rows = slice(a * per_area, (a + 1) * per_area)
        for k in range(K):
            d = displacement[rows, k][labeled[rows, k]]  # (n, 2)
            n = len(d)
            expected = scale * COCO_PERSON_OKS_SIGMAS[k] * math.sqrt(area)
            std = d.std(dim=0)
            assert ((std / expected - 1).abs() < 5 / math.sqrt(2 * n)).all(), (area, k, std, expected)
            assert (d.mean(dim=0).abs() < 5 * expected / math.sqrt(n)).all()
    # x and y independent
    corr = np.corrcoef(displacement[labeled][:, 0].numpy(), displacement[labeled][:, 1].numpy())[0, 1]
    assert abs(corr) < 0.02


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
def test_jitter_gives_coco_oks_of_one_over_one_plus_scale_squared_over_four(scale):
    # the convention stated in the module: COCO's OKS uses 2 sigma_k, so a joint's expected OKS
    # at scale s is 1 / (1 + s^2 / 4); measured with the OKS implementation checked against
    # pycocotools, one joint per person (OKS of single-joint persons), 20000 persons
    num = 20000
    kpt = torch.zeros(num, K, 3)
    kpt[:, 9] = torch.tensor([250.0, 250.0, 2.0])  # left wrist only
    areas = torch.full((num,), 5000.0)
    out = jitter_keypoints(kpt, areas, scale, generator=generator(2))
    sigma, distance_sq = COCO_PERSON_OKS_SIGMAS[9], ((out - kpt)[:, 9, :2].double() ** 2).sum(-1)
    per_joint = torch.exp(-distance_sq / (2 * 5000.0 * (2 * sigma) ** 2))
    # the OKS function on a few of them agrees
    few = object_keypoint_similarity(out[:5], kpt[:5], areas[:5]).diagonal()
    np.testing.assert_allclose(few.numpy(), per_joint[:5].numpy(), rtol=1e-6)
    expected = 1.0 / (1.0 + scale**2 / 4)
    standard_error = per_joint.std().item() / math.sqrt(num)
    assert abs(per_joint.mean().item() - expected) < 5 * standard_error


def test_jitter_of_zero_scale_or_area_moves_nothing():
    kpt = random_persons(4)
    assert torch.equal(jitter_keypoints(kpt, torch.full((4,), 1e4), 0.0), kpt)
    assert torch.equal(jitter_keypoints(kpt, torch.zeros(4), 1.0, generator=generator()), kpt)
    with pytest.raises(ValueError, match="sigma_scale"):
        jitter_keypoints(kpt, torch.ones(4), -1.0)


# ---------------------------------------------------------------------------- drops
def test_drop_fraction_and_dropped_joints_are_unlabeled_zeros():
    kpt = random_persons(4000, seed=6)
    labeled = kpt[..., 2] > 0
    out = drop_keypoints(kpt, 0.2, generator=generator(3))
    dropped = labeled & (out[..., 2] == 0)
    n = int(labeled.sum())
    fraction = dropped.sum().item() / n
    # binomial standard error sqrt(0.2 x 0.8 / n) = 0.0022 for n = 32,000: 0.011 is 5 of them
    assert abs(fraction - 0.2) < 5 * math.sqrt(0.2 * 0.8 / n)
    assert torch.equal(out[dropped], torch.zeros(int(dropped.sum()), 3))
    kept = ~dropped
    assert torch.equal(out[kept], kpt[kept])  # the others, unlabeled ones included, unchanged
    assert torch.equal(drop_keypoints(kpt, 1.0, generator=generator())[..., 2], torch.zeros_like(kpt[..., 2]))


# ---------------------------------------------------------------------------- swaps
def test_person_swap_trades_every_left_joint_with_its_right_one_by_name():
    kpt = random_persons(3, seed=7)
    out = swap_left_right(kpt, 1.0, per="person", generator=generator())
    for left, right in COCO_PERSON_FLIP_MAP.items():
        assert torch.equal(out[:, INDEX[left]], kpt[:, INDEX[right]]), left
        assert torch.equal(out[:, INDEX[right]], kpt[:, INDEX[left]]), right
    assert torch.equal(out[:, INDEX["nose"]], kpt[:, INDEX["nose"]])
    assert not torch.equal(out, kpt)


def test_pair_swaps_move_both_joints_of_a_pair_and_about_half_of_the_pairs():
    kpt = random_persons(2000, seed=8, unlabeled_fraction=0.0)
    out = swap_left_right(kpt, 0.5, per="pair", generator=generator(4))
    assert torch.equal(out[:, INDEX["nose"]], kpt[:, INDEX["nose"]])
    swaps = []
    for left, right in COCO_PERSON_FLIP_MAP.items():
        l, r = INDEX[left], INDEX[right]
        swapped = (out[:, l] == kpt[:, r]).all(-1) & (out[:, r] == kpt[:, l]).all(-1)
        unchanged = (out[:, l] == kpt[:, l]).all(-1) & (out[:, r] == kpt[:, r]).all(-1)
        assert (swapped ^ unchanged).all(), left  # each pair either trades whole or stays
        swaps.append(swapped)
    swaps = torch.stack(swaps, 1)
    # 16,000 pair draws at 0.5: standard error 0.004
    assert abs(swaps.double().mean().item() - 0.5) < 0.02
    # independent per pair: some persons have some pairs swapped and others not
    per_person = swaps.sum(1)
    assert ((per_person > 0) & (per_person < 8)).double().mean() > 0.9


def test_swap_follows_the_given_flip_indices():
    kpt = random_persons(2, seed=9)
    indices = list(range(K))
    indices[0], indices[16] = 16, 0  # a made-up map: nose <-> right ankle only
    out = swap_left_right(kpt, 1.0, per="pair", flip_indices=indices, generator=generator())
    assert torch.equal(out[:, 0], kpt[:, 16]) and torch.equal(out[:, 16], kpt[:, 0])
    assert torch.equal(out[:, 1:16], kpt[:, 1:16])
    with pytest.raises(ValueError, match="swap unit"):
        swap_left_right(kpt, 1.0, per="limb")


# ---------------------------------------------------------------------------- neighbors
def test_neighbor_move_lands_on_the_nearest_other_persons_same_joint_in_the_same_image():
    base = random_persons(1, seed=10, unlabeled_fraction=0.0)[0]
    a = base.clone()
    b = base.clone()
    b[:, :2] += 10.0  # near a
    c = base.clone()
    c[:, :2] += 40.0  # farther ...
    c[3, :2] = a[3, :2] + 2.0  # ... except its left ear
    b[5] = 0  # b lacks the left shoulder: a takes c's
    d = a.clone()
    d[:, :2] += 1.0  # nearest of all, but in another image
    kpt = torch.stack([a, b, c, d])
    image = torch.tensor([0, 0, 0, 1])
    out = move_onto_neighbors(kpt, image, 1.0, generator=generator())
    for k in range(K):
        want = c[k] if k in (3, 5) else b[k]
        assert torch.equal(out[0, k], want), k
    assert torch.equal(out[3], d)  # alone in its image: nothing to move onto
    assert torch.equal(out[1, 5], b[5])  # unlabeled stays unlabeled
    # at 0.3, about 30 % of the labeled joints move, each onto another person's joint
    many = random_persons(300, seed=11)
    images = torch.arange(300) // 6
    moved_out = move_onto_neighbors(many, images, 0.3, generator=generator(5))
    changed = (moved_out != many).any(-1)
    labeled = many[..., 2] > 0
    assert not (changed & ~labeled).any()
    assert abs(changed.sum().item() / labeled.sum().item() - 0.3) < 0.03
    n, k = torch.nonzero(changed)[0].tolist()
    same_image = torch.nonzero(images == images[n]).flatten()
    assert any(torch.equal(moved_out[n, k], many[m, k]) for m in same_image if m != n)


# ---------------------------------------------------------------------------- visibility, all of it
def test_remove_visibility_sets_labeled_joints_to_2_and_leaves_unlabeled():
    kpt = random_persons(50, seed=12)
    out = remove_visibility(kpt)
    assert (kpt[..., 2] == 1).any()
    assert torch.equal(out[..., 2], torch.where(kpt[..., 2] > 0, 2.0, 0.0))
    assert torch.equal(out[..., :2], kpt[..., :2])


def test_perturb_is_determined_by_the_seed_and_keeps_visibility_as_asked():
    kpt = random_persons(40, seed=13)
    areas = torch.full((40,), 8000.0)
    images = torch.arange(40) // 4
    noise = KeypointNoise(sigma_scale=1.0, drop_prob=0.1, swap_prob=0.1, neighbor_prob=0.1, keep_visibility=True)
    one = perturb_keypoints(kpt, areas, images, noise, generator=generator(7))
    two = perturb_keypoints(kpt, areas, images, noise, generator=generator(7))
    other = perturb_keypoints(kpt, areas, images, noise, generator=generator(8))
    assert torch.equal(one, two) and not torch.equal(one, other)
    assert (one[..., 2] == 1).any()
    torch.manual_seed(3)
    global_one = perturb_keypoints(kpt, areas, images, noise)
    torch.manual_seed(3)
    assert torch.equal(global_one, perturb_keypoints(kpt, areas, images, noise))
    no_visibility = perturb_keypoints(kpt, areas, images, KeypointNoise(keep_visibility=False), generator=generator(7))
    assert torch.equal(no_visibility, remove_visibility(kpt))
    assert torch.equal(perturb_keypoints(kpt, areas, images, KeypointNoise(), generator=generator()), kpt)


def test_bad_noise_options_name_the_option():
    with pytest.raises(ValueError, match="DROP_PROB"):
        KeypointNoise(drop_prob=1.5)
    with pytest.raises(ValueError, match="SWAP_UNIT"):
        KeypointNoise(swap_unit="arm")
    with pytest.raises(ValueError, match="SIGMA_SCALE"):
        KeypointNoise(sigma_scale=-0.1)


def test_person_prob_leaves_some_persons_true_and_keep_visibility_prob_keeps_some_flags():
    kpt = random_persons(400, seed=14)
    areas = torch.full((400,), 8000.0)
    images = torch.arange(400) // 4
    noisy = KeypointNoise(sigma_scale=1.0, keep_visibility=True, person_prob=0.3)
    out = perturb_keypoints(kpt, areas, images, noisy, generator=generator(5))
    untouched = (out == kpt).flatten(1).all(dim=1)
    labeled = (kpt[..., 2] > 0).any(dim=1)
    # a perturbed person moves in every labeled joint, the others stay exactly true
    assert 0.6 < untouched[labeled].float().mean().item() < 0.8
    moved = ~untouched & labeled
    assert torch.equal(out[moved][..., 2], kpt[moved][..., 2])  # flags kept as asked
    half = KeypointNoise(keep_visibility=False, keep_visibility_prob=0.5)
    out = perturb_keypoints(kpt, areas, images, half, generator=generator(6))
    assert torch.equal(out[..., :2], kpt[..., :2])
    covered = (kpt[..., 2] == 1).any(dim=1)
    kept = (out[..., 2] == kpt[..., 2]).all(dim=1) & covered
    removed = torch.equal(out[covered & ~kept], remove_visibility(kpt)[covered & ~kept])
    assert removed and 0.35 < kept[covered].float().mean().item() < 0.65
    # with KEEP_VISIBILITY True the probability has nothing to do
    assert torch.equal(perturb_keypoints(kpt, areas, images, KeypointNoise(keep_visibility_prob=0.5)), kpt)
    with pytest.raises(ValueError, match="PERSON_PROB"):
        KeypointNoise(person_prob=1.5)
    with pytest.raises(ValueError, match="KEEP_VISIBILITY_PROB"):
        KeypointNoise(keep_visibility_prob=-0.1)
