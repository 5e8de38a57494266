import json

import numpy as np
import pytest
import torch

from pose2seg_d2.pose import (
    COCO_PERSON_FLIP_MAP,
    COCO_PERSON_KEYPOINT_NAMES,
    PoseTemplates,
    flip_permutation,
    resize_padding_matrix,
)

from .reference import ref_fit_one

SRC = (480, 640)
DST = (64, 64)


def make_templates(rng, k=3, absent=(), mirror="swap_rows"):
    """k random asymmetric poses in the unit square; `absent`: (template, keypoint) pairs whose
    v falls under the threshold."""
    t = np.zeros((k, 17, 3))
    t[..., :2] = rng.uniform(0.1, 0.9, (k, 17, 2))
    t[..., 2] = rng.uniform(0.5, 1.0, (k, 17))
    for i, j in absent:
        t[i, j, 2] = 0.2
    return PoseTemplates(t, vis_threshold=0.4, mirror=mirror)


def similarity(scale, angle, tx, ty):
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty], [0, 0, 1.0]])


def person_from_template(template, unit_from_person, v=2.0):
    """Keypoints in source pixels that `unit_from_person` maps exactly onto the template."""
    inv = np.linalg.inv(unit_from_person)
    xy = template[:, :2] @ inv[:2, :2].T + inv[:2, 2]
    kpt = np.concatenate([xy, np.full((17, 1), v)], 1)
    kpt[template[:, 2] <= 0] = 0
    return kpt


def test_exact_pose_is_recovered_with_score_one():
    rng = np.random.default_rng(0)
    templates = make_templates(rng)
    for t in range(len(templates)):
        unit_from_person = similarity(1 / 250.0, rng.uniform(-0.5, 0.5), -0.3, 0.2)
        kpt = person_from_template(templates.templates[t].numpy(), unit_from_person)
        fit = templates.fit(kpt[None], SRC, DST)
        assert fit.template_index.tolist() == [t]
        assert fit.scores[0].item() == pytest.approx(1.0, abs=1e-6)
        expected = np.diag([64.0, 64.0, 1.0]) @ unit_from_person
        np.testing.assert_allclose(fit.matrices[0].numpy(), expected, rtol=1e-4, atol=1e-4)


def test_swap_rows_mirror_swaps_left_and_right_and_keeps_x():
    rng = np.random.default_rng(1)
    templates = make_templates(rng)
    k = templates.num_clusters
    assert len(templates) == 2 * k and templates.mirror == "swap_rows"
    perm = flip_permutation()
    for t in range(k):
        original, mirrored = templates.templates[t], templates.templates[k + t]
        assert torch.equal(mirrored, original[perm])  # rows swapped, x, y and v kept
        kpt = person_from_template(mirrored.numpy(), similarity(1 / 300.0, 0.2, 0.0, 0.1))
        assert templates.fit(kpt[None], SRC, DST).template_index.item() == k + t
        # the same person with its left and right labels swapped (seen from the other side)
        # fits the original template
        assert templates.fit(kpt[perm][None], SRC, DST).template_index.item() == t


def test_geometric_mirror_is_the_pose_s_mirror_image():
    rng = np.random.default_rng(1)
    templates = make_templates(rng, mirror="geometric")
    k = templates.num_clusters
    for t in range(k):
        mirrored = templates.templates[k + t].numpy()
        expected = templates.templates[t].numpy()[flip_permutation()]
        np.testing.assert_allclose(mirrored[:, 0], 1 - expected[:, 0])
        np.testing.assert_allclose(mirrored[:, 1:], expected[:, 1:])
        kpt = person_from_template(mirrored, similarity(1 / 300.0, 0.2, 0.0, 0.1))
        assert templates.fit(kpt[None], SRC, DST).template_index.item() == k + t
        # and the mirrored person is a left-right flip of one fitting the original
        flipped = kpt[flip_permutation()].copy()
        flipped[:, 0] = 2 * kpt[:, 0].mean() - flipped[:, 0]
        assert templates.fit(flipped[None], SRC, DST).template_index.item() == t
    with pytest.raises(ValueError, match="mirror must be one of"):
        make_templates(rng, mirror="x")


