"""
Pose2Seg makes as many host synchronizations, and as many device calls, for 1 person as for 20.

The count is made on the CPU by :class:`pose2seg_d2.diagnostics.HostSyncCounter`: the calls that would
make the host wait for a CUDA device (values read on the host, data-dependent shapes, blocking
copies of host data), and the calls that touch device data (about one kernel launch each).
tests/test_host_syncs_cuda.py checks the same on a CUDA device with
``torch.cuda.set_sync_debug_mode``.
"""
import collections
import json

import numpy as np
import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import BitMasks, Instances, Keypoints
from detectron2.utils.events import EventStorage

from pose2seg_d2.diagnostics import HostSyncCounter, model_host_tensors
from pose2seg_d2.layers import paste_masks, warp_windows_to_image

from .fixtures import STANDING, tiny_pose2seg_cfg, write_templates

# At most this many per batch for the "gt" and "json" keypoint sources; the design
# needs one: the crops' size of the warp-back.
MAX_SYNCS_PER_BATCH = 3
IMAGE = (96, 128)


@pytest.fixture(scope="module")
def templates_file(tmp_path_factory):
    return write_templates(str(tmp_path_factory.mktemp("templates") / "templates.json"))


def tiny_model(templates_file, *opts):
    cfg = tiny_pose2seg_cfg("/tmp/unused", "unused", "unused", templates_file)
    cfg.merge_from_list(list(opts))
    torch.manual_seed(0)
    return build_model(cfg).eval()


def persons(num, seed, image_size=IMAGE):
    """``num`` standing persons of several sizes and places, with occluded (v=1) and unlabeled
    keypoints; one in four has only two keypoints (no template fits: the fallback)."""
    rng = np.random.default_rng(seed)
    h, w = image_size
    out = np.zeros((num, 17, 3), np.float32)
    for i in range(num):
        tall = rng.uniform(0.3, 0.9) * h
        x0, y0 = rng.uniform(-0.1 * w, w - 0.3 * tall), rng.uniform(-0.1 * h, h - 0.8 * tall)
        out[i, :, :2] = STANDING * [0.5 * tall, tall] + [x0, y0]
        out[i, :, 2] = np.where(rng.random(17) < 0.2, 1, 2)
        out[i, rng.random(17) < 0.1] = 0
        if i % 4 == 3:
            out[i, 2:] = 0
    return out


def make_input(num, seed=0, image_size=IMAGE, output_size=(192, 256), masks=False, image_id=1):
    h, w = image_size
    rng = np.random.default_rng(seed + 1000)
    instances = Instances(image_size)
    instances.gt_keypoints = Keypoints(torch.from_numpy(persons(num, seed, image_size)))
    if masks:
        instances.gt_masks = BitMasks(torch.from_numpy(rng.random((num, h, w)) < 0.3))
    return {
        "image": torch.from_numpy(rng.integers(0, 255, (3, h, w), dtype=np.uint8)),
        "height": output_size[0],
        "width": output_size[1],
        "instances": instances,
        "image_id": image_id,
    }


def count(model, inputs, train=False):
    """Run the model once (a forward and backward pass with ``train``) inside a counter."""
    with HostSyncCounter(model_host_tensors(model, inputs)) as counter:
        if train:
            with EventStorage():
                sum(model(inputs).values()).backward()
        else:
            with torch.no_grad():
                model(inputs)
    return counter


def assert_same_counts(few, many, max_syncs=None):
    message = f"\n1 person:\n{few.report()}\n20 persons:\n{many.report()}"
    assert few.syncs == many.syncs, "host synchronizations grow with the number of persons" + message
    assert few.device_calls == many.device_calls, "device calls grow with the number of persons" + message
    assert not few.mismatches and not many.mismatches, "host tensors mixed with device tensors" + message
    if max_syncs is not None:
        assert many.total_syncs <= max_syncs, message


def test_inference_syncs_do_not_grow_with_persons_gt(templates_file):
    model = tiny_model(templates_file)
    with torch.no_grad():
        model([make_input(3)])  # warm-up: device constants made once
    few = count(model, [make_input(1)])
    many = count(model, [make_input(20)])
    assert_same_counts(few, many, MAX_SYNCS_PER_BATCH)
    assert many.total_syncs >= 1  # the crops' size is read: the counter sees it
    assert many.total_device_calls > 100  # the counter sees the model's ops

    # a batch of three images, one without persons, of two sizes: still the same counts
    batch = [make_input(1, 1), make_input(0, 2), make_input(1, 3, image_size=(80, 112), output_size=(80, 112))]
    big = [make_input(20, 1), make_input(0, 2), make_input(9, 3, image_size=(80, 112), output_size=(80, 112))]
    with torch.no_grad():
        model(batch)
    assert_same_counts(count(model, batch), count(model, big), MAX_SYNCS_PER_BATCH)


