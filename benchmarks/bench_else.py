#!/usr/bin/env python
"""
Pose2Seg's inference without its network: everything but the backbone and the SegModule (the
"else" of bench_inference.py), timed alone. The backbone and the head are replaced by modules
that return their outputs of a first, real call, so what is timed is the keypoint geometry,
template fit, skeleton features, affine-align, scoring, sorting and the warp-back of the masks
at the image size. On a busy machine the whole model's time varies more than this part weighs;
alone, it is measured to a few percent.

    python benchmarks/bench_else.py [--sizes 512 800] [--persons 1 10 20] [--repeats 15]
        [--package-root OTHER_CHECKOUT] [--output else.json] [--compile [MODE ...]]

Best of ``--repeats`` calls after 2 warm-up calls, R50-FPN light-head config (the head's
output shape does not depend on its width), one image per call as in bench_inference.py.
``--package-root`` times another checkout's package (run it in turns with this one to
compare). ``--compile`` times MODEL.POSE2SEG.COMPILE too, in each mode given ("default" if none),
the eager model and the compiled ones in turns, after checking that the compiled model's outputs
equal the eager one's (building it and its first call, which compiles, are timed apart). It also
prints what each runs on the device: eagerly, the calls on device data that
pose2seg_d2.diagnostics.host_syncs counts (inside the compiled stages and outside them; on the CPU only);
compiled, the kernel calls in the code inductor generated (the stages' graphs; the rest of the
call runs as in eager).
"""
import argparse
import json
import os
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from inference_bench import ROOT  # noqa: E402  (first: puts --package-root's checkout on sys.path)
from inference_bench.counts import host_syncs_module  # noqa: E402
from inference_bench.inputs import make_input  # noqa: E402
from inference_bench.models import build  # noqa: E402
from inference_bench.timing import sync  # noqa: E402


class Replay(nn.Module):
    """Returns what it is given to return, whatever its input."""

    def __init__(self, output):
        super().__init__()
        self.output = output

    def forward(self, *args, **kwargs):
        return self.output


def replay_model(size, persons, seed=0, device="cpu", opts=()):
    """The light-head model with its backbone and head replaced by their recorded outputs, its
    input, and its first (real) call's outputs."""
    model = build("pose2seg_light", device, tuple(opts), seed)
    inputs = make_input(size, persons, seed=seed)
    outputs = {}
    hooks = [
        model.backbone.register_forward_hook(lambda m, a, o: outputs.__setitem__("backbone", o)),
        model.head.register_forward_hook(lambda m, a, o: outputs.__setitem__("head", o)),
    ]
    with torch.no_grad():
        reference = model([inputs])
    for hook in hooks:
        hook.remove()
    model.backbone.forward = Replay(outputs["backbone"]).forward
    model.head = Replay(outputs["head"])
    return model, inputs, reference


def time_calls(model, inputs, repeats, device, warmup=2):
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            start = sync(device)
            result = model([inputs])
            if i >= warmup:
                times.append(1000 * (sync(device) - start))
    return times, result[0]["instances"]