def test_hard_rule_rejects_a_template_missing_a_labeled_keypoint():
    rng = np.random.default_rng(2)
    templates = make_templates(rng, k=2, absent=[(0, 15)])  # template 0 lacks left_ankle
    source = templates.templates[0].numpy().copy()
    kpt = person_from_template(source, similarity(1 / 250.0, 0.0, 0.0, 0.0))
    inv = np.linalg.inv(similarity(1 / 250.0, 0.0, 0.0, 0.0))
    kpt[15] = [inv[0, 2] + 100, inv[1, 2] + 200, 2]  # the person shows its left ankle
    soft = templates.fit(kpt[None], SRC, DST, hard=False)
    assert soft.template_index.item() == 0
    hard = templates.fit(kpt[None], SRC, DST, hard=True)
    assert hard.template_index.item() != 0
    _, scores = templates.similarity_fits(torch.from_numpy(kpt[None]), hard=True)
    assert scores[0, 0].item() == 0.0 and scores[0, 1].item() > 0


@pytest.mark.parametrize("num_labeled", [0, 1, 2])
def test_fewer_than_three_shared_points_fall_back(num_labeled):
    rng = np.random.default_rng(3)
    templates = make_templates(rng)
    kpt = np.zeros((1, 17, 3))
    for i in range(num_labeled):
        kpt[0, i] = [100 + 10 * i, 200 + 5 * i, 2]
    for fallback in ("whole_map", "keypoint_box"):
        fit = templates.fit(kpt, SRC, DST, fallback=fallback)
        assert fit.template_index.item() == -1 and fit.scores.item() == 0.0
    release = templates.fit(kpt, SRC, DST, fallback="whole_map").matrices[0]
    np.testing.assert_allclose(release.numpy(), resize_padding_matrix(SRC, DST).numpy(), rtol=1e-6)
    np.testing.assert_allclose(release.numpy()[0], [0.1, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(release.numpy()[1], [0.0, 0.1, 8.0], atol=1e-6)


def test_keypoint_box_fallback_centers_and_enlarges_the_person():
    templates = make_templates(np.random.default_rng(4))
    kpt = np.zeros((1, 17, 3))
    kpt[0, 0] = [300, 100, 2]
    kpt[0, 16] = [340, 260, 1]
    fit = templates.fit(kpt, SRC, DST, fallback="keypoint_box")
    m = fit.matrices[0].numpy().astype(np.float64)
    center = m @ np.array([320, 180, 1.0])
    np.testing.assert_allclose(center[:2], [32, 32], atol=1e-4)
    # box height 160 enlarged 1.25 -> 200 px fill the 64-pixel window
    assert m[0, 0] == pytest.approx(64 / 200, rel=1e-5)
    assert m[0, 0] > 0.1  # larger than the whole_map fallback
    # the enlargement is fallback_enlarge (MODEL.POSE2SEG.FALLBACK_BOX_ENLARGE)
    wider = templates.fit(kpt, SRC, DST, fallback="keypoint_box", fallback_enlarge=2.0).matrices[0]
    assert wider[0, 0].item() == pytest.approx(64 / 320, rel=1e-5)


def test_release_is_an_alias_of_the_whole_map_fallback_and_the_swap_rows_mirror():
    rng = np.random.default_rng(4)
    templates = make_templates(rng)
    aliased = make_templates(np.random.default_rng(4), mirror="release")
    assert aliased.mirror == "swap_rows" and torch.equal(aliased.templates, templates.templates)
    assert not torch.equal(make_templates(np.random.default_rng(4), mirror="geometric").templates, templates.templates)
    kpt = np.zeros((2, 17, 3))
    kpt[0, 0], kpt[0, 16] = [300, 100, 2], [340, 260, 1]  # no fit: the fallback
    kpt[1] = random_people(rng, templates, 2)[1]
    whole_map = templates.fit(kpt, SRC, DST, fallback="whole_map")
    assert whole_map.template_index[0].item() == -1
    assert torch.equal(templates.fit(kpt, SRC, DST, fallback="release").matrices, whole_map.matrices)
    assert torch.equal(templates.fit(kpt, SRC, DST).matrices, whole_map.matrices)  # the default
    assert not torch.equal(templates.fit(kpt, SRC, DST, fallback="keypoint_box").matrices[0], whole_map.matrices[0])
    with pytest.raises(ValueError, match="fallback must be one of"):
        templates.fit(kpt, SRC, DST, fallback="box")


def test_config_keys_reach_the_aligner_and_release_values_still_work():
    from detectron2.config import get_cfg

    from pose2seg_d2.config import add_pose2seg_config
    from pose2seg_d2.modeling import build_aligner

    cfg = get_cfg()
    add_pose2seg_config(cfg)
    assert (cfg.MODEL.POSE2SEG.TEMPLATE_MIRROR, cfg.MODEL.POSE2SEG.FALLBACK) == ("swap_rows", "whole_map")
    assert cfg.MODEL.POSE2SEG.FALLBACK_BOX_ENLARGE == 1.25  # what the keypoint_box fallback always used
    cfg.merge_from_list(["MODEL.POSE2SEG.TEMPLATE_MIRROR", "release", "MODEL.POSE2SEG.FALLBACK", "keypoint_box",
                         "MODEL.POSE2SEG.FALLBACK_BOX_ENLARGE", 2.0])  # fmt: skip
    aligner = build_aligner(cfg)
    assert aligner.templates.mirror == "swap_rows"
    assert (aligner.fallback, aligner.fallback_enlarge) == ("keypoint_box", 2.0)
    kpt = torch.zeros(1, 17, 3, dtype=torch.float64)
    kpt[0, 0], kpt[0, 16] = torch.tensor([30.0, 10, 2]), torch.tensor([34.0, 26, 1])  # 2 keypoints: no fit
    expected = aligner.templates.fit(kpt, (48, 64), (64, 64), fallback="keypoint_box", fallback_enlarge=2.0)
    assert torch.equal(aligner(kpt, torch.tensor([[48.0, 64.0]])), expected.matrices)


def test_a_template_must_enlarge_more_than_the_fallback():
    templates = make_templates(np.random.default_rng(5))
    t = templates.templates[0].numpy()
    small = person_from_template(t, similarity(1 / 250.0, 0.0, 0.0, 0.0))
    huge = person_from_template(t, similarity(1 / 2000.0, 0.0, 0.0, 0.0))  # 64/2000 < 0.1
    fit = templates.fit(np.stack([small, huge]), SRC, DST)
    assert fit.template_index.tolist() == [0, -1]


def random_people(rng, templates, n):
    people = []
    for i in range(n):
        t = templates.templates[rng.integers(len(templates))].numpy()
        unit_from_person = similarity(
            1 / rng.uniform(80, 600), rng.uniform(-np.pi, np.pi), rng.uniform(-1, 1), rng.uniform(-1, 1)
        )
        kpt = person_from_template(t, unit_from_person, v=0)
        kpt[:, :2] += rng.normal(0, 8, (17, 2))
        kpt[:, 2] = rng.choice([0, 1, 2], 17, p=[0.2, 0.3, 0.5])
        if i % 7 == 0:
            kpt[rng.permutation(17)[:15], 2] = 0  # at most 2 labeled
        people.append(kpt)
    return np.stack(people)


@pytest.mark.parametrize("hard", [True, False])
def test_batched_fit_equals_per_person_reference(hard):
    rng = np.random.default_rng(6)
    templates = make_templates(rng, k=3, absent=[(0, 3), (1, 15), (1, 16), (2, 0)])
    people = random_people(rng, templates, 60)
    fit = templates.fit(torch.from_numpy(people), SRC, DST, hard=hard)
    tpl = templates.templates.numpy()
    indices = []
    for n in range(len(people)):
        matrix, score, index = ref_fit_one(people[n], tpl, SRC, DST, hard=hard)
        indices.append(index)
        assert fit.template_index[n].item() == index, n
        assert fit.scores[n].item() == pytest.approx(score, abs=1e-6), n
        np.testing.assert_allclose(fit.matrices[n].numpy(), matrix, rtol=1e-4, atol=1e-3)
    # the population exercised both outcomes and several templates
    assert -1 in indices and len(set(indices)) >= 4


def test_numpy_and_torch_inputs_agree():
    rng = np.random.default_rng(7)
    templates = make_templates(rng)
    people = random_people(rng, templates, 10)
    a = templates.fit(people, SRC, DST)
    b = templates.fit(torch.from_numpy(people).float(), SRC, DST)
    assert torch.equal(a.template_index, b.template_index)
    assert torch.allclose(a.matrices, b.matrices, rtol=1e-4, atol=1e-3)


def test_empty_batch():
    fit = make_templates(np.random.default_rng(8)).fit(np.zeros((0, 17, 3)), SRC, DST)
    assert fit.matrices.shape == (0, 3, 3) and fit.template_index.shape == (0,)


def test_load_save_roundtrip_and_release_format(tmp_path):
    rng = np.random.default_rng(9)
    raw = rng.uniform(0, 1, (2, 17, 3))
    raw[0, 5, 2] = 0.3  # under the threshold
    data = {
        "names": list(COCO_PERSON_KEYPOINT_NAMES),
        "flip_map": dict(COCO_PERSON_FLIP_MAP),
        "vis_threshold": 0.4,
        "templates": [t.reshape(-1).tolist() for t in raw],
        "connections": [[16, 14]],  # the release also writes these keys
        "minpoints": 8,
    }
    path = tmp_path / "templates.json"
    path.write_text(json.dumps(data))
    templates = PoseTemplates.load(path)
    assert len(templates) == 4
    assert templates.templates[0, 5].tolist() == [0.0, 0.0, 0.0]
    left, right = COCO_PERSON_KEYPOINT_NAMES.index("left_wrist"), COCO_PERSON_KEYPOINT_NAMES.index("right_wrist")
    mirrored = templates.templates[2 + 1]
    assert mirrored[left, 0].item() == pytest.approx(raw[1, right, 0])
    assert mirrored[left, 1].item() == pytest.approx(raw[1, right, 1])
    geometric = PoseTemplates.load(path, mirror="geometric").templates[2 + 1]
    assert geometric[left, 0].item() == pytest.approx(1 - raw[1, right, 0])
    templates.save(tmp_path / "again.json")
    again = PoseTemplates.load(tmp_path / "again.json")
    assert torch.equal(again.templates, templates.templates)
    assert json.loads((tmp_path / "again.json").read_text())["templates"][0][17] == pytest.approx(0.3)


def test_load_names_the_file_and_field(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"names": [], "flip_map": {}, "templates": []}))
    with pytest.raises(ValueError, match=r"bad\.json.*vis_threshold"):
        PoseTemplates.load(path)
    path.write_text(
        json.dumps({"names": list(COCO_PERSON_KEYPOINT_NAMES), "flip_map": {}, "vis_threshold": 0.4,
                    "templates": [[0.5] * 50]})  # fmt: skip
    )
    with pytest.raises(ValueError, match=r"bad\.json.*templates\[0\] has 50 values"):
        PoseTemplates.load(path)


def test_per_person_source_sizes_equal_separate_calls():
    rng = np.random.default_rng(10)
    templates = make_templates(rng)
    people = random_people(rng, templates, 12)
    sizes = torch.tensor([[480, 640]] * 6 + [[200, 150]] * 6, dtype=torch.float64)
    for fallback in ("whole_map", "keypoint_box"):
        joint = templates.fit(people, sizes, DST, fallback=fallback)
        first = templates.fit(people[:6], (480, 640), DST, fallback=fallback)
        second = templates.fit(people[6:], (200, 150), DST, fallback=fallback)
        assert torch.equal(joint.template_index, torch.cat([first.template_index, second.template_index]))
        assert torch.allclose(joint.matrices, torch.cat([first.matrices, second.matrices]))
