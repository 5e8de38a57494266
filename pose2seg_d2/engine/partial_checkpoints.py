"""
Checkpoints that hold part of a model over another checkpoint: a head trained on a frozen,
shipped backbone is saved alone, with the path of the checkpoint that gives the rest
(``base_weights``). Loading one through :class:`~.checkpoint.AtomicDetectionCheckpointer`
loads the base first, then the part over it.
"""
import hashlib
import json
import os

import torch

__all__ = ["BASE_WEIGHTS_KEY", "save_partial_checkpoint", "base_weights_of", "file_sha256", "shipped_training_record"]

# the key of a partial checkpoint that names its base checkpoint (a path or URL Detectron2's
# checkpointer loads, "pose2seg_d2://..." for a shipped one)
BASE_WEIGHTS_KEY = "base_weights"


def file_sha256(path):
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_partial_checkpoint(path, state_dict, base_weights, exclude_prefixes=("backbone.",)):
    """
    Save the tensors of ``state_dict`` whose names start with none of ``exclude_prefixes``, in
    Detectron2's checkpoint layout (``{"model": ...}``), with ``base_weights`` recorded.

    Args:
        path (str): the .pth file to write.
        state_dict (dict[str, Tensor]): a model's weights (or a checkpoint's ``"model"``).
        base_weights (str): the checkpoint that holds the weights left out.
        exclude_prefixes (sequence[str]): what the base checkpoint gives, e.g. the backbone.

    Returns:
        list[str]: the names saved.

    Raises:
        ValueError: nothing is left to save, or ``base_weights`` is empty.
    """
    if not base_weights:
        raise ValueError(f"{path}: a partial checkpoint needs the base checkpoint it goes over (base_weights)")
    kept = {name: t.detach().cpu() for name, t in state_dict.items() if not name.startswith(tuple(exclude_prefixes))}
    if not kept:
        raise ValueError(f"{path}: every weight starts with one of {list(exclude_prefixes)}; nothing is left to save")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({"model": kept, BASE_WEIGHTS_KEY: base_weights}, path)
    return sorted(kept)


def base_weights_of(local_path):
    """
    The base checkpoint a partial checkpoint names; None for any other file (a checkpoint
    that is not a torch file, or holds no :data:`BASE_WEIGHTS_KEY`).
    """
    if not str(local_path).endswith(".pth") or not os.path.isfile(local_path):
        return None
    checkpoint = torch.load(local_path, map_location="cpu", weights_only=False, mmap=True)
    base = checkpoint.get(BASE_WEIGHTS_KEY) if isinstance(checkpoint, dict) else None
    return str(base) if base else None


def shipped_training_record(path):
    """
    The JSON record written beside a checkpoint (same name, ``.json``: how it was trained), or
    None without one.

    Args:
        path (str): a local path or one Detectron2's PathManager resolves (``pose2seg_d2://``).

    Returns:
        dict or None: the record, with at least ``command``, ``iterations`` and ``train_seconds``.

    Raises:
        ValueError: the record lacks one of those.
    """
    from detectron2.utils.file_io import PathManager

    try:
        local = PathManager.get_local_path(path)
    except Exception:  # noqa: BLE001 (a URL that cannot be fetched has no record here)
        return None
    record_path = os.path.splitext(local)[0] + ".json"
    if not os.path.isfile(record_path):
        return None
    with open(record_path) as f:
        record = json.load(f)
    missing = [k for k in ("command", "iterations", "train_seconds") if k not in record]
    if missing:
        raise ValueError(f"{record_path}: the training record lacks {missing}")
    return record
