"""
MODEL.POSE2SEG.COMPILE: the geometry stages trace into one graph each, and the compiled model
gives the eager model's outputs.
"""
import shutil

import pytest
import torch
import torch._dynamo

from pose2seg_d2.modeling import Pose2Seg
from pose2seg_d2.modeling.compilation import COMPILE_MODES

from .test_host_syncs import make_input, templates_file, tiny_model  # noqa: F401 (a fixture)


def stage_inputs(model, batch):
    """The arguments the model's inference gives its two compiled stages."""
    images = model.preprocess_image(batch)
    features = model.backbone(images.tensor)[model.in_feature]
    sources = model.keypoint_source(batch, images.image_sizes, model.device)
    sizes = [(x["height"], x["width"]) for x in batch]
    persons = model._persons([k for k, _ in sources], [s for _, s in sources], images.image_sizes, sizes)
    window = (model, features, persons.keypoints, persons.batch_index, persons.feature_from_input, persons.feature_sizes)
    inputs, window_from_input = type(model)._window_inputs(*window)
    rank = (model, model.head(inputs), persons.scores, persons.keypoints, persons.batch_index,
            persons.input_sizes, persons.output_sizes, window_from_input, len(batch))  # fmt: skip
    return window, rank


def test_geometry_stages_trace_into_one_graph_each(templates_file):
    """A host read, a data-dependent shape or an untraceable op in the geometry breaks its graph:
    torch.compile would then run the pieces between the breaks eagerly, one kernel an op."""
    model = tiny_model(templates_file)
    batch = [make_input(6, 0), make_input(0, 1), make_input(3, 2, image_size=(80, 112), output_size=(80, 112))]
    with torch.no_grad():
        window, rank = stage_inputs(model, batch)
        for stage, args in ((Pose2Seg._window_inputs, window), (Pose2Seg._rank_and_plan, rank)):
            torch._dynamo.reset()
            explained = torch._dynamo.explain(stage)(*args)
            reasons = [str(b.reason).splitlines()[0] for b in explained.break_reasons]
            assert explained.graph_break_count == 0, f"{stage.__name__}: {reasons}"
            assert explained.graph_count == 1, stage.__name__
            assert explained.op_count > 50, stage.__name__  # the stage's ops are in the graph


def test_skeleton_features_traced_equal_eager():
    """Traced, skeleton_features concatenates its channels instead of writing them into slices of
    one output; the values must be the same (aot_eager: traced, then run by eager kernels)."""
    from pose2seg_d2.pose import skeleton_features

    from .test_host_syncs import persons

    keypoints = torch.from_numpy(persons(7, 3, image_size=(40, 30)))  # window-sized persons
    keypoints[0, :, 0] = 12.5  # a vertical limb, and keypoints at pixel halves
    expected = skeleton_features(keypoints, (40, 30))
    torch._dynamo.reset()
    traced = torch.compile(skeleton_features, backend="aot_eager", fullgraph=True)(keypoints, (40, 30))
    assert torch.equal(traced, expected)
    assert expected.shape == (7, 55, 40, 30) and (expected[:, 17:] != 0).any() and (expected[:, :17] < 0).any()


def test_release_window_inputs_trace_into_one_graph():
    from detectron2.modeling import build_model

    from pose2seg_d2.config import load_config
    from pose2seg_d2.release import ReleasePose2Seg

    from .test_release import RELEASE_CONFIG

    cfg = load_config(RELEASE_CONFIG, [
        "MODEL.DEVICE", "cpu", "MODEL.RESNETS.DEPTH", 18, "MODEL.RESNETS.RES2_OUT_CHANNELS", 64,
        "MODEL.FPN.OUT_CHANNELS", 32, "MODEL.POSE2SEG.RELEASE_INPUT_SIZE", 128, "MODEL.POSE2SEG.WINDOW_SIZE", (32, 32),
    ])  # fmt: skip
    model = build_model(cfg).eval()
    batch = [make_input(5, 0), make_input(2, 1, image_size=(80, 112), output_size=(80, 112))]
    with torch.no_grad():
        window, _ = stage_inputs(model, batch)
        torch._dynamo.reset()
        explained = torch._dynamo.explain(ReleasePose2Seg._window_inputs)(*window)
    assert explained.graph_break_count == 0, [str(b.reason).splitlines()[0] for b in explained.break_reasons]
    assert explained.graph_count == 1 and explained.op_count > 50


@pytest.mark.skipif(shutil.which("g++") is None, reason="torch.compile on the CPU needs a C++ compiler")
def test_compiled_inference_equals_eager(templates_file):
    eager = tiny_model(templates_file)
    compiled = tiny_model(templates_file, "MODEL.POSE2SEG.COMPILE", "default")
    compiled.load_state_dict(eager.state_dict())
    torch._dynamo.reset()
    # a batch of images of two sizes, one without persons; then other numbers of persons, which
    # compile the stages once more for dynamic sizes
    batches = [
        [make_input(6, 0), make_input(0, 1), make_input(3, 2, image_size=(80, 112), output_size=(80, 112))],
        [make_input(11, 3), make_input(1, 4)],
    ]
    for batch in batches:
        with torch.no_grad():
            expected, actual = eager(batch), compiled(batch)
        for e, a in zip(expected, actual):
            e, a = e["instances"], a["instances"]
            assert len(e) == len(a) and e.image_size == a.image_size
            assert torch.equal(e.pred_masks, a.pred_masks)
            assert torch.equal(e.pred_boxes.tensor, a.pred_boxes.tensor)
            assert torch.equal(e.pred_keypoints, a.pred_keypoints)
            # float32 sums of the mask confidence, fused in another order
            torch.testing.assert_close(a.scores, e.scores, rtol=1e-6, atol=1e-7)
        assert sum(len(x["instances"]) for x in actual) == sum(len(x["instances"]) for x in expected) > 0


def test_compile_mode_is_checked(templates_file, monkeypatch):
    with pytest.raises(ValueError, match="MODEL.POSE2SEG.COMPILE"):
        tiny_model(templates_file, "MODEL.POSE2SEG.COMPILE", "reduce-overhead")
    assert "" in COMPILE_MODES and "default" in COMPILE_MODES

    # no C++ compiler: said when the model is built, not deep inside inductor at its first call
    import torch._inductor.cpp_builder as cpp_builder

    def no_compiler():
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(cpp_builder, "get_cpp_compiler", no_compiler)
    with pytest.raises(RuntimeError, match="MODEL.POSE2SEG.COMPILE='default' on the CPU needs a C\\+\\+ compiler"):
        tiny_model(templates_file, "MODEL.POSE2SEG.COMPILE", "default")
    tiny_model(templates_file)  # eager needs none
