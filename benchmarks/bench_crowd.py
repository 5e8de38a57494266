#!/usr/bin/env python
"""
Pose2Seg in a crowd: time and peak memory of one inference against the number of persons,
with the persons taken through the head and the warp-back in chunks
(MODEL.POSE2SEG.TEST_PERSONS_PER_CHUNK) and all at once (0).

    python benchmarks/bench_crowd.py [--persons 1 25 100 200] [--chunk N] [--size 800]
        [--threads 1] [--output results.json]

Model: ``configs/pose2seg_R_50_FPN_coco_persons.yaml`` (R50-FPN, the release-width SegModule),
random weights with calibrated FrozenBatchNorm statistics, on the CPU; one noise image of
shortest side ``--size`` (800x1067) with N persons given as ``instances.gt_keypoints``, made as
``bench_inference.py`` makes them (``inference_bench.models.build`` and
``inference_bench.inputs.make_input``).

Each (persons, chunk) setting runs in a fresh process: the model is built, its resident set
read (the baseline), then one inference is timed; ``peak MiB`` is the resident set's high-water
mark over that call minus the baseline (Linux VmHWM, reset by /proc/self/clear_refs; elsewhere
``resource.getrusage``'s maxrss, which also counts the model's building): activations,
workspaces and the allocator's pages, not the weights or the libraries. The time is that of the
same first call (one-time kernel set-ups included) and, for up to 25 persons, the best of it
and one more call.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from inference_bench import ROOT  # noqa: E402,F401  (first: puts this checkout's package on sys.path)
from inference_bench.inputs import image_size, make_input  # noqa: E402
from inference_bench.models import build, build_cfg  # noqa: E402

MODEL = "pose2seg"
CHUNK_OPTION = "MODEL.POSE2SEG.TEST_PERSONS_PER_CHUNK"


def _status_mib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _resident_mib():
    """(current resident set, a function giving the high-water mark since now) in MiB."""
    if os.path.exists("/proc/self/clear_refs"):
        before = _status_mib("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current resident set
        return before, lambda: _status_mib("VmHWM")
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20  # maxrss is KiB on Linux, bytes on macOS
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return before, lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def probe(spec):
    """In a fresh process: build, one inference (and one more for small crowds); the figures."""
    torch.set_num_threads(spec["threads"])
    model = build(MODEL, "cpu", [CHUNK_OPTION, spec["chunk"]])
    inputs = make_input(spec["size"], spec["persons"], seed=spec["seed"])
    baseline, high_water = _resident_mib()
    times = []
    with torch.no_grad():
        for _ in range(2 if spec["persons"] <= 25 else 1):
            start = time.perf_counter()
            masks = model([inputs])[0]["instances"].pred_masks
            times.append(time.perf_counter() - start)
            if len(times) == 1:
                peak = high_water() - baseline
    assert len(masks) == spec["persons"]
    return {"persons": spec["persons"], "chunk": spec["chunk"], "seconds": min(times), "peak_mib": peak}


def measure(persons, chunk, args):
    spec = {"persons": persons, "chunk": chunk, "size": args.size, "threads": args.threads, "seed": args.seed}
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--probe", json.dumps(spec)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"the probe {spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def label(chunk):
    return f"chunks of {chunk}" if chunk else "all at once"


def table(records, persons, chunks):
    """A markdown table (one row per person count) and the ratios to the second count."""
    by = {(r["persons"], r["chunk"]): r for r in records}
    head = ["persons"] + [f"{label(c)}: {col}" for c in chunks for col in ("s", "s/person", "peak MiB")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in persons:
        cells = [str(n)]
        for c in chunks:
            r = by[n, c]
            cells += [f"{r['seconds']:.1f}", f"{r['seconds'] / n:.2f}", f"{r['peak_mib']:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if len(persons) > 2:
        ref = persons[1]
        lines.append("")
        for c in chunks:
            ratios = ", ".join(
                f"{n}/{ref} persons: time {by[n, c]['seconds'] / by[ref, c]['seconds']:.2f}x, "
                f"peak {by[n, c]['peak_mib'] / by[ref, c]['peak_mib']:.2f}x"
                for n in persons[2:]
            )
            lines.append(f"- {label(c)}: {ratios}")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, nargs="+", default=[1, 25, 100, 200])
    parser.add_argument(
        "--chunk", type=int, help="the chunked setting's TEST_PERSONS_PER_CHUNK (default: the config's)"
    )
    parser.add_argument("--size", type=int, default=800, help="the image's shortest side (aspect 4:3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each probe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="write the records as JSON here")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.probe:
        print(json.dumps(probe(json.loads(args.probe))))
        return 0
    if args.chunk is None:
        args.chunk = build_cfg(MODEL, "cpu").MODEL.POSE2SEG.TEST_PERSONS_PER_CHUNK
    chunks = [args.chunk, 0]
    records = []
    # all at once last: the largest crowd at once needs the most memory
    for chunk in chunks:
        for n in args.persons:
            records.append(measure(n, chunk, args))
            r = records[-1]
            print(f"{n:4d} persons, {label(chunk)}: {r['seconds']:.1f} s, peak {r['peak_mib']:,.0f} MiB", flush=True)
    print(
        f"\n{datetime.date.today()}, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} thread(s), image {image_size(args.size)}\n"
    )
    print(table(records, args.persons, chunks))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(records, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