def test_inference_syncs_do_not_grow_with_persons_json(templates_file, tmp_path):
    entries = []
    for image_id, num in ((1, 1), (2, 20)):
        for kpt in persons(num, image_id):
            kpt = kpt.astype(np.float64)
            kpt[:, :2] -= 0.5  # the file holds COCO pixel indices
            kpt[:, 2] = np.where(kpt[:, 2] > 0, 0.9, 0.0)
            entries.append({"image_id": image_id, "category_id": 1, "keypoints": kpt.reshape(-1).tolist(), "score": 0.8})
    path = tmp_path / "keypoints.json"
    path.write_text(json.dumps(entries))
    model = tiny_model(
        templates_file, "MODEL.POSE2SEG.KEYPOINT_SOURCE", "json", "MODEL.POSE2SEG.KEYPOINTS_FILE", str(path),
        "MODEL.POSE2SEG.MIN_CONFIDENT_KEYPOINTS", 0,
    )  # fmt: skip
    with torch.no_grad():
        model([make_input(0, image_id=2)])
    one = make_input(0, image_id=1, output_size=IMAGE)
    twenty = make_input(0, image_id=2, output_size=IMAGE)
    with torch.no_grad():
        assert [len(model([x])[0]["instances"]) for x in (one, twenty)] == [1, 20]
    assert_same_counts(count(model, [one]), count(model, [twenty]), MAX_SYNCS_PER_BATCH)


def test_training_step_syncs_do_not_grow_with_persons(templates_file):
    model = tiny_model(templates_file).train()
    try:
        with EventStorage():
            sum(model([make_input(3, masks=True)]).values()).backward()
        few = count(model, [make_input(1, masks=True), make_input(1, 1, masks=True)], train=True)
        many = count(model, [make_input(20, masks=True), make_input(20, 1, masks=True)], train=True)
    finally:
        model.eval()
        model.zero_grad()
    # 2 persons and MAX_INSTANCES_PER_BATCH (8) of the 40: the same device work but for the
    # random choice, which is made on the host
    assert_same_counts(few, many, max_syncs=0)


def test_paste_makes_one_sync_without_a_crop_size_and_none_with_one():
    rng = np.random.default_rng(0)
    for num in (1, 20):
        windows = torch.rand(num, 16, 16)
        m = torch.zeros(num, 3, 3, dtype=torch.float64)
        scale = torch.from_numpy(rng.uniform(0.2, 1.0, num))
        m[:, 0, 0], m[:, 1, 1], m[:, 2, 2] = scale, scale, 1.0
        m[:, :2, 2] = torch.from_numpy(rng.uniform(-20, 5, (num, 2)))
        with HostSyncCounter() as counter:
            warp_windows_to_image(windows, m, (60, 80))
        assert counter.total_syncs == 1, counter.report()
        with HostSyncCounter() as counter:
            paste_masks(windows, m, (60, 80), 0.5, crop_size=(60, 80))
        assert counter.total_syncs == 0, counter.report()


def test_counter_catches_a_per_person_sync():
    """The counter itself: a loop that reads per-person values is caught, as are blocking
    copies, boolean masks and host tensors mixed with device tensors."""
    x = torch.rand(5, 3)
    with HostSyncCounter() as counter:
        for row in x.tolist():
            pass
        for n in range(len(x)):
            x[n].sum().item()
        x[x > 0.5]
        torch.tensor([1.0, 2.0], device=x.device)
        x.new_tensor([3.0])
        x.cpu()
        x.to("cpu")
        torch.zeros(3).to(x.device)
        x[:, [0, 1]]
        torch.nonzero(x)
        torch.zeros(5, 3) + x
        torch.zeros(5, 3).to(x.device, non_blocking=True) + x  # not counted
        torch.zeros(5, 3).sum() + x  # a 0-dim host tensor: a CPU scalar, not counted
        torch.as_tensor([x[0, 0], x[1, 1]])  # two values read
    kinds = collections.Counter()
    for (kind, _), n in counter.syncs.items():
        kinds[kind] += n
    assert kinds == {"read": 1 + 5 + 2, "shape": 2, "h2d": 4, "d2h": 2}, counter.report()
    assert sum(counter.mismatches.values()) == 1, counter.report()

