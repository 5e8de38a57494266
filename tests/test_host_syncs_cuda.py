"""
On a CUDA device (skipped without one): Pose2Seg makes as many host synchronizations for 1
person as for 20, at most 3 per batch with the "gt" and "json" keypoint sources, as counted by
``torch.cuda.set_sync_debug_mode`` (each synchronizing CUDA call warns); a training step as many
for 1 person per image as for 10; and the CUDA outputs are the CPU ones (eager and with
MODEL.POSE2SEG.COMPILE).
"""
import copy
import json
import warnings

import numpy as np
import pytest
import torch
from detectron2.utils.events import EventStorage

from .test_host_syncs import MAX_SYNCS_PER_BATCH, make_input, persons, templates_file, tiny_model  # noqa: F401

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def cuda_syncs(fn):
    """``fn()`` under ``torch.cuda.set_sync_debug_mode("warn")``: its result and where each
    synchronizing call was made (file:line of the Python caller)."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            result = fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [f"{w.filename}:{w.lineno}" for w in caught if "synchroniz" in str(w.message)]
    return result, syncs


def inference_syncs(model, inputs):
    with torch.no_grad():
        return cuda_syncs(lambda: model(inputs))


@pytest.fixture(autouse=True)
def exact_float32():
    """No TF32 in convolutions and matmuls, so that CUDA and CPU outputs can be compared."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize(
    "opts",
    [
        (),
        ("MODEL.POSE2SEG.CHANNELS_LAST", True),
        ("MODEL.POSE2SEG.AUTOCAST", "bf16"),
        ("MODEL.POSE2SEG.AUTOCAST", "fp16", "MODEL.POSE2SEG.CHANNELS_LAST", True),
        ("MODEL.POSE2SEG.COMPILE", "default"),
    ],
)
def test_cuda_inference_syncs_do_not_grow_with_persons(templates_file, opts):  # noqa: F811
    model = tiny_model(templates_file, "MODEL.DEVICE", "cuda", *opts)
    inference_syncs(model, [make_input(3)])  # warm-up: device constants, pinned memory, cuDNN
    batches = {num: [make_input(num, 1), make_input(0, 2), make_input(num // 2 + 1, 3, image_size=(80, 112))] for num in (1, 20)}
    found = {}
    for num, batch in batches.items():
        out, found[num] = inference_syncs(model, batch)
        assert [len(o["instances"]) for o in out] == [num, 0, num // 2 + 1]
        instances = out[0]["instances"]
        assert instances.pred_masks.is_cuda and instances.pred_masks.dtype == torch.bool
        assert instances.pred_boxes.tensor.is_cuda and torch.isfinite(instances.scores).all()
    assert len(found[1]) == len(found[20]) <= MAX_SYNCS_PER_BATCH, found


def test_cuda_inference_syncs_json_source(templates_file, tmp_path):  # noqa: F811
    entries = []
    for image_id, num in ((1, 1), (2, 20)):
        for kpt in persons(num, image_id):
            kpt = kpt.astype(np.float64)
            kpt[:, :2] -= 0.5
            kpt[:, 2] = np.where(kpt[:, 2] > 0, 0.9, 0.0)
            entries.append({"image_id": image_id, "category_id": 1, "keypoints": kpt.reshape(-1).tolist(), "score": 0.8})
    path = tmp_path / "keypoints.json"
    path.write_text(json.dumps(entries))
    model = tiny_model(
        templates_file, "MODEL.DEVICE", "cuda", "MODEL.POSE2SEG.KEYPOINT_SOURCE", "json",
        "MODEL.POSE2SEG.KEYPOINTS_FILE", str(path), "MODEL.POSE2SEG.MIN_CONFIDENT_KEYPOINTS", 0,
    )  # fmt: skip
    inference_syncs(model, [make_input(0, image_id=2)])
    (one,), few = inference_syncs(model, [make_input(0, image_id=1)])
    (twenty,), many = inference_syncs(model, [make_input(0, image_id=2)])
    assert (len(one["instances"]), len(twenty["instances"])) == (1, 20)
    assert len(few) == len(many) <= MAX_SYNCS_PER_BATCH, (few, many)


def test_cuda_training_step_syncs_do_not_grow_with_persons(templates_file):  # noqa: F811
    model = tiny_model(templates_file, "MODEL.DEVICE", "cuda").train()

    def step(num):
        batch = [make_input(num, masks=True), make_input(num, 1, masks=True)]

        def run():
            with EventStorage():
                loss = sum(model(batch).values())
                loss.backward()
            return loss

        loss, syncs = cuda_syncs(run)
        assert torch.isfinite(loss)
        return syncs

    step(3)
    few, many = step(1), step(10)
    assert len(few) == len(many), (few, many)


@pytest.mark.parametrize("compile_mode", ["", "default"])
def test_cuda_outputs_equal_the_cpu_outputs(templates_file, compile_mode):  # noqa: F811
    cpu = tiny_model(templates_file)
    gpu = copy.deepcopy(cpu).to("cuda")
    gpu.compile_mode = compile_mode  # MODEL.POSE2SEG.COMPILE
    batch = [make_input(12, 4), make_input(5, 5, image_size=(80, 112), output_size=(120, 168))]
    with torch.no_grad():
        expected, got = cpu(batch), gpu(batch)
    for e, g in zip(expected, got):
        e, g = e["instances"], g["instances"].to("cpu")
        assert len(e) == len(g) > 0
        # the same persons (matched by their keypoints: near-equal scores may swap places)
        distance = (e.pred_keypoints[:, None, :, :2] - g.pred_keypoints[None, :, :, :2]).abs().flatten(2).amax(2)
        match = distance.argmin(dim=1)
        assert sorted(match.tolist()) == list(range(len(g)))
        assert torch.allclose(g.pred_keypoints[match], e.pred_keypoints, rtol=1e-5, atol=1e-4)
        assert torch.allclose(g.scores[match], e.scores, atol=1e-4)
        masks_e, masks_g = e.pred_masks, g.pred_masks[match]
        differ = (masks_e != masks_g).flatten(1).sum(1)
        union = (masks_e | masks_g).flatten(1).sum(1)
        assert (differ <= 0.001 * union + 2).all(), (differ, union)
        assert (g.pred_boxes.tensor[match] - e.pred_boxes.tensor).abs().max() <= 1.0
