#!/usr/bin/env python
"""
Pose2Seg R50-FPN (release-width and light SegModule, and the release's own test-time model)
against Detectron2's Mask R-CNN R50-FPN, side by side on the same synthetic images and persons.

    python benchmarks/bench_inference.py [--device cpu|cuda] [--sizes 512 800]
        [--persons 1 5 10 20] [--repeats 3]
        [--models pose2seg pose2seg_light pose2seg_release mask_rcnn]
        [--train] [--profile] [--quick] [--output results.json] [--opts KEY VALUE ...]

Inputs: one random-noise BGR image per setting, of shortest side S and aspect 4:3 (512x683,
800x1067), with N persons whose keypoints are the packaged pose templates, scaled (15-60% of S
tall), rotated (+-17 degrees), shifted and jittered; about 1 keypoint in 7 unlabeled, 1 in 5
labeled occluded (v=1). The images are given at their size (no resizing), with ``height`` and
``width`` equal to it, so the outputs are at the image size too. Random weights
(MODEL.WEIGHTS ""), with the backbones' FrozenBatchNorm statistics set from one image so that
activations stay finite (see ``calibrate_frozen_batchnorm``); the Pose2Seg configs use their
own templates (the release's 3 COCO templates, shipped with the package).

``pose2seg_release`` is ``configs/pose2seg_R_50_FPN_release.yaml`` (ReleasePose2Seg, what the
release computes at test time): whatever the image size, its backbone sees the image warped
into 512 x 512, and its head is the release-width SegModule with two classes.

Pose2Seg gets the N keypoint sets as ``instances.gt_keypoints`` (KEYPOINT_SOURCE "gt"). Mask
R-CNN with random weights would keep no detection; it runs with ROI_HEADS.SCORE_THRESH_TEST=0 and
TEST.DETECTIONS_PER_IMAGE=N, so it keeps N detections (column ``dets``) and its mask head and
mask pasting handle as many persons as Pose2Seg. Its RPN and box head do their usual work.

What is measured, per model, image size and person count (batch of one image):

- ``ms/img``: median over ``--repeats`` timed calls of ``model([input])`` in eval mode under
  ``torch.no_grad()``, after ``--warmup`` untimed calls (default 1); preprocessing (normalization, padding) and
  postprocessing (masks pasted at the image size, boxes, Instances) included, data loading not.
- ``backbone``, ``head``, ``else``: the same timed calls split by forward hooks on
  ``model.backbone`` and the head (Pose2Seg: ``model.head``, the SegModule; Mask R-CNN:
  ``model.proposal_generator`` + ``model.roi_heads``); ``else`` = total - backbone - head
  (Pose2Seg: keypoint transforms, template fit, skeleton features, affine-align, warping the
  masks back, boxes from masks, Instances). The split shown is that of the median call.
- ``GFLOPs``: fvcore's count over a traced inference (one multiply-add = one flop, so these are
  GMACs), through ``detectron2.utils.analysis.FlopCountAnalysis``; ops fvcore cannot count
  (gathers, sampling, NMS, element-wise ops Detectron2 ignores) are listed under the table.
- ``peak MB``: on the CPU, how much the resident set grows during one inference of a fresh
  process in which the model is already built (Linux VmHWM after the call minus VmRSS before
  it, the high-water mark reset by /proc/self/clear_refs): activations, workspaces and the
  allocator's pages, not the weights or the libraries. On CUDA,
  ``torch.cuda.max_memory_allocated()`` minus what is allocated before the call.
- ``train it/s`` (``--train``): training iterations per second (forward, losses, backward,
  optimizer step; no data loading) on one fixed batch of 2 images with ``--train-persons``
  persons each, after one warm-up iteration.

``--profile`` adds torch.profiler's op table of one Pose2Seg inference per size with
``--profile-persons`` persons.

On CUDA (``--device cuda``): every timed call is bracketed by ``torch.cuda.synchronize()``,
cuDNN's autotuner is on (``--no-cudnn-benchmark`` turns it off; the warm-up calls tune it), and
the split is measured with CUDA events recorded by the hooks (``--split events``, the default
there): ``backbone`` and ``head`` are the stream time between the events before and after the
module, so the hooks add no synchronization; ``--split sync`` synchronizes in the hooks instead
(the CPU default).

``--count-launches`` adds the columns ``syncs`` and ``launches`` for one call per setting: on
CUDA, torch.profiler's count of ``cudaStreamSynchronize``/``cudaDeviceSynchronize``/
``cudaEventSynchronize`` and blocking ``cudaMemcpy`` calls (host synchronizations) and of kernel
launches; on the CPU, what tests/sync_counter.py counts: the synchronizations the call would
make on CUDA and its calls on device data (about one kernel each).

``--variant NAME KEY VALUE ...`` (repeatable) runs every model once more per variant with
these config overrides on top of ``--opts`` (e.g. ``--variant bf16 MODEL.POSE2SEG.AUTOCAST bf16``);
the pseudo-option ``BENCH.AUTOCAST bf16|fp16`` wraps the whole model call in ``torch.autocast``
instead (for any model, Mask R-CNN included). ``--package-root DIR`` benchmarks the package
and configs of another checkout (e.g. the commit before a change) with this script.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import cv2
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def _package_root(argv):
    """--package-root, read before the imports below (they import that checkout's package)."""
    for i, arg in enumerate(argv):
        if arg == "--package-root" and i + 1 < len(argv):
            return os.path.abspath(argv[i + 1])
        if arg.startswith("--package-root="):
            return os.path.abspath(arg.split("=", 1)[1])
    return os.path.abspath(os.path.join(HERE, ".."))


ROOT = _package_root(sys.argv)
sys.path.insert(0, ROOT)

from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402
from detectron2.structures import BitMasks, Boxes, Instances, Keypoints  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

import pose2seg_d2  # noqa: E402,F401  (registers the model)
from pose2seg_d2.config import add_pose2seg_config  # noqa: E402
from pose2seg_d2.pose import COCO_PERSON_LIMBS, PoseTemplates  # noqa: E402
from pose2seg_d2.utils import default_templates_file  # noqa: E402

# name -> (config file, label)
MODELS = {
    "pose2seg": ("configs/pose2seg_R_50_FPN_coco_persons.yaml", "Pose2Seg"),
    "pose2seg_light": ("configs/pose2seg_R_50_FPN_light_head_coco_persons.yaml", "Pose2Seg light head"),
    "pose2seg_release": ("configs/pose2seg_R_50_FPN_release.yaml", "Pose2Seg release model"),
    "mask_rcnn": ("configs/mask_rcnn_R_50_FPN_coco_persons.yaml", "Mask R-CNN"),
}
BASELINE = "mask_rcnn"
ASPECT = 4.0 / 3.0
TABLE_COLUMNS = (
    "size", "persons", "model", "ms/img", "vs Mask R-CNN", "GFLOPs", "peak MB", "dets",
    "backbone ms", "head ms", "else ms", "else %",
)  # fmt: skip


# ---------------------------------------------------------------------------- models and data
def is_pose2seg(name):
    return name != BASELINE


def split_bench_options(opts):
    """(config overrides, {"AUTOCAST": ...}): the BENCH.* pseudo-options taken out."""
    opts, bench = list(opts), {}
    for i in range(0, len(opts) - 1, 2):
        if str(opts[i]).startswith("BENCH."):
            bench[opts[i][len("BENCH."):]] = opts[i + 1]
    kept = []
    for i in range(0, len(opts) - 1, 2):
        if not str(opts[i]).startswith("BENCH."):
            kept += opts[i : i + 2]
    return kept, bench


def build_cfg(name, device, opts=()):
    """The model's config with random weights on ``device``, then ``opts``."""
    opts, _ = split_bench_options(opts)
    cfg = get_cfg()
    add_pose2seg_config(cfg)
    cfg.merge_from_file(os.path.join(ROOT, MODELS[name][0]))
    cfg.MODEL.DEVICE = device
    cfg.MODEL.WEIGHTS = ""
    if not is_pose2seg(name):
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    cfg.merge_from_list(list(opts))
    return cfg


def calibrate_frozen_batchnorm(model, inputs):
    """
    Random weights behind FrozenBatchNorm (whose statistics are 0 and 1 until pretrained
    weights are loaded) let activations grow block after block, until Mask R-CNN's boxes
    overflow and none survives. Set every FrozenBatchNorm's statistics to those of its input on
    ``inputs`` (one forward pass of the backbone), as pretrained weights would roughly have them.
    The amount of computation does not change.
    """
    from detectron2.layers import FrozenBatchNorm2d

    def set_statistics(module, args):
        x = args[0].detach()
        module.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        module.running_var.copy_(x.var(dim=(0, 2, 3)))

    handles = [m.register_forward_pre_hook(set_statistics) for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    try:
        with torch.no_grad():
            model.backbone(model.preprocess_image([inputs]).tensor)
    finally:
        for handle in handles:
            handle.remove()
    return len(handles)


def build(name, device, opts=(), seed=0, train=False):
    """A model in eval (or training) mode, its weights drawn from ``seed`` and its
    FrozenBatchNorm statistics calibrated on a synthetic image (see
    :func:`calibrate_frozen_batchnorm`)."""
    torch.manual_seed(seed)
    model = build_model(build_cfg(name, device, opts))
    calibrate_frozen_batchnorm(model, make_input(256, 1, seed=seed))
    return model.train(train)


def set_detections(model, name, persons):
    """Mask R-CNN: keep exactly ``persons`` detections (TEST.DETECTIONS_PER_IMAGE)."""
    if not is_pose2seg(name):
        model.roi_heads.box_predictor.test_topk_per_image = persons


def image_size(short_side):
    """(height, width) of a landscape 4:3 image."""
    return short_side, int(round(short_side * ASPECT))


def make_persons(num, height, width, rng, templates=None):
    """
    ``num`` plausible skeletons: (num, 17, 3) float32 keypoints (x, y, v) in the image's
    continuous coordinates, and (num, height, width) bool masks drawn around them.
    """
    if templates is None:
        templates = PoseTemplates.load(default_templates_file())
    base = templates.templates.numpy()
    keypoints = np.zeros((num, 17, 3), np.float32)
    masks = np.zeros((num, height, width), bool)
    short = min(height, width)
    for i in range(num):
        t = base[rng.integers(len(base))]
        tall = rng.uniform(0.15, 0.6) * short
        angle = rng.uniform(-0.3, 0.3)
        c, s = np.cos(angle) * tall, np.sin(angle) * tall
        xy = (t[:, :2] - 0.5) @ np.array([[c, s], [-s, c]])
        center = rng.uniform([tall / 2, tall / 2], [width - tall / 2, height - tall / 2])
        xy = xy + center + rng.normal(0, 0.01 * tall, (17, 2))
        v = np.where(rng.random(17) < 0.2, 1, 2)
        v[(t[:, 2] <= 0) | (rng.random(17) < 0.15)] = 0
        keypoints[i, :, :2] = np.where(v[:, None] > 0, xy, 0)
        keypoints[i, :, 2] = v
        canvas = np.zeros((height, width), np.uint8)
        thick = max(2, int(tall / 12))
        for a, b in COCO_PERSON_LIMBS:
            if t[a, 2] > 0 and t[b, 2] > 0:
                cv2.line(canvas, tuple(int(q) for q in xy[a]), tuple(int(q) for q in xy[b]), 1, thick)
        masks[i] = canvas > 0
    return keypoints, masks


def make_input(short_side, persons, seed=0, with_targets=False):
    """One Detectron2 input dict: uint8 BGR noise image, ``instances`` with ``gt_keypoints``
    (and, for training, ``gt_masks``, ``gt_boxes``, ``gt_classes``)."""
    rng = np.random.default_rng(seed)
    height, width = image_size(short_side)
    image = torch.from_numpy(rng.integers(0, 256, (3, height, width), dtype=np.uint8))
    keypoints, masks = make_persons(persons, height, width, rng)
    instances = Instances((height, width))
    instances.gt_keypoints = Keypoints(torch.from_numpy(keypoints))
    if with_targets:
        bit = BitMasks(torch.from_numpy(masks))
        instances.gt_masks = bit
        instances.gt_boxes = Boxes(bit.get_bounding_boxes().tensor)
        instances.gt_classes = torch.zeros(persons, dtype=torch.long)
    return {"image": image, "height": height, "width": width, "instances": instances}


# ---------------------------------------------------------------------------- measurements
def sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter()


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


def autocast_context(device, bench_options):
    """torch.autocast around the whole call for BENCH.AUTOCAST, else nothing."""
    import contextlib

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(bench_options.get("AUTOCAST", ""))
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(str(device).split(":")[0], dtype=dtype)


def time_inference(model, name, inputs, repeats, device, warmup=1, split="sync", bench_options=None):
    """
    Median of ``repeats`` timed calls after ``warmup`` warm-up calls. Returns dict with ``ms``,
    ``backbone_ms``, ``head_ms``, ``else_ms`` (the split of the median call), ``all_ms`` (every
    call) and ``dets`` (instances returned). ``split``: "sync" (hooks synchronize) or "events"
    (CUDA events, see :class:`EventStageTimer`).
    """
    timer = (EventStageTimer if split == "events" else StageTimer)(stage_modules(model, name), device)
    timer.reset()
    try:
        with torch.no_grad(), autocast_context(device, bench_options or {}):
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


def _sync_counter_module():
    """tests/sync_counter.py of this script's checkout (not of --package-root's)."""
    import importlib.util

    path = os.path.join(HERE, "..", "tests", "sync_counter.py")
    spec = importlib.util.spec_from_file_location("bench_sync_counter", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def counter_host_tensors(counter_module, model, inputs):
    """What the sync counter must take as host data in a call of ``model`` on ``inputs``: the
    inputs' tensors and the pose templates, which PoseTemplates keeps on the host."""
    host = counter_module.host_tensors_of(inputs)
    templates = getattr(getattr(model, "aligner", None), "templates", None)
    if templates is not None:
        host += [templates.templates, templates.raw_templates]
    return host


# CUDA runtime / driver calls that make the host wait for the device
CUDA_SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy", "cuCtxSynchronize")


def count_launches(model, inputs, device, bench_options=None):
    """
    Host synchronizations and kernel launches of one call (after the warm-up calls made by
    :func:`time_inference`): on CUDA counted by torch.profiler, on the CPU by
    tests/sync_counter.py (the synchronizations the call would make on CUDA, and its calls on
    device data). Returns dict with ``syncs``, ``launches`` and ``sync_calls`` (name -> count).
    """
    if str(device).startswith("cuda"):
        from torch.profiler import ProfilerActivity, profile

        with torch.no_grad(), autocast_context(device, bench_options or {}):
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                model([inputs])
            torch.cuda.synchronize()
        syncs, launches = {}, 0
        for event in prof.events():
            if event.name in CUDA_SYNC_CALLS:
                syncs[event.name] = syncs.get(event.name, 0) + 1
            elif "LaunchKernel" in event.name or "LaunchCooperativeKernel" in event.name:
                launches += 1
        return {"syncs": sum(syncs.values()), "launches": launches, "sync_calls": syncs}
    if getattr(model, "compile_mode", ""):
        # the counter is a TorchFunctionMode: it sees the eager ops, not a compiled graph's kernels
        return {"syncs": "n/a", "launches": "n/a", "sync_calls": {}}
    counter_module = _sync_counter_module()
    with torch.no_grad(), counter_module.HostSyncCounter(counter_host_tensors(counter_module, model, inputs)) as counter:
        model([inputs])
    sync_calls = {f"{kind} {call}": n for (kind, call), n in counter.syncs.items()}
    return {"syncs": counter.total_syncs, "launches": counter.total_device_calls, "sync_calls": sync_calls}


def count_flops(model, inputs):
    """fvcore's count of one traced inference: total and per-module GFLOPs (= GMACs), and the
    ops it could not count with how often they occur."""
    import logging

    from detectron2.utils.analysis import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with torch.no_grad():
        analysis = FlopCountAnalysis(model, [inputs])
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        total = analysis.total()
        by_module = analysis.by_module()
        unsupported = dict(analysis.unsupported_ops())
    head = [k for k in ("model.head", "model.proposal_generator", "model.roi_heads") if k in by_module]
    return {
        "gflops": total / 1e9,
        "backbone_gflops": by_module.get("model.backbone", 0) / 1e9,
        "head_gflops": sum(by_module[k] for k in head) / 1e9,
        "unsupported_ops": unsupported,
    }


def _rss_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_probe(spec):
    """
    Run in a fresh process: build the model, then one inference; returns the growth of the
    resident set over that inference (VmHWM after - VmRSS before) in MB, and both values.
    """
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    model = build(spec["model"], "cpu", spec["opts"])
    set_detections(model, spec["model"], spec["persons"])
    inputs = make_input(spec["size"], spec["persons"], seed=spec["seed"])
    before = _rss_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident set
    with torch.no_grad():
        model([inputs])
    peak = _rss_kb("VmHWM")
    return {"peak_mb": (peak - before) / 1024, "rss_before_mb": before / 1024, "hwm_mb": peak / 1024}


def measure_memory(name, size, persons, seed, opts, device, model=None, inputs=None):
    """Peak memory of one inference in MB (see the module docstring); None if not measurable."""
    if str(device).startswith("cuda"):
        with torch.no_grad():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            model([inputs])
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - before) / 2**20
    if not os.path.exists("/proc/self/clear_refs"):
        return None
    spec = {
        "model": name, "size": size, "persons": persons, "seed": seed, "opts": list(opts),
        "threads": torch.get_num_threads(),
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--package-root", ROOT, "--memory-probe", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"]


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


def profile_once(model, inputs, rows=25):
    """torch.profiler's op table (self CPU time) of one inference."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available() and model.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with torch.no_grad():
        model([inputs])
        with profile(activities=activities, record_shapes=False) as prof:
            model([inputs])
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


# ---------------------------------------------------------------------------- reporting
def _fmt(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.{digits}f}"


def _fmt_flops(value):
    if value is None:
        return "-"
    return f"{value:.{0 if value >= 100 else 1 if value >= 10 else 2}f}"


def model_label(record):
    variant = record.get("variant")
    return MODELS[record["model"]][1] + (f" [{variant}]" if variant else "")


def markdown_table(records):
    counted = any("launches" in r for r in records)
    columns = TABLE_COLUMNS + (("syncs", "launches") if counted else ())
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in records:
        ratio = r.get("ratio")
        height, width = image_size(r["size"])
        cells = [
            f"{height}x{width}", str(r["persons"]), model_label(r), _fmt(r["ms"]),
            "-" if ratio is None else f"{ratio:.2f}x", _fmt_flops(r.get("gflops")), _fmt(r.get("peak_mb"), 0),
            str(r["dets"]), _fmt(r["backbone_ms"]), _fmt(r["head_ms"]), _fmt(r["else_ms"]),
            _fmt(100 * r["else_ms"] / r["ms"]),
        ]  # fmt: skip
        if counted:
            cells += [str(r.get("syncs", "-")), str(r.get("launches", "-"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 800], help="shortest sides (4:3 images)")
    parser.add_argument("--persons", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per setting")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before them")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--no-flops", action="store_true", help="skip fvcore's counts")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    parser.add_argument("--train", action="store_true", help="also measure training iterations per second")
    parser.add_argument("--train-size", type=int, default=None, help="shortest side (default: smallest of --sizes)")
    parser.add_argument("--train-persons", type=int, default=5, help="persons per training image")
    parser.add_argument("--train-iters", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="torch.profiler table of one Pose2Seg inference per size")
    parser.add_argument("--profile-persons", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="--sizes 512 --persons 1 10 --repeats 1 --no-memory")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--output", default=None, help="also write the results as JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=["sync", "events"], default=None,
                        help="how backbone/head time is measured (default: events on CUDA, sync on the CPU)")
    parser.add_argument("--no-cudnn-benchmark", action="store_true", help="CUDA: leave cuDNN's autotuner off")
    parser.add_argument("--count-launches", action="store_true", help="columns syncs and launches (one call each)")
    parser.add_argument("--variant", nargs="+", action="append", default=[], metavar=("NAME", "KEY VALUE"),
                        help="run every model again with these overrides (repeatable); BENCH.AUTOCAST bf16|fp16 "
                             "wraps the whole call in torch.autocast")
    parser.add_argument("--no-default-variant", action="store_true", help="run the --variant settings only")
    parser.add_argument("--package-root", default=None, help="benchmark this checkout's package and configs")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides for every model")
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.persons, args.repeats, args.no_memory = [512], [1, 10], 1, True
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available")
    if args.split is None:
        args.split = "events" if args.device == "cuda" else "sync"
    if args.split == "events" and args.device != "cuda":
        parser.error("--split events needs --device cuda")
    for variant in args.variant:
        if len(variant) % 2 != 1:
            parser.error(f"--variant {' '.join(variant)}: a name, then KEY VALUE pairs")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe is not None:
        print(json.dumps(memory_probe(json.loads(args.memory_probe))))
        return None
    device = args.device
    opts = args.opts
    started = time.perf_counter()
    env = {
        "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "load_average_before": os.getloadavg(),
    }
    print(
        f"# Inference benchmark: {device} ({env['device']}), torch {env['torch']}, {env['threads']} threads, "
        f"{env['cpu_count']} CPUs, load average {env['load_average_before'][0]:.2f} before"
    )
    print(
        "# Mask R-CNN: ROI_HEADS.SCORE_THRESH_TEST=0 and TEST.DETECTIONS_PER_IMAGE=persons (random weights), "
        "so it returns as many instances as Pose2Seg segments (column dets)."
    )
    if opts:
        print(f"# config overrides: {' '.join(opts)}")
    if ROOT != os.path.abspath(os.path.join(HERE, "..")):
        print(f"# package and configs of {ROOT}")
    if device == "cuda":
        torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
        print(f"# CUDA: cudnn.benchmark {torch.backends.cudnn.benchmark}, split by {args.split}")
    variants = ([] if args.no_default_variant else [("", [])]) + [(v[0], v[1:]) for v in args.variant]
    records, heads, unsupported = [], {}, {}
    for name in args.models:
        for variant, variant_opts in variants:
            model_opts = list(opts) + list(variant_opts)
            _, bench_options = split_bench_options(model_opts)
            model = build(name, device, model_opts, args.seed)
            if is_pose2seg(name) and not variant:
                heads[name] = head_summary(model, device, model.window_size, repeats=max(1, args.repeats))
            label = MODELS[name][1] + (f" [{variant}]" if variant else "")
            for size in args.sizes:
                for persons in args.persons:
                    set_detections(model, name, persons)
                    inputs = make_input(size, persons, seed=args.seed)
                    record = {"model": name, "variant": variant, "size": size, "persons": persons}
                    record.update(time_inference(
                        model, name, inputs, args.repeats, device, args.warmup, args.split, bench_options
                    ))  # fmt: skip
                    if args.count_launches:
                        record.update(count_launches(model, inputs, device, bench_options))
                    if not args.no_flops and not variant:
                        flops = count_flops(model, inputs)
                        for op, n in flops.pop("unsupported_ops").items():
                            unsupported.setdefault(name, {})[op] = n
                        record.update(flops)
                    if not args.no_memory:
                        record["peak_mb"] = measure_memory(
                            name, size, persons, args.seed, model_opts, device, model, inputs
                        )
                    records.append(record)
                    print(
                        f"#   {label:30s} {size}  {persons:3d} persons: {record['ms']:9.1f} ms "
                        f"(calls {record['all_ms']})" + (
                            f", {record['syncs']} syncs, {record['launches']} launches" if args.count_launches else ""
                        ),
                        flush=True,
                    )  # fmt: skip
            del model
    baseline = {(r["size"], r["persons"], r["variant"]): r["ms"] for r in records if r["model"] == BASELINE}
    for r in records:
        same = baseline.get((r["size"], r["persons"], r["variant"]), baseline.get((r["size"], r["persons"], "")))
        if r["model"] != BASELINE and same is not None:
            r["ratio"] = r["ms"] / same
    variant_names = [v for v, _ in variants]
    records.sort(key=lambda r: (
        r["size"], r["persons"], args.models.index(r["model"]), variant_names.index(r["variant"])
    ))  # fmt: skip

    short = [r for r in records if r["dets"] != r["persons"]]
    if short:
        print("WARNING: fewer instances than persons in " + ", ".join(
            f"{model_label(r)} {r['size']}/{r['persons']} ({r['dets']})" for r in short))
    print()
    print(f"## Inference, batch of 1 image, median of {args.repeats} calls after {args.warmup} warm-up ({device})")
    print()
    print(markdown_table(records))
    print()
    print(
        "vs Mask R-CNN: time ratio to Mask R-CNN in the same setting. GFLOPs: fvcore (1 multiply-add = 1). "
        "peak MB: " + ("CUDA max_memory_allocated growth." if device == "cuda" else
                       "resident-set growth over one inference in a fresh process (weights excluded).") +
        " Head: Pose2Seg's SegModule; Mask R-CNN's RPN + ROI heads. else = total - backbone - head"
        + (" (backbone and head: CUDA event time)." if args.split == "events" else ".")
        + (" syncs / launches: " + ("torch.profiler's count of host synchronizations and kernel launches in one call."
           if device == "cuda" else "counted on the CPU by tests/sync_counter.py: synchronizations the call would "
           "make on CUDA, and its calls on device data.") if args.count_launches else "")
    )  # fmt: skip
    for variant, variant_opts in variants:
        if variant:
            print(f"[{variant}]: {' '.join(variant_opts)}")
    for name, ops in unsupported.items():
        listed = ", ".join(f"{op} x{n}" for op, n in sorted(ops.items()))
        print(f"fvcore could not count ({MODELS[name][1]}): {listed}")

    if heads:
        print()
        print("## Pose2Seg heads (SegModule alone, a batch of 10 windows)")
        print()
        print("| head | window | in channels | params (M) | GMACs / person | ms / person |")
        print("|---|---|---|---|---|---|")
        for name, h in heads.items():
            print(
                f"| {MODELS[name][1]} | {h['window'][0]}x{h['window'][1]} | {h['in_channels']} | "
                f"{h['params_m']:.2f} | {h['gmacs_per_person']:.2f} | {h['ms_per_person']:.1f} |"
            )

    training = {}
    if args.train:
        train_size = args.train_size or min(args.sizes)
        print()
        print(
            f"## Training, batch of 2 images of {'x'.join(map(str, image_size(train_size)))} with "
            f"{args.train_persons} persons each, {args.train_iters} iterations after 1 warm-up ({device})"
        )
        print()
        print("| model | it/s | s/it | last loss |")
        print("|---|---|---|---|")
        for name in args.models:
            t = training_speed(name, device, train_size, args.train_persons, args.train_iters, opts, args.seed)
            training[name] = t
            print(f"| {MODELS[name][1]} | {t['it_per_s']:.3f} | {t['s_per_it']:.2f} | {t['loss']:.3g} |", flush=True)

    profiles = {}
    if args.profile:
        for name in [m for m in args.models if is_pose2seg(m)][:1]:
            model = build(name, device, opts, args.seed)
            for size in args.sizes:
                inputs = make_input(size, args.profile_persons, seed=args.seed)
                profiles[f"{name}@{size}"] = table = profile_once(model, inputs)
                print()
                print(f"## torch.profiler, {MODELS[name][1]}, {size}, {args.profile_persons} persons")
                print(table)

    elapsed = time.perf_counter() - started
    env["load_average_after"] = os.getloadavg()
    print()
    print(f"(benchmark took {elapsed:.0f} s; load average {env['load_average_after'][0]:.2f} at the end)")
    results = {
        "environment": env,
        "args": {k: v for k, v in vars(args).items() if k != "memory_probe"},
        "inference": records,
        "heads": heads,
        "training": training,
        "unsupported_ops": unsupported,
        "profiles": profiles,
        "seconds": elapsed,
    }
    if args.output:
        with open(args.output, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
