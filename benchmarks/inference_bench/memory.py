"""
Peak memory of one inference: on the CPU the growth of the resident set in a fresh process (the
``--memory-probe`` mode of bench_inference.py), on CUDA ``torch.cuda.max_memory_allocated``.
"""
import json
import os
import subprocess
import sys

import torch

from .inputs import make_input
from .models import build, set_detections
from .package_root import ROOT
from .timing import autocast_context

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench_inference.py")


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
    with torch.no_grad(), autocast_context("cpu", spec.get("autocast")):
        model([inputs])
    peak = _rss_kb("VmHWM")
    return {"peak_mb": (peak - before) / 1024, "rss_before_mb": before / 1024, "hwm_mb": peak / 1024}


def measure_memory(name, size, persons, seed, opts, device, model=None, inputs=None, autocast=None):
    """Peak memory of one inference in MB (see bench_inference.py's docstring); None if not
    measurable. On CUDA it calls ``model`` on ``inputs``; on the CPU a fresh process builds
    its own."""
    if str(device).startswith("cuda"):
        with torch.no_grad(), autocast_context(device, autocast):
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
        "threads": torch.get_num_threads(), "autocast": autocast,
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, SCRIPT, "--package-root", ROOT, "--memory-probe", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"]
