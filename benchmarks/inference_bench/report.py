"""What bench_inference.py prints: the run's preamble, progress lines and markdown tables."""
from .inputs import image_size
from .models import MODELS, model_label
from .package_root import ROOT, THIS_CHECKOUT

TABLE_COLUMNS = (
    "size", "persons", "model", "ms/img", "vs Mask R-CNN", "GFLOPs", "peak MB", "dets",
    "backbone ms", "head ms", "else ms", "else %",
)  # fmt: skip
COUNT_COLUMNS = ("syncs", "launches")


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


def record_label(record):
    return model_label(record["model"], record.get("variant"))


def markdown_table(records):
    """The inference table, one row a record; ``syncs`` and ``launches`` when counted."""
    counted = any("launches" in r for r in records)
    columns = TABLE_COLUMNS + (COUNT_COLUMNS if counted else ())
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in records:
        ratio = r.get("ratio")
        height, width = image_size(r["size"])
        cells = [
            f"{height}x{width}", str(r["persons"]), record_label(r), _fmt(r["ms"]),
            "-" if ratio is None else f"{ratio:.2f}x", _fmt_flops(r.get("gflops")), _fmt(r.get("peak_mb"), 0),
            str(r["dets"]), _fmt(r["backbone_ms"]), _fmt(r["head_ms"]), _fmt(r["else_ms"]),
            _fmt(100 * r["else_ms"] / r["ms"]),
        ]  # fmt: skip
        if counted:
            cells += [str(r.get("syncs", "-")), str(r.get("launches", "-"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def print_preamble(env, args):
    """The environment, the settings that apply to every model."""
    print(
        f"# Inference benchmark: {args.device} ({env['device']}), torch {env['torch']}, {env['threads']} threads, "
        f"{env['cpu_count']} CPUs, load average {env['load_average_before'][0]:.2f} before"
    )
    print(
        "# Mask R-CNN: ROI_HEADS.SCORE_THRESH_TEST=0 and TEST.DETECTIONS_PER_IMAGE=persons (random weights), "
        "so it returns as many instances as Pose2Seg segments (column dets)."
    )
    if args.opts:
        print(f"# config overrides: {' '.join(args.opts)}")
    if args.autocast:
        print(f"# every model call under torch.autocast ({args.autocast})")
    if ROOT != THIS_CHECKOUT:
        print(f"# package and configs of {ROOT}")
    if args.device == "cuda":
        import torch

        print(f"# CUDA: cudnn.benchmark {torch.backends.cudnn.benchmark}, split by {args.split}")


def print_progress(record, counted):
    """One line as each setting is measured."""
    print(
        f"#   {record_label(record):30s} {record['size']}  {record['persons']:3d} persons: {record['ms']:9.1f} ms "
        f"(calls {record['all_ms']})" + (
            f", {record['syncs']} syncs, {record['launches']} launches" if counted else ""
        ),
        flush=True,
    )  # fmt: skip


def _table_notes(args):
    device = args.device
    peak = "CUDA max_memory_allocated growth." if device == "cuda" else (
        "resident-set growth over one inference in a fresh process (weights excluded).")  # fmt: skip
    counted = ""
    if args.count_launches:
        counted = " syncs / launches: " + (
            "torch.profiler's count of host synchronizations and kernel launches in one call."
            if device == "cuda" else "counted on the CPU by pose2seg_d2.diagnostics.host_syncs: synchronizations "
            "the call would make on CUDA, and its calls on device data."
        )  # fmt: skip
    return (
        "vs Mask R-CNN: time ratio to Mask R-CNN in the same setting. GFLOPs: fvcore (1 multiply-add = 1). "
        "peak MB: " + peak + " Head: Pose2Seg's SegModule; Mask R-CNN's RPN + ROI heads. else = total - backbone - head"
        + (" (backbone and head: CUDA event time)." if args.split == "events" else ".") + counted
    )


def print_inference(records, args, variants, unsupported):
    """The inference table with its notes: variants' overrides, ops fvcore could not count."""
    short = [r for r in records if r["dets"] != r["persons"]]
    if short:
        print("WARNING: fewer instances than persons in " + ", ".join(
            f"{record_label(r)} {r['size']}/{r['persons']} ({r['dets']})" for r in short))  # fmt: skip
    print()
    print(f"## Inference, batch of 1 image, median of {args.repeats} calls after {args.warmup} warm-up ({args.device})")
    print()
    print(markdown_table(records))
    print()
    print(_table_notes(args))
    for variant, variant_opts in variants:
        if variant:
            print(f"[{variant}]: {' '.join(variant_opts) or 'no config overrides'}")
    for name, ops in unsupported.items():
        listed = ", ".join(f"{op} x{n}" for op, n in sorted(ops.items()))
        print(f"fvcore could not count ({MODELS[name][1]}): {listed}")


def print_heads(heads):
    """The Pose2Seg heads' table (SegModule alone)."""
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


def print_training_header(args, train_size):
    print()
    print(
        f"## Training, batch of 2 images of {'x'.join(map(str, image_size(train_size)))} with "
        f"{args.train_persons} persons each, {args.train_iters} iterations after 1 warm-up ({args.device})"
    )
    print()
    print("| model | it/s | s/it | last loss |")
    print("|---|---|---|---|")


def print_training_row(name, speed):
    print(f"| {MODELS[name][1]} | {speed['it_per_s']:.3f} | {speed['s_per_it']:.2f} | {speed['loss']:.3g} |", flush=True)


def print_profile(name, size, persons, table):
    print()
    print(f"## torch.profiler, {MODELS[name][1]}, {size}, {persons} persons")
    print(table)
