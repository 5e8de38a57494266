"""
Pose2Seg's exported graph (:class:`ExportablePose2Seg`) written as a ``torch.export``
ExportedProgram (``.pt2``) or an ONNX model (``.onnx``), and read back to run.

Both files take ``image`` (3, H, W) float32 and ``keypoints`` (N, 17, 3) float32 and give
``masks`` (N, H, W) bool and ``scores`` (N,) float32, for any N >= 0 and any H, W of at least
:func:`min_image_side` (the ONNX file's inputs and outputs carry these names).
"""
import os

import torch
from torch.export import Dim

from ..pose import NUM_KEYPOINTS, PoseTemplates
from ..release import ReleasePose2Seg
from ..utils import default_templates_file
from .graph import ExportablePose2Seg, size_divisibility

__all__ = [
    "FORMATS",
    "INPUT_NAMES",
    "OUTPUT_NAMES",
    "min_image_side",
    "example_inputs",
    "export_program",
    "save_pt2",
    "save_onnx",
    "export_model",
    "load_pt2",
    "load_onnx",
]

FORMATS = ("pt2", "onnx")
INPUT_NAMES = ("image", "keypoints")
OUTPUT_NAMES = ("masks", "scores")


def min_image_side(model):
    """
    The smallest image height and width the exported graph takes.

    Pose2Seg's padded input must be larger than twice the backbone's size divisibility (65 px
    for an FPN with a stride-64 level): below that, a level of the FPN is a single pixel, a
    layout the graph is not traced for. The release's model warps every image into its square
    input, so any image of at least 2 x 2 pixels goes.
    """
    if isinstance(model, ReleasePose2Seg):
        return 2
    return 2 * max(size_divisibility(model), 1) + 1


def example_inputs(model, image_size=None, num_persons=3, seed=0):
    """
    An image and persons to trace the graph with (their sizes must not be 0 or 1, which
    ``torch.export`` would take for constants) and to check the exported file on: a noise
    image and standing persons of the packaged pose templates, scaled, turned and placed at
    random.

    Args:
        image_size (tuple[int, int]): (H, W); None: a small one the graph takes.

    Returns:
        tuple: ``image`` (3, H, W) float32 in [0, 255] and ``keypoints`` (num_persons, 17, 3)
        float32 (x, y, v) in its continuous coordinates, on the model's device.
    """
    side = min_image_side(model) + 31
    height, width = image_size if image_size is not None else (side, side + 32)
    generator = torch.Generator().manual_seed(seed)

    def uniform(low, high, *shape):
        return low + (high - low) * torch.rand(*shape, generator=generator, dtype=torch.float64)

    image = uniform(0, 255, 3, height, width).float()
    poses = PoseTemplates.load(default_templates_file()).templates  # (T, 17, 3) in the unit square
    chosen = poses[torch.randint(len(poses), (num_persons,), generator=generator)]
    tall = uniform(0.3, 0.8, num_persons, 1, 1) * min(height, width)
    angle = uniform(-0.3, 0.3, num_persons)
    rotation = torch.stack([angle.cos(), -angle.sin(), angle.sin(), angle.cos()], dim=-1).view(-1, 1, 2, 2)
    center = torch.stack([uniform(0.2, 0.8, num_persons) * width, uniform(0.2, 0.8, num_persons) * height], dim=-1)
    xy = ((rotation @ (chosen[..., :2, None] - 0.5))[..., 0]) * tall + center[:, None]
    visibility = torch.where(uniform(0, 1, num_persons, NUM_KEYPOINTS) < 0.2, 1.0, 2.0)
    visibility = torch.where((chosen[..., 2] > 0) & (uniform(0, 1, num_persons, NUM_KEYPOINTS) > 0.1), visibility, 0.0)
    keypoints = torch.cat([xy * (visibility[..., None] > 0), visibility[..., None]], dim=-1).float()
    return image.to(model.device), keypoints.to(model.device)


def _dynamic_shapes(model):
    side = min_image_side(model)
    # H and W: Dim.AUTO, which accepts the stride guards of a channels-last backbone that
    # torch.export cannot prove for every size (they hold for all); export_program checks that
    # they stay dynamic
    return {
        "image": {1: Dim.AUTO(min=side), 2: Dim.AUTO(min=side)},
        "keypoints": {0: Dim("persons", min=0)},
    }


