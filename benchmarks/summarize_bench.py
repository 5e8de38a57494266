#!/usr/bin/env python
"""
One markdown summary of the bench_inference.py JSON files in a directory (as
benchmarks/gpu_checks.sh writes them): every timing in one table, the code before and after a
change side by side when a ``bench_baseline.json`` is there, and the host-synchronization
criteria at 10 persons, short side 512:

- outside the backbone and the SegModule ("else") is at most 15% of Pose2Seg's time;
- Pose2Seg with the light head takes at most Mask R-CNN's time, in the same run;
- the host synchronizations do not grow with the number of persons (at most 3 per batch).

    python benchmarks/summarize_bench.py DIR [--merge results.json]

``--merge`` also writes every run's JSON into one file, keyed by run name (``bench_NAME.json``).
"""
import argparse
import glob
import json
import os
import sys

LABELS = {"pose2seg": "Pose2Seg", "pose2seg_light": "Pose2Seg light head", "mask_rcnn": "Mask R-CNN"}


def load(directory):
    runs = {}
    for path in sorted(glob.glob(os.path.join(directory, "bench_*.json"))):
        with open(path) as f:
            runs[os.path.basename(path)[len("bench_") : -len(".json")]] = json.load(f)
    return runs


def label(record):
    variant = record.get("variant")
    return LABELS.get(record["model"], record["model"]) + (f" [{variant}]" if variant else "")


def fmt(value, digits=1):
    return "-" if value is None else f"{value:.{digits}f}"


def table(runs):
    lines = [
        "| run | model | size | persons | ms | vs Mask R-CNN | backbone ms | head ms | else ms | else % | syncs | launches |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run, results in runs.items():
        split = results.get("args", {}).get("split", "sync")
        for r in results["inference"]:
            lines.append(
                f"| {run} ({split}) | {label(r)} | {r['size']} | {r['persons']} | {fmt(r['ms'], 2)} | "
                f"{fmt(r.get('ratio'), 2)} | {fmt(r['backbone_ms'], 2)} | {fmt(r['head_ms'], 2)} | "
                f"{fmt(r['else_ms'], 2)} | {fmt(100 * r['else_ms'] / r['ms'])} | {r.get('syncs', '-')} | "
                f"{r.get('launches', '-')} |"
            )
    return "\n".join(lines)


def find(results, model, persons, size=None, variant=""):
    for r in results.get("inference", []):
        if r["model"] == model and r["persons"] == persons and r.get("variant", "") == variant:
            if size is None or r["size"] == size:
                return r
    return None


def criteria(runs, persons=10):
    lines = []
    now = runs.get("fp32")
    if now is None:
        return ["no bench_fp32.json: no criteria"]
    size = now["inference"][0]["size"]
    pose2seg = find(now, "pose2seg", persons, size)
    light = find(now, "pose2seg_light", persons, size)
    mask_rcnn = find(now, "mask_rcnn", persons, size)
    if pose2seg:
        share = 100 * pose2seg["else_ms"] / pose2seg["ms"]
        lines.append(
            f"- else share of Pose2Seg (release head, float32) at {persons} persons, short side {size}: "
            f"{share:.1f}% ({pose2seg['else_ms']:.2f} of {pose2seg['ms']:.2f} ms): {'PASS' if share <= 15 else 'FAIL'} (<= 15%)"
        )
    if light and mask_rcnn:
        ok = light["ms"] <= mask_rcnn["ms"]
        lines.append(
            f"- light head {light['ms']:.2f} ms vs Mask R-CNN {mask_rcnn['ms']:.2f} ms, same run: "
            f"{'PASS' if ok else 'FAIL'} (light <= Mask R-CNN)"
        )
    for model in ("pose2seg", "pose2seg_light"):
        counts = {r["persons"]: r.get("syncs") for r in now["inference"] if r["model"] == model and not r.get("variant")}
        if counts and None not in counts.values():
            same = len(set(counts.values())) == 1
            small = max(counts.values()) <= 3
            lines.append(
                f"- host syncs of {LABELS[model]} by persons {counts}: "
                f"{'PASS' if same and small else 'FAIL'} (equal, <= 3)"
            )
    for key in ("variants", "compiled"):
        for r in runs.get(key, {}).get("inference", []):
            base = find(now, r["model"], r["persons"], r["size"])
            if not base:
                continue
            share = 100 * r["else_ms"] / r["ms"]
            line = (f"- {label(r)}: {r['ms']:.2f} ms vs {base['ms']:.2f} ms float32 "
                    f"({base['ms'] / r['ms']:.2f}x), else {share:.1f}%")  # fmt: skip
            if key == "compiled" and r["model"] == "pose2seg":
                line += f": {'PASS' if share <= 15 else 'FAIL'} (else <= 15%)"
            if key == "compiled" and r["model"] == "pose2seg_light" and mask_rcnn:
                ok = r["ms"] <= mask_rcnn["ms"]
                line += f"; vs Mask R-CNN {mask_rcnn['ms']:.2f} ms: {'PASS' if ok else 'FAIL'} (light <= Mask R-CNN)"
            lines.append(line)
    return lines


def before_after(runs):
    before, after = runs.get("baseline"), runs.get("fp32")
    if not before or not after:
        return []
    lines = [
        "| model | persons | before ms | after ms | speed-up | before else ms | after else ms | before syncs | after syncs | before launches | after launches |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in after["inference"]:
        b = find(before, r["model"], r["persons"], r["size"])
        if b is None:
            continue
        lines.append(
            f"| {label(r)} | {r['persons']} | {b['ms']:.2f} | {r['ms']:.2f} | {b['ms'] / r['ms']:.2f}x | "
            f"{b['else_ms']:.2f} | {r['else_ms']:.2f} | {b.get('syncs', '-')} | {r.get('syncs', '-')} | "
            f"{b.get('launches', '-')} | {r.get('launches', '-')} |"
        )
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory")
    parser.add_argument("--merge", default=None, help="write all runs into this JSON file")
    args = parser.parse_args(argv)
    runs = load(args.directory)
    if not runs:
        print(f"no bench_*.json in {args.directory}")
        return 1
    if args.merge:
        with open(args.merge, "w") as f:
            json.dump(runs, f, indent=1)
    env = next(iter(runs.values()))["environment"]
    print(f"# Inference benchmarks ({env['device']}, torch {env['torch']})\n")
    print("Batch of one 4:3 image, median of the timed calls; split by CUDA events (events) or by")
    print("synchronizing hooks (sync); syncs/launches of one call: torch.profiler on CUDA, pose2seg_d2.diagnostics.host_syncs on the CPU.\n")
    print(table(runs))
    rows = before_after(runs)
    if rows:
        print("\n## Before (baseline checkout) and after, same machine, same script\n")
        print("\n".join(rows))
    print("\n## Criteria (host synchronizations)\n")
    print("\n".join(criteria(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
