"""Small helpers shared by the package."""
import functools
import os

import torch

__all__ = [
    "DATASETS_ENV",
    "datasets_root",
    "resolve_path",
    "default_templates_file",
    "package_asset",
    "PACKAGE_ASSETS_PREFIX",
    "to_device",
    "device_constant",
    "cat_to_device",
    "to_network_layout",
]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

# A config path starting with this names a file shipped in pose2seg_d2/assets/ (templates and
# weights alike: pose2seg_d2/assets_path.py lets Detectron2's PathManager open it too).
PACKAGE_ASSETS_PREFIX = "pose2seg_d2://"


def package_asset(path):
    """The local path of ``pose2seg_d2://NAME``: pose2seg_d2/assets/NAME (whether or not it exists)."""
    return os.path.join(_PACKAGE_DIR, "assets", path[len(PACKAGE_ASSETS_PREFIX) :])


DATASETS_ENV = "DETECTRON2_DATASETS"


def datasets_root():
    """``$DETECTRON2_DATASETS``, default ``datasets`` (relative to the working directory, as
    Detectron2 defaults to), with ``~`` expanded."""
    return os.path.expanduser(os.getenv(DATASETS_ENV, "datasets"))


def default_templates_file():
    """The templates JSON shipped with the package (clustered from the synthetic train split)."""
    return os.path.join(_PACKAGE_DIR, "assets", "templates_synthetic.json")


def resolve_path(path):
    """
    Expand a path from a config: "" -> the packaged templates file; "pose2seg_d2://NAME" ->
    the packaged asset pose2seg_d2/assets/NAME; a leading "$DETECTRON2_DATASETS" or
    "${DETECTRON2_DATASETS}" -> :func:`datasets_root`; "~" and other environment variables as
    the shell would.
    """
    if not path:
        return default_templates_file()
    if path.startswith(PACKAGE_ASSETS_PREFIX):
        return package_asset(path)
    for token in ("${DETECTRON2_DATASETS}", "$DETECTRON2_DATASETS"):
        if path.startswith(token):
            path = datasets_root() + path[len(token) :]
            break
    return os.path.expanduser(os.path.expandvars(path))


def to_device(tensor, device):
    """
    ``tensor`` on ``device``, without making the host wait for a CUDA device.

    A plain ``.to("cuda")`` of a CPU tensor copies from pageable memory and synchronizes the
    stream (the host waits for every kernel queued before it). Here a CPU tensor goes to CUDA
    from pinned memory with ``non_blocking=True``: the copy is queued like a kernel. Tensors
    already on a device are moved with a plain ``.to`` (no copy when already there); a copy
    from a device to the host is never made non-blocking.
    """
    device = torch.device(device)
    if tensor.device.type != "cpu":
        return tensor.to(device)
    if device.type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


def cat_to_device(tensors, device, dim=0):
    """
    ``torch.cat(tensors, dim)`` on ``device``: concatenated on the host and copied once
    (:func:`to_device`) when they all are on the host, else each moved, then concatenated.
    """
    if all(t.device.type == "cpu" for t in tensors):
        return to_device(torch.cat(tensors, dim), device)
    return torch.cat([to_device(t, device) for t in tensors], dim)


@functools.lru_cache(maxsize=256)
def _constant(values, dtype, device):
    return to_device(torch.tensor(values, dtype=dtype), device)


def device_constant(values, dtype, device):
    """
    A tensor of ``values`` (numbers or nested tuples of them) on ``device``, made once per
    (values, dtype, device) and then reused: later calls cost no host-to-device copy. For
    values fixed by the model (a stride, a window size, the skeleton), not for values that
    change with the inputs (image sizes): ``to_device(torch.tensor(values), device)`` costs
    one non-blocking copy, and the cache would churn. The tensor is shared between callers, so
    it must not be modified in place.
    """
    if torch.compiler.is_compiling():
        return torch.tensor(values, dtype=dtype, device=device)  # a constant of the compiled graph
    return _constant(values, dtype, torch.device(device))


def to_network_layout(tensor, channels_last=False):
    """
    A (N, C, H, W) ``tensor`` in the memory layout Pose2Seg's networks (backbone, head) run in:
    channels-last on the CPU always, and on CUDA where ``channels_last``
    (MODEL.POSE2SEG.CHANNELS_LAST) asks; elsewhere as it is. On the CPU the ResNet-FPN runs
    about 10% faster channels-last and the head about 20% (its bilinear upsampling of the
    1024-channel map about 9x, benchmarks/README.md), and the feature maps come out in the
    layout affine_align gathers from. No copy where the tensor already is so.
    """
    if tensor.device.type == "cpu" or channels_last:
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor
