"""
Pose2Seg exported as one graph (pose2seg_d2/export, tools/deploy/export_model.py): the ``.pt2``
ExportedProgram and the ONNX file, run by torch and by onnxruntime, give the eager model's masks
(IoU >= 0.99 per person) and scores (within 1e-4) on images of three sizes with 0, 1 and 12
persons; for a tiny random-weight Pose2Seg and for the release's model from a converted
checkpoint. Each model is exported once per module (torch.export, then ONNX: most of this
file's time).
"""
import importlib.util
import json
import os

import numpy as np
import pytest
import torch
from detectron2.modeling import build_model

from pose2seg_d2.config import load_config
from pose2seg_d2.engine import AtomicDetectionCheckpointer
from pose2seg_d2.export import (
    ExportablePose2Seg,
    export_model,
    export_program,
    load_onnx,
    load_pt2,
    min_image_side,
    save_onnx,
    save_pt2,
)
from pose2seg_d2.export.compare import agreement, eager_outputs

from .fixtures import tiny_pose2seg_cfg, write_templates
from .test_host_syncs import persons
from .test_release import RELEASE_CONFIG, make_scene, release_setup  # noqa: F401  (a fixture)

onnx = pytest.importorskip("onnx", reason="the export extra: pip install pose2seg_d2[export]")
pytest.importorskip("onnxruntime", reason="the export extra: pip install pose2seg_d2[export]")

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FORMATS = ("pt2", "onnx")
TINY_SIZES = [(96, 128), (131, 77), (150, 200)]  # (height, width); 131 x 77: no multiple of 4
PERSONS = (0, 1, 12)
MIN_IOU, MAX_SCORE_DIFFERENCE = 0.99, 1e-4


def export_both(model, folder):
    """The model exported once, written in both formats and read back: format -> callable."""
    program = export_program(model)
    return {
        "pt2": load_pt2(save_pt2(program, folder / "model.pt2")),
        "onnx": load_onnx(save_onnx(program, folder / "model.onnx")),
        "files": {"pt2": folder / "model.pt2", "onnx": folder / "model.onnx"},
    }


_EAGER = {}  # (model, case) -> the eager outputs, computed once for both formats


def assert_round_trip(model, run, image, keypoints, case=None):
    key = (id(model), case)
    if case is None or key not in _EAGER:
        _EAGER[key] = eager_outputs(model, image, keypoints)
    expected = _EAGER[key]
    masks, scores = run(image, keypoints)
    n, (h, w) = len(keypoints), image.shape[-2:]
    assert masks.dtype == torch.bool and tuple(masks.shape) == (n, h, w)
    assert scores.dtype == torch.float32 and tuple(scores.shape) == (n,)
    iou, score_difference = agreement(expected, (masks, scores))
    if n:
        assert iou.min() >= MIN_IOU, f"IoU per person {iou.tolist()}"
        assert score_difference.max() <= MAX_SCORE_DIFFERENCE, f"score differences {score_difference.tolist()}"
        assert expected[0].flatten(1).any(dim=1).sum() >= n // 2  # the masks are not trivially empty
    return iou


# ---------------------------------------------------------------------------- a tiny Pose2Seg
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export_tiny")
    cfg = tiny_pose2seg_cfg(str(folder), "unused", "unused", write_templates(str(folder / "templates.json")))
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    return {"model": model, **export_both(model, folder)}


def tiny_input(size, num, seed):
    """A noise image and ``num`` persons of several sizes (with occluded and unlabeled keypoints;
    every fourth with two keypoints, which no template fits: the fallback window)."""
    h, w = size
    image = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (3, h, w)).astype(np.float32))
    return image, torch.from_numpy(persons(num, seed, size))


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("size", TINY_SIZES)
@pytest.mark.parametrize("num", PERSONS)
def test_exported_tiny_model_gives_the_eager_masks(tiny, format, size, num):
    image, keypoints = tiny_input(size, num, seed=size[0] + num)
    assert_round_trip(tiny["model"], tiny[format], image, keypoints, case=(size, num))


@pytest.mark.parametrize("format", FORMATS)
def test_exported_graph_takes_messy_keypoints_as_the_eager_model(tiny, format):
    """NaN, infinite and absurd coordinates count as unlabeled in the exported graph too; a person
    with none labeled gets the fallback window."""
    image, keypoints = tiny_input((96, 128), 6, seed=5)
    keypoints[0, 3:6, 0] = float("nan")
    keypoints[1, :, :2] = float("inf")
    keypoints[2, 5:9, 1] = 1e12
    keypoints[4, 0, 2] = float("nan")
    assert_round_trip(tiny["model"], tiny[format], image, keypoints, case="messy")


def test_exported_files_need_only_standard_operators(tiny):
    """The ONNX file uses the default ONNX domain alone and the ExportedProgram aten operators
    alone: any ONNX runtime and a plain torch run them, without this package."""
    model = onnx.load(str(tiny["files"]["onnx"]))
    onnx.checker.check_model(model)
    assert {opset.domain for opset in model.opset_import} <= {"", "ai.onnx"}
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
    assert [i.name for i in model.graph.input] == ["image", "keypoints"]
    assert [o.name for o in model.graph.output] == ["masks", "scores"]
    program = torch.export.load(str(tiny["files"]["pt2"]))
    targets = [n.target for n in program.graph.nodes if n.op == "call_function"]
    assert {t.namespace for t in targets if isinstance(t, torch._ops.OpOverload)} == {"aten"}
    # the rest is size arithmetic: operator's functions and torch.sym_float
    others = {(t.__module__, t.__name__) for t in targets if not isinstance(t, torch._ops.OpOverload)}
    assert all(module == "_operator" or (module, name) == ("torch", "sym_float") for module, name in others), others


