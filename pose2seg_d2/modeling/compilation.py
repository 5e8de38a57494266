"""
MODEL.POSE2SEG.COMPILE: torch.compile over Pose2Seg's geometry at inference.

Outside the backbone and the SegModule, Pose2Seg's inference is a few hundred small tensor ops
(template fit, skeleton channels, affine-align's sampling taps, scoring, the warp-back's
plan): on a GPU each is a kernel launch of a few microseconds of work and about ten of host
overhead. :func:`compiled` gives the pure-tensor stages of the meta-architecture to
``torch.compile``, which fuses them into a few generated kernels. The stages hold no host synchronization and no
data-dependent shape, so each compiles into one graph.
"""
import torch

__all__ = ["COMPILE_MODES", "check_compile_mode", "check_compile_support", "compiled"]

# "" = eager. The others are torch.compile modes. CUDA graphs ("reduce-overhead") are left out:
# a graph is recorded per shape (number of persons, image size), and a replay overwrites the
# outputs of the one before, which the returned Instances still hold.
COMPILE_MODES = ("", "default", "max-autotune-no-cudagraphs")

_COMPILED = {}


def check_compile_mode(mode):
    if mode not in COMPILE_MODES:
        raise ValueError(f"MODEL.POSE2SEG.COMPILE must be one of {COMPILE_MODES}, got {mode!r}")
    return mode


def check_compile_support(mode, device):
    """
    Raise a RuntimeError that names MODEL.POSE2SEG.COMPILE where torch.compile could not run its
    code on ``device`` (it would fail at the first inference, deep inside inductor): CUDA needs
    Triton, the CPU a C++ compiler.
    """
    if not check_compile_mode(mode):
        return
    device = torch.device(device)
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            raise RuntimeError(
                f"MODEL.POSE2SEG.COMPILE={mode!r} on CUDA needs Triton, which this environment lacks "
                "(pip install triton, in the version your torch names), or set MODEL.POSE2SEG.COMPILE ''"
            )
    elif device.type == "cpu":
        from torch._inductor.cpp_builder import get_cpp_compiler

        try:
            get_cpp_compiler()
        except Exception as e:
            raise RuntimeError(
                f"MODEL.POSE2SEG.COMPILE={mode!r} on the CPU needs a C++ compiler ({e}); install g++ "
                "or set MODEL.POSE2SEG.COMPILE ''"
            ) from e


def compiled(function, mode):
    """
    ``function`` compiled by ``torch.compile`` in ``mode`` (made once per function and mode, and
    shared: compile plain functions or unbound methods, not bound ones), or ``function``
    itself for mode "".

    Shapes are left to torch.compile's default: the first call is compiled for its shapes, a
    call with other shapes (numbers of persons or images, image sizes) compiles once more with dynamic
    sizes, and later calls reuse that.
    """
    if not check_compile_mode(mode):
        return function
    key = (function, mode)
    if key not in _COMPILED:
        _COMPILED[key] = torch.compile(function, mode=mode)
    return _COMPILED[key]
