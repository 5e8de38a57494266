"""
What one call does, counted rather than timed: host synchronizations and kernel launches (on
CUDA by torch.profiler, on the CPU by :mod:`pose2seg_d2.diagnostics.host_syncs`), fvcore's
flops, and torch.profiler's op table.
"""
import functools
import importlib.util
import logging
import os

import torch

from .package_root import ROOT, THIS_CHECKOUT
from .timing import autocast_context

# CUDA runtime / driver calls that make the host wait for the device
CUDA_SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy", "cuCtxSynchronize")


@functools.lru_cache(maxsize=None)
def host_syncs_module():
    """
    ``pose2seg_d2.diagnostics.host_syncs`` of this script's checkout. With ``--package-root``
    the other checkout's code is counted by this same counter (the module imports torch and
    numpy only, nothing of the package), so it is loaded from its file: that checkout may have
    another counter or none.
    """
    if ROOT == THIS_CHECKOUT:
        from pose2seg_d2.diagnostics import host_syncs

        return host_syncs
    path = os.path.join(THIS_CHECKOUT, "pose2seg_d2", "diagnostics", "host_syncs.py")
    spec = importlib.util.spec_from_file_location("bench_host_syncs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cuda_launches(model, inputs, autocast):
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), autocast_context("cuda", autocast):
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


def count_launches(model, inputs, device, autocast=None):
    """
    Host synchronizations and kernel launches of one call (after the warm-up calls made by
    :func:`~.timing.time_inference`): on CUDA counted by torch.profiler (the call under
    ``autocast``, if given), on the CPU by :class:`HostSyncCounter` (the synchronizations the
    call would make on CUDA, and its calls on device data). Returns dict with ``syncs``,
    ``launches`` and ``sync_calls`` (name -> count).
    """
    if str(device).startswith("cuda"):
        return _cuda_launches(model, inputs, autocast)
    if getattr(model, "compile_mode", ""):
        # the counter is a TorchFunctionMode: it sees the eager ops, not a compiled graph's kernels
        return {"syncs": "n/a", "launches": "n/a", "sync_calls": {}}
    host_syncs = host_syncs_module()
    with torch.no_grad(), host_syncs.HostSyncCounter(host_syncs.model_host_tensors(model, inputs)) as counter:
        model([inputs])
    sync_calls = {f"{kind} {call}": n for (kind, call), n in counter.syncs.items()}
    return {"syncs": counter.total_syncs, "launches": counter.total_device_calls, "sync_calls": sync_calls}


def count_flops(model, inputs):
    """fvcore's count of one traced inference: total and per-module GFLOPs (= GMACs), and the
    ops it could not count with how often they occur."""
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
