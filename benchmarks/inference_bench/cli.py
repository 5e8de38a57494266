"""bench_inference.py's command line: parse it, measure every setting, print and write the
results."""
import argparse
import json
import os
import platform
import time

import torch

from . import report
from .counts import count_flops, count_launches, profile_once
from .inputs import make_input
from .memory import measure_memory, memory_probe
from .models import BASELINE, MODELS, build, is_pose2seg, set_detections
from .timing import AUTOCAST_DTYPES, head_summary, time_inference, training_speed


def _add_arguments(parser):
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
    parser.add_argument("--autocast", choices=sorted(AUTOCAST_DTYPES), default=None,
                        help="every model call (Mask R-CNN's too) under torch.autocast in this dtype")
    parser.add_argument("--variant", nargs="+", action="append", default=[], metavar=("NAME", "KEY VALUE"),
                        help="run every model again with these config overrides (repeatable)")
    parser.add_argument("--no-default-variant", action="store_true", help="run the --variant settings only")
    parser.add_argument("--package-root", default=None, help="benchmark this checkout's package and configs")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides for every model")
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)  # fmt: skip


def parse_args(argv=None, description=None):
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(parser)
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
    for key in args.opts[::2] + [key for variant in args.variant for key in variant[1::2]]:
        if str(key).startswith("BENCH."):
            parser.error(f"{key} is not a config key; --autocast bf16|fp16 puts the whole call under torch.autocast")
    return args


def measure_setting(model, name, variant, size, persons, model_opts, args):
    """One record: the model's times on ``size`` x ``persons``, and its counts, flops and
    memory as asked. ``unsupported_ops`` (flops) stays in the record for the caller."""
    set_detections(model, name, persons)
    inputs = make_input(size, persons, seed=args.seed)
    record = {"model": name, "variant": variant, "size": size, "persons": persons}
    record.update(time_inference(model, name, inputs, args.repeats, args.device, args.warmup, args.split, args.autocast))
    if args.count_launches:
        record.update(count_launches(model, inputs, args.device, args.autocast))
    if not args.no_flops and not variant:
        record.update(count_flops(model, inputs))
    if not args.no_memory:
        record["peak_mb"] = measure_memory(
            name, size, persons, args.seed, model_opts, args.device, model, inputs, args.autocast
        )  # fmt: skip
    return record


def run_inference(args, variants):
    """Every model, variant, size and person count: (records, heads, unsupported ops)."""
    records, heads, unsupported = [], {}, {}
    for name in args.models:
        for variant, variant_opts in variants:
            model_opts = list(args.opts) + list(variant_opts)
            model = build(name, args.device, model_opts, args.seed)
            if is_pose2seg(name) and not variant:
                heads[name] = head_summary(model, args.device, model.window_size, repeats=max(1, args.repeats))
            for size in args.sizes:
                for persons in args.persons:
                    record = measure_setting(model, name, variant, size, persons, model_opts, args)
                    for op, n in record.pop("unsupported_ops", {}).items():
                        unsupported.setdefault(name, {})[op] = n
                    records.append(record)
                    report.print_progress(record, args.count_launches)
            del model
    return records, heads, unsupported


def add_ratios_and_sort(records, models, variants):
    """Each Pose2Seg record's ``ratio`` to Mask R-CNN in the same setting (and variant, else the
    default one); the records sorted by size, persons, model and variant."""
    baseline = {(r["size"], r["persons"], r["variant"]): r["ms"] for r in records if r["model"] == BASELINE}
    for r in records:
        same = baseline.get((r["size"], r["persons"], r["variant"]), baseline.get((r["size"], r["persons"], "")))
        if r["model"] != BASELINE and same is not None:
            r["ratio"] = r["ms"] / same
    variant_names = [v for v, _ in variants]
    records.sort(key=lambda r: (r["size"], r["persons"], models.index(r["model"]), variant_names.index(r["variant"])))


def run_training(args):
    train_size = args.train_size or min(args.sizes)
    report.print_training_header(args, train_size)
    training = {}
    for name in args.models:
        speed = training_speed(name, args.device, train_size, args.train_persons, args.train_iters, args.opts, args.seed)
        training[name] = speed
        report.print_training_row(name, speed)
    return training


def run_profiles(args):
    profiles = {}
    for name in [m for m in args.models if is_pose2seg(m)][:1]:
        model = build(name, args.device, args.opts, args.seed)
        for size in args.sizes:
            inputs = make_input(size, args.profile_persons, seed=args.seed)
            profiles[f"{name}@{size}"] = table = profile_once(model, inputs)
            report.print_profile(name, size, args.profile_persons, table)
    return profiles


def environment(device):
    return {
        "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "load_average_before": os.getloadavg(),
    }


def main(argv=None, description=None):
    args = parse_args(argv, description)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe is not None:
        print(json.dumps(memory_probe(json.loads(args.memory_probe))))
        return None
    started = time.perf_counter()
    env = environment(args.device)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    report.print_preamble(env, args)
    variants = ([] if args.no_default_variant else [("", [])]) + [(v[0], v[1:]) for v in args.variant]
    records, heads, unsupported = run_inference(args, variants)
    add_ratios_and_sort(records, args.models, variants)
    report.print_inference(records, args, variants, unsupported)
    if heads:
        report.print_heads(heads)
    training = run_training(args) if args.train else {}
    profiles = run_profiles(args) if args.profile else {}
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