def time_else(size, persons, repeats, seed=0, device="cpu"):
    model, inputs, reference = replay_model(size, persons, seed, device)
    times, result = time_calls(model, inputs, repeats, device)
    assert torch.equal(result.pred_masks, reference[0]["instances"].pred_masks)
    return {"size": size, "persons": persons, "best_ms": min(times), "median_ms": sorted(times)[len(times) // 2]}


# the stages MODEL.POSE2SEG.COMPILE compiles (Pose2Seg's methods)
COMPILED_STAGES = ("_window_inputs", "_rank_and_plan")


def eager_device_calls(model, inputs):
    """Calls on device data of one eager call of the replay model (its "else": the backbone
    and head are replays), by pose2seg_d2.diagnostics.host_syncs: ``{"compiled stages": n, "rest": n}``, the
    calls MODEL.POSE2SEG.COMPILE compiles and those it leaves eager."""
    import traceback

    host_syncs = host_syncs_module()

    class StageCounter(host_syncs.HostSyncCounter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.by_stage = {"compiled stages": 0, "rest": 0}

        def __torch_function__(self, func, types, args=(), kwargs=None):
            before = self.total_device_calls
            result = super().__torch_function__(func, types, args, kwargs)
            if self.total_device_calls > before:
                names = {frame.name for frame in traceback.extract_stack()}
                self.by_stage["compiled stages" if names & set(COMPILED_STAGES) else "rest"] += 1
            return result

    with torch.no_grad(), StageCounter(host_syncs.model_host_tensors(model, inputs)) as counter:
        model([inputs])
    return counter.by_stage


def generated_kernel_calls():
    """
    Kernel calls of the graphs torch.compile's inductor generated so far in this process,
    read from their generated code (the ``call`` function of each module in inductor's code
    cache; an inspection of inductor's output, not a public API): ``(graphs, generated,
    library)``, the graphs, the calls of generated kernels (fused C++ or Triton) and of library
    kernels (``extern_kernels.*``, ``aten.*`` fallbacks) in them.
    """
    import re

    from torch._inductor.codecache import PyCodeCache

    graphs = generated = library = 0
    for module in list(PyCodeCache.modules):
        path = getattr(module, "__file__", None)
        if not path or not hasattr(module, "call"):
            continue
        with open(path) as f:
            code = f.read()
        call = code[code.find("def call(") :]
        graphs += 1
        generated += len(re.findall(r"^\s+(?:cpp_fused_\w+\(|triton_\w+\.run\()", call, re.M))
        library += len(re.findall(r"\b(?:extern_kernels|aten|torch\.ops\.aten)\.\w+(?:\.\w+)?\(", call))
    return graphs, generated, library


def compare_compiled(size, persons, repeats, modes, seed=0, device="cpu", rounds=3):
    """The eager "else" against MODEL.POSE2SEG.COMPILE in each mode, in turns; best of each."""
    from torch._inductor.codecache import PyCodeCache

    models = {"eager": replay_model(size, persons, seed, device)}
    reference = models["eager"][2][0]["instances"]
    calls = {"eager": eager_device_calls(*models["eager"][:2])} if device == "cpu" else {}
    compile_s = {}
    for mode in modes:
        torch._dynamo.reset()
        PyCodeCache.cache_clear()  # so that generated_kernel_calls reads this mode's graphs alone
        start = time.perf_counter()
        # building it and its first (recorded) call, which compiles
        models[mode] = replay_model(size, persons, seed, device, ("MODEL.POSE2SEG.COMPILE", mode))
        compile_s[mode] = time.perf_counter() - start
        # the masks must be the eager model's, the scores within float32 rounding
        _, result = time_calls(models[mode][0], models[mode][1], 1, device)
        calls[mode] = dict(zip(("graphs", "generated kernel calls", "library kernel calls"), generated_kernel_calls()))
        assert torch.equal(result.pred_masks, reference.pred_masks), mode
        assert torch.equal(result.pred_boxes.tensor, reference.pred_boxes.tensor), mode
        torch.testing.assert_close(result.scores, reference.scores)
    best = {name: float("inf") for name in models}
    for _ in range(rounds):
        for name, (model, inputs, _) in models.items():
            best[name] = min(best[name], min(time_calls(model, inputs, repeats, device)[0]))
    return {"size": size, "persons": persons, "best_ms": best, "compile_s": compile_s, "calls": calls}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 800])
    parser.add_argument("--persons", type=int, nargs="+", default=[1, 10, 20])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--package-root", default=None, help="time this checkout's package")
    parser.add_argument("--output", default=None)
    parser.add_argument("--compile", nargs="*", default=None, metavar="MODE",
                        help="also MODEL.POSE2SEG.COMPILE in these modes (default: 'default')")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# package {ROOT}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    records = []
    if args.compile is not None:
        modes = args.compile or ["default"]
        print("| size | persons | eager ms | " + " | ".join(f"COMPILE {m} ms (build + first call s)" for m in modes) + " |")
        print("|---|---|---|" + "---|" * len(modes))
        for size in args.sizes:
            for persons in args.persons:
                r = compare_compiled(size, persons, args.repeats, modes, device=args.device)
                records.append(r)
                cells = [f"{r['best_ms'][m]:.1f} ({r['compile_s'][m]:.0f})" for m in modes]
                print(f"| {size} | {persons} | {r['best_ms']['eager']:.1f} | " + " | ".join(cells) + " |", flush=True)
                print(f"#   calls: {r['calls']}", flush=True)
        if args.output:
            with open(args.output, "w") as f:
                json.dump({"package": ROOT, "records": records}, f, indent=1)
        return
    print("| size | persons | else best ms | else median ms |")
    print("|---|---|---|---|")
    for size in args.sizes:
        for persons in args.persons:
            r = time_else(size, persons, args.repeats, device=args.device)
            records.append(r)
            print(f"| {size} | {persons} | {r['best_ms']:.1f} | {r['median_ms']:.1f} |", flush=True)
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"package": ROOT, "records": records}, f, indent=1)


if __name__ == "__main__":
    main()