def export_program(model, example=None):
    """
    Trace ``model`` (a :class:`Pose2Seg` or :class:`ReleasePose2Seg` in eval mode) into one
    ``torch.export`` ExportedProgram of :class:`ExportablePose2Seg`, dynamic in the number of
    persons and the image size.

    Args:
        example (tuple): ``(image, keypoints)`` to trace with; None: :func:`example_inputs`.

    Returns:
        torch.export.ExportedProgram

    Raises:
        RuntimeError: where tracing fixed or narrowed a size that must take any value from its
            minimum up (a change to the model that made its code depend on one).
    """
    graph = ExportablePose2Seg(model).eval()
    example = example_inputs(model) if example is None else tuple(example)
    with torch.no_grad():
        program = torch.export.export(graph, example, dynamic_shapes=_dynamic_shapes(model))
    placeholders = {n.name: n.meta["val"] for n in program.graph.nodes if n.op == "placeholder"}
    image, keypoints = (placeholders[name] for name in program.graph_signature.user_inputs)
    side = min_image_side(model)
    sizes = {"H": (image.shape[1], side), "W": (image.shape[2], side), "N": (keypoints.shape[0], 0)}
    for name, (size, minimum) in sizes.items():
        bounds = None if isinstance(size, int) else program.range_constraints.get(size.node.expr)
        # Dim.AUTO would narrow a range silently where the code needs it: the graph must take
        # every size from the minimum up
        if bounds is None or int(bounds.lower) != minimum or not bool(bounds.upper > 2**20):
            raise RuntimeError(
                f"export_program: tracing fixed or narrowed the size {name} of the exported graph to "
                f"{bounds if bounds is not None else size}, which must take any value from {minimum} up"
            )
    return program


def save_pt2(program, path):
    """Write ``program`` as a ``.pt2`` file (``torch.export.save``)."""
    torch.export.save(program, os.fspath(path))
    return path


def _hypot(x, y):
    # prims.hypot (the template fit's scale) has no ONNX counterpart: sqrt(x^2 + y^2), which is
    # what it computes for the bounded values of the fit
    from onnxscript import opset18 as op

    return op.Sqrt(op.Add(op.Mul(x, x), op.Mul(y, y)))


def save_onnx(program, path):
    """
    Write ``program`` as one ``.onnx`` file (weights inside) through ``torch.onnx.export``.
    Needs the ``export`` extra (``pip install pose2seg_d2[export]``: onnx, onnxscript).

    The exporter's own graph optimizer is not run: it took more time than the rest of the
    export (2.7x on a 2-core CPU), and onnxruntime optimizes the graph when it loads it.
    """
    onnx_program = torch.onnx.export(
        program,
        input_names=list(INPUT_NAMES),
        output_names=list(OUTPUT_NAMES),
        custom_translation_table={torch.ops.prims.hypot.default: _hypot},
        dynamo=True,
        optimize=False,
        verbose=False,
    )
    onnx_program.save(os.fspath(path), external_data=False)
    return path


def export_model(model, path, format, example=None):
    """:func:`export_program` written to ``path`` in ``format`` ("pt2" or "onnx")."""
    if format not in FORMATS:
        raise ValueError(f"export format must be one of {FORMATS}, got {format!r}")
    program = export_program(model, example)
    return save_pt2(program, path) if format == "pt2" else save_onnx(program, path)


def load_pt2(path):
    """A ``.pt2`` file as a callable module: ``(image, keypoints) -> (masks, scores)``."""
    return torch.export.load(os.fspath(path)).module()


class _OnnxRunner:
    """An ONNX file run by onnxruntime, called with tensors and giving tensors back."""

    def __init__(self, path, providers=None, threads=None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(
            os.fspath(path), options, providers=providers or ["CPUExecutionProvider"]
        )

    def __call__(self, image, keypoints):
        feeds = {"image": image.detach().cpu().numpy(), "keypoints": keypoints.detach().cpu().numpy()}
        masks, scores = self.session.run(list(OUTPUT_NAMES), feeds)
        return torch.from_numpy(masks), torch.from_numpy(scores)


def load_onnx(path, providers=None, threads=None):
    """
    An ``.onnx`` file run by onnxruntime as a callable ``(image, keypoints) -> (masks,
    scores)`` on CPU tensors.

    Args:
        providers (list[str]): onnxruntime's execution providers; None: the CPU's.
        threads (int): its threads within an operator; None: onnxruntime's default (the cores).
    """
    return _OnnxRunner(path, providers, threads)