def test_exported_graph_states_its_smallest_image(tiny):
    side = min_image_side(tiny["model"])
    assert side == 2 * 32 + 1
    image, keypoints = tiny_input((side, side), 2, seed=1)
    assert_round_trip(tiny["model"], tiny["pt2"], image, keypoints)
    with pytest.raises(Exception, match="65"):
        tiny["pt2"](*tiny_input((side - 1, 100), 2, seed=1))


def test_eager_model_is_unchanged_by_its_export(tiny, tmp_path):
    """Exporting traces the model with fake tensors: none is left behind in its caches (the
    fixture exported the model before its first eager call), so it gives the masks of the same
    model never exported."""
    cfg = tiny_pose2seg_cfg(str(tmp_path), "unused", "unused", write_templates(str(tmp_path / "templates.json")))
    torch.manual_seed(0)
    never_exported = build_model(cfg).eval()
    image, keypoints = tiny_input((96, 128), 3, seed=2)
    exported, fresh = eager_outputs(tiny["model"], image, keypoints), eager_outputs(never_exported, image, keypoints)
    assert torch.equal(exported[0], fresh[0]) and torch.equal(exported[1], fresh[1])


def test_export_refuses_what_it_cannot_export(tiny, tmp_path):
    with pytest.raises(ValueError, match="pt2"):
        export_model(tiny["model"], tmp_path / "model.tflite", "tflite")
    try:
        with pytest.raises(ValueError, match="eval mode"):
            ExportablePose2Seg(tiny["model"].train())
    finally:
        tiny["model"].eval()
    with pytest.raises(TypeError, match="Pose2Seg"):
        ExportablePose2Seg(torch.nn.Conv2d(3, 3, 1))


# ---------------------------------------------------------------------------- the release's model
RELEASE_CASES = [((360, 480), 12), ((500, 260), 1), ((180, 640), 0)]  # (height, width), persons


@pytest.fixture(scope="module")
def release(release_setup, tmp_path_factory):  # noqa: F811
    """The release's model from the converted checkpoint of a random release model (see
    tests/test_release.py), ground-truth keypoints."""
    cfg = load_config(RELEASE_CONFIG, ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", release_setup["converted"]])
    model = build_model(cfg)
    AtomicDetectionCheckpointer(model).load(release_setup["converted"])
    model.eval()
    return {"model": model, **export_both(model, tmp_path_factory.mktemp("export_release"))}


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("size, num", RELEASE_CASES)
def test_exported_release_model_gives_the_eager_masks(release, format, size, num):
    rng = np.random.default_rng(size[0] + num)
    image_bgr, people = make_scene(rng, *size, max(num, 1))
    people = people[:num].copy()
    people[..., :2] += 0.5  # COCO pixel numbers -> Detectron2's continuous coordinates
    image = torch.from_numpy(image_bgr[..., ::-1].transpose(2, 0, 1).astype(np.float32))  # RGB, the config's
    assert_round_trip(release["model"], release[format], image, torch.from_numpy(people), case=(size, num))


# ---------------------------------------------------------------------------- the command
def load_tool():
    path = os.path.join(REPO, "tools", "deploy", "export_model.py")
    spec = importlib.util.spec_from_file_location("export_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_command_writes_and_checks_the_file(tiny, tmp_path, capsys):
    templates = write_templates(str(tmp_path / "templates.json"))
    config = tmp_path / "tiny.yaml"
    config.write_text(tiny_pose2seg_cfg(str(tmp_path), "unused", "unused", templates).dump())
    torch.save({"model": tiny["model"].state_dict()}, tmp_path / "weights.pth")
    out = tmp_path / "exported"
    status = load_tool().main([
        "--config-file", str(config), "--format", "pt2", "--output", str(out),
        "MODEL.WEIGHTS", str(tmp_path / "weights.pth"),
    ])  # fmt: skip
    assert status == 0, capsys.readouterr()
    report = capsys.readouterr().out
    assert "IoU" in report and "model.pt2" in report
    info = json.loads((out / "model.json").read_text())
    assert info["format"] == "pt2" and info["inputs"]["image"]["min_side"] == 65
    assert info["input_format"] == "BGR" and info["resize"] == {"min_size_test": 96, "max_size_test": 160}
    image, keypoints = tiny_input((96, 128), 3, seed=4)
    assert_round_trip(tiny["model"], load_pt2(out / "model.pt2"), image, keypoints)


def test_export_command_names_a_bad_option(tmp_path, capsys):
    status = load_tool().main(["--config-file", os.path.join(REPO, "configs", "missing.yaml"), "--format", "pt2", "--output", str(tmp_path)])
    assert status == 2 and "missing.yaml" in capsys.readouterr().err
