"""
Pose2Seg's inference as one exported graph (README.md, "Export"): :class:`ExportablePose2Seg`,
traced by ``torch.export`` and written as a ``.pt2`` ExportedProgram or an ONNX model
(``tools/deploy/export_model.py``).
"""
from .formats import (
    FORMATS,
    INPUT_NAMES,
    OUTPUT_NAMES,
    example_inputs,
    export_model,
    export_program,
    load_onnx,
    load_pt2,
    min_image_side,
    save_onnx,
    save_pt2,
)
from .graph import ExportablePose2Seg

__all__ = [
    "ExportablePose2Seg",
    "FORMATS",
    "INPUT_NAMES",
    "OUTPUT_NAMES",
    "example_inputs",
    "export_model",
    "export_program",
    "load_onnx",
    "load_pt2",
    "min_image_side",
    "save_onnx",
    "save_pt2",
]
