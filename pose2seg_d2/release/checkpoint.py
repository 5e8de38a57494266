"""
The release's checkpoint (a ``torch.save``d state dict of its model) as a Detectron2 checkpoint of
:class:`pose2seg_d2.release.ReleasePose2Seg` (``configs/pose2seg_R_50_FPN_release.yaml``).

Release names -> ours:

- ``backbone.conv1`` / ``bn1`` -> ``backbone.bottom_up.stem.conv1`` / ``.conv1.norm``;
  ``backbone.layer{L}.{B}.conv{k}`` / ``bn{k}`` (k = 1..3) -> ``backbone.bottom_up.res{L+1}.{B}.conv{k}``
  / ``.conv{k}.norm``; ``conv4`` / ``bn4`` (the projection shortcut) -> ``shortcut`` / ``shortcut.norm``
  (Detectron2's ResNet);
- ``backbone.fpn_c{i}p{i}`` (i = 1..4) -> ``backbone.fpn_lateral{i+1}``; ``backbone.fpn_p1`` ->
  ``backbone.fpn_output2``; ``backbone.fpn_p2..4`` are left out (the release computes those
  levels but reads only p1);
- ``segnet.`` (older files: ``pose2seg.seg_branch.``, which the release's ``init()`` renames)
  ``conv1`` / ``bn1`` -> ``head.stem`` / ``head.stem_norm``; ``layer1.{i}`` -> ``head.units.{i}`` and
  ``decoder1.0`` -> ``head.decoder``, inside which ``bn{k}`` -> ``norm{k}`` and ``downsample`` ->
  ``shortcut``; ``pred_small`` -> ``head.predictor``;
- ``num_batches_tracked`` (a BatchNorm counter, unused in eval mode) is left out everywhere.
"""
import re

import torch

__all__ = ["ReleaseCheckpointError", "release_to_pose2seg_key", "convert_release_state_dict", "load_release_state_dict"]


class ReleaseCheckpointError(ValueError):
    """A release checkpoint that cannot be converted; the message names the keys."""


_BN = r"(weight|bias|running_mean|running_var)"
_CONV = r"(weight|bias)"
# a residual unit of the release's SegModule: layer1.{i} or decoder1.0
_UNIT = r"(layer1\.\d+|decoder1\.0)"


def _res(m):
    """backbone.layer{L}.{B} -> backbone.bottom_up.res{L+1}.{B}"""
    return f"backbone.bottom_up.res{int(m[1]) + 1}.{m[2]}"


def _unit(m):
    """segnet.layer1.{i} -> head.units.{i}; segnet.decoder1.0 -> head.decoder"""
    return "head.decoder" if m[1] == "decoder1.0" else "head.units." + m[1].split(".")[1]


# (pattern, function of the match giving our name, or None to leave the key out); first match wins
_RULES = [
    (r"^backbone\.conv1\.weight$", lambda m: "backbone.bottom_up.stem.conv1.weight"),
    (rf"^backbone\.bn1\.{_BN}$", lambda m: f"backbone.bottom_up.stem.conv1.norm.{m[1]}"),
    (r"^backbone\.layer([1-4])\.(\d+)\.conv([1-3])\.weight$", lambda m: f"{_res(m)}.conv{m[3]}.weight"),
    (rf"^backbone\.layer([1-4])\.(\d+)\.bn([1-3])\.{_BN}$", lambda m: f"{_res(m)}.conv{m[3]}.norm.{m[4]}"),
    (r"^backbone\.layer([1-4])\.(\d+)\.conv4\.weight$", lambda m: f"{_res(m)}.shortcut.weight"),
    (rf"^backbone\.layer([1-4])\.(\d+)\.bn4\.{_BN}$", lambda m: f"{_res(m)}.shortcut.norm.{m[3]}"),
    (rf"^backbone\.fpn_c([1-4])p\1\.{_CONV}$", lambda m: f"backbone.fpn_lateral{int(m[1]) + 1}.{m[2]}"),
    (rf"^backbone\.fpn_p1\.{_CONV}$", lambda m: f"backbone.fpn_output2.{m[1]}"),
    (rf"^backbone\.fpn_p[2-4]\.{_CONV}$", None),
    (rf"^segnet\.conv1\.{_CONV}$", lambda m: f"head.stem.{m[1]}"),
    (rf"^segnet\.bn1\.{_BN}$", lambda m: f"head.stem_norm.{m[1]}"),
    (rf"^segnet\.pred_small\.{_CONV}$", lambda m: f"head.predictor.{m[1]}"),
    (rf"^segnet\.{_UNIT}\.conv([1-3])\.{_CONV}$", lambda m: f"{_unit(m)}.conv{m[2]}.{m[3]}"),
    (rf"^segnet\.{_UNIT}\.bn([1-3])\.{_BN}$", lambda m: f"{_unit(m)}.norm{m[2]}.{m[3]}"),
    (rf"^segnet\.{_UNIT}\.downsample\.0\.{_CONV}$", lambda m: f"{_unit(m)}.shortcut.0.{m[2]}"),
    (rf"^segnet\.{_UNIT}\.downsample\.1\.{_BN}$", lambda m: f"{_unit(m)}.shortcut.1.{m[2]}"),
]
_RULES = [(re.compile(pattern), rename) for pattern, rename in _RULES]


