"""
Timed calls: the whole inference split into backbone, head and the rest by forward hooks, a
Pose2Seg head alone, and training iterations.
"""
import contextlib
import statistics
import time

import torch
from detectron2.utils.events import EventStorage

from .inputs import make_input
from .models import build, build_cfg, is_pose2seg

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def sync(device):
    """Wait for ``device`` (CUDA), then the wall clock in seconds."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter()


def autocast_context(device, autocast=None):
    """``torch.autocast`` in ``autocast`` ("bf16" or "fp16") around a whole call; with None or
    "", nothing."""
    if not autocast:
        return contextlib.nullcontext()
    return torch.autocast(str(device).split(":")[0], dtype=AUTOCAST_DTYPES[autocast])


def stage_modules(model, name):
    """The modules whose forward time is the ``backbone`` and ``head`` columns."""
    if is_pose2seg(name):
        return {"backbone": [model.backbone], "head": [model.head]}
    return {"backbone": [model.backbone], "head": [model.proposal_generator, model.roi_heads]}


class StageTimer:
    """Wall time spent inside the forward of groups of submodules, by forward (pre-)hooks that
    synchronize the device."""

    def __init__(self, groups, device):
        self.device = device
        self.seconds = dict.fromkeys(groups, 0.0)
        self._handles = []
        for stage, modules in groups.items():
            for module in modules:
                self._handles.append(module.register_forward_pre_hook(self._start))
                self._handles.append(module.register_forward_hook(self._stop(stage)))
        self._started = {}

    def _start(self, module, args):
        self._started[id(module)] = sync(self.device)

    def _stop(self, stage):
        def hook(module, args, output):
            self.seconds[stage] += sync(self.device) - self._started.pop(id(module))

        return hook

    def reset(self):
        self.seconds = dict.fromkeys(self.seconds, 0.0)

    def collect(self):
        """The seconds per stage of the last call (after the device is synchronized)."""
        return dict(self.seconds)

    def remove(self):
        for handle in self._handles:
            handle.remove()


class EventStageTimer(StageTimer):
    """Stream time inside groups of submodules on CUDA: CUDA events recorded by the hooks (no
    synchronization), read after the call."""

    def _start(self, module, args):
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        self._started[id(module)] = event

    def _stop(self, stage):
        def hook(module, args, output):
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._pairs.append((stage, self._started.pop(id(module)), end))

        return hook

    def reset(self):
        super().reset()
        self._pairs = []

    def collect(self):
        torch.cuda.synchronize()
        for stage, start, end in self._pairs:
            self.seconds[stage] += start.elapsed_time(end) / 1000.0
        self._pairs = []
        return dict(self.seconds)


def time_inference(model, name, inputs, repeats, device, warmup=1, split="sync", autocast=None):
    """
    Median of ``repeats`` timed calls after ``warmup`` warm-up calls, each under
    ``torch.autocast`` in ``autocast`` if given. Returns dict with ``ms``, ``backbone_ms``,
    ``head_ms``, ``else_ms`` (the split of the median call), ``all_ms`` (every call) and
    ``dets`` (instances returned). ``split``: "sync" (hooks synchronize) or "events" (CUDA
    events, see :class:`EventStageTimer`).
    """
    timer = (EventStageTimer if split == "events" else StageTimer)(stage_modules(model, name), device)
    timer.reset()
    try:
        with torch.no_grad(), autocast_context(device, autocast):
            for _ in range(max(1, warmup)):
                outputs = model([inputs])
            runs = []
            for _ in range(repeats):
                timer.reset()
                start = sync(device)
                model([inputs])
                total = sync(device) - start
                runs.append((total, timer.collect()))
    finally:
        timer.remove()
    order = sorted(range(len(runs)), key=lambda i: runs[i][0])
    total, stages = runs[order[(len(runs) - 1) // 2]]
    return {
        "ms": 1000 * total,
        "backbone_ms": 1000 * stages["backbone"],
        "head_ms": 1000 * stages["head"],
        "else_ms": 1000 * (total - stages["backbone"] - stages["head"]),
        "all_ms": [round(1000 * r[0], 2) for r in runs],
        "dets": len(outputs[0]["instances"]),
    }


def head_summary(model, device, window_size, batch=10, repeats=3):
    """Params, fvcore GMACs per person and ms per person of a Pose2Seg model's head alone, on a
    batch of ``batch`` windows."""
    from fvcore.nn import FlopCountAnalysis

    in_channels = model.head.stem.in_channels
    x = torch.randn(batch, in_channels, *window_size, device=device)
    with torch.no_grad():
        analysis = FlopCountAnalysis(model.head, x[:1])
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        gmacs = analysis.total() / 1e9
        model.head(x)
        times = []
        for _ in range(repeats):
            start = sync(device)
            model.head(x)
            times.append(sync(device) - start)
    return {
        "params_m": sum(p.numel() for p in model.head.parameters()) / 1e6,
        "gmacs_per_person": gmacs,
        "ms_per_person": 1000 * statistics.median(times) / batch,
        "in_channels": in_channels,
        "window": list(window_size),
    }


def training_speed(name, device, short_side, persons, iters, opts, seed=0):
    """Iterations per second of forward + losses + backward + optimizer step on one fixed
    batch of 2 images, after one warm-up iteration."""
    from pose2seg_d2.engine import build_adam_or_sgd_optimizer

    cfg = build_cfg(name, device, opts)
    model = build(name, device, opts, seed, train=True)
    optimizer = build_adam_or_sgd_optimizer(cfg, model)
    batch = [make_input(short_side, persons, seed=seed + k, with_targets=True) for k in range(2)]
    losses = None

    def step():
        nonlocal losses
        loss_dict = model(batch)
        loss = sum(loss_dict.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses = float(loss.detach())

    with EventStorage():  # Detectron2's heads log to it in training
        step()
        start = sync(device)
        for _ in range(iters):
            step()
        seconds = sync(device) - start
    return {"it_per_s": iters / seconds, "s_per_it": seconds / iters, "loss": losses}