def release_to_pose2seg_key(key):
    """
    The name of a release state-dict entry in :class:`ReleasePose2Seg` (module docstring).

    Returns:
        str, or None for an entry that is left out (``num_batches_tracked``, FPN levels p2-p4).

    Raises:
        KeyError: a key the release's model does not have.
    """
    if key.startswith("pose2seg.seg_branch."):
        key = "segnet." + key[len("pose2seg.seg_branch.") :]
    if key.endswith(".num_batches_tracked"):
        release_to_pose2seg_key(key[: -len("num_batches_tracked")] + "running_mean")  # a BatchNorm of the release?
        return None
    for pattern, rename in _RULES:
        match = pattern.match(key)
        if match is not None:
            return None if rename is None else rename(match)
    raise KeyError(key)


def convert_release_state_dict(state_dict, expected=None):
    """
    Rename a release state dict for :class:`ReleasePose2Seg`.

    Args:
        state_dict (dict[str, Tensor]): the release's (``backbone.*`` and ``segnet.*``, or the
            older ``pose2seg.seg_branch.*``).
        expected (dict[str, Tensor] or None): the target model's ``state_dict()``; when given,
            every one of its entries must be produced, with its shape.

    Returns:
        dict[str, Tensor]: float32 CPU tensors under :class:`ReleasePose2Seg`'s names.

    Raises:
        ReleaseCheckpointError: naming the keys the release model does not have (unknown),
            the ``expected`` keys nothing maps to (missing), and the shapes that differ.
    """
    converted, unknown = {}, []
    for key, value in state_dict.items():
        try:
            name = release_to_pose2seg_key(key)
        except KeyError:
            unknown.append(key)
            continue
        if name is None:
            continue
        if not isinstance(value, torch.Tensor):
            raise ReleaseCheckpointError(f"entry {key!r} is a {type(value).__name__}, not a tensor")
        if name in converted:
            raise ReleaseCheckpointError(f"entry {key!r} maps to {name!r}, which another entry already gave")
        converted[name] = value.detach().to("cpu", torch.float32).contiguous()
    problems = []
    if unknown:
        problems.append(f"{len(unknown)} unknown key(s), not of the release's model: {sorted(unknown)}")
    if expected is not None:
        missing = sorted(set(expected) - set(converted))
        if missing:
            problems.append(f"{len(missing)} key(s) of the model missing from the checkpoint: {missing}")
        extra = sorted(set(converted) - set(expected))
        if extra:
            problems.append(f"{len(extra)} converted key(s) the model does not have: {extra}")
        shapes = [
            f"{name}: checkpoint {tuple(converted[name].shape)}, model {tuple(expected[name].shape)}"
            for name in sorted(set(converted) & set(expected))
            if converted[name].shape != expected[name].shape
        ]
        if shapes:
            hint = ""
            stem = converted.get("head.stem.weight")
            if stem is not None and "head.stem.weight" in expected and stem.shape[1] != expected["head.stem.weight"].shape[1]:
                hint = (
                    f" (the checkpoint's SegModule takes {stem.shape[1]} input channels; a release model "
                    "trained without skeleton features takes 256: add MODEL.POSE2SEG.SKELETON NoSkeletonFeatures)"
                )
            problems.append(f"{len(shapes)} shape mismatch(es): {shapes}{hint}")
    if problems:
        raise ReleaseCheckpointError("; ".join(problems))
    return converted


def load_release_state_dict(path):
    """
    Read a release checkpoint (``torch.save(model.state_dict())``, any device) onto the CPU.

    Raises:
        ReleaseCheckpointError: the file cannot be read as a state dict.
    """
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise ReleaseCheckpointError(f"{path}: no such file") from e
    except Exception as e:  # noqa: BLE001 (pickle and zip errors of every kind)
        raise ReleaseCheckpointError(f"{path}: cannot be read as a PyTorch state dict ({type(e).__name__}: {e})") from e
    if not isinstance(state_dict, dict) or not all(isinstance(k, str) for k in state_dict):
        raise ReleaseCheckpointError(f"{path}: expected a state dict (names -> tensors), got {type(state_dict).__name__}")
    return state_dict
