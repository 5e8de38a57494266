#!/usr/bin/env python
"""
Pose2Seg's inference without its network: everything but the backbone and the SegModule (the
"else" of bench_inference.py), timed alone. The backbone and the head are replaced by modules
that return their outputs of a first, real call, so what is timed is the keypoint geometry,
template fit, skeleton features, affine-align, scoring, sorting and the warp-back of the masks
at the image size. On a busy machine the whole model's time varies more than this part weighs;
alone, it is measured to a few percent.

    python benchmarks/bench_else.py [--sizes 512 800] [--persons 1 10 20] [--repeats 15]
        [--package-root OTHER_CHECKOUT] [--output else.json]

Best of ``--repeats`` calls after 2 warm-up calls, R50-FPN light-head config (the head's
output shape does not depend on its width), one image per call as in bench_inference.py.
``--package-root`` times another checkout's package (run it in turns with this one to
compare).
"""
import argparse
import json
import os
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_inference as bench  # noqa: E402  (imports the package of --package-root)


class Replay(nn.Module):
    """Returns what it is given to return, whatever its input."""

    def __init__(self, output):
        super().__init__()
        self.output = output

    def forward(self, *args, **kwargs):
        return self.output


def time_else(size, persons, repeats, seed=0, device="cpu"):
    model = bench.build("pose2seg_light", device, (), seed)
    inputs = bench.make_input(size, persons, seed=seed)
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
    times = []
    with torch.no_grad():
        for i in range(2 + repeats):
            start = bench.sync(device)
            result = model([inputs])
            if i >= 2:
                times.append(1000 * (bench.sync(device) - start))
    assert torch.equal(result[0]["instances"].pred_masks, reference[0]["instances"].pred_masks)
    return {"size": size, "persons": persons, "best_ms": min(times), "median_ms": sorted(times)[len(times) // 2]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 800])
    parser.add_argument("--persons", type=int, nargs="+", default=[1, 10, 20])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--package-root", default=None, help="time this checkout's package")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# package {bench.ROOT}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    print("| size | persons | else best ms | else median ms |")
    print("|---|---|---|---|")
    records = []
    for size in args.sizes:
        for persons in args.persons:
            r = time_else(size, persons, args.repeats, device=args.device)
            records.append(r)
            print(f"| {size} | {persons} | {r['best_ms']:.1f} | {r['median_ms']:.1f} |", flush=True)
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"package": bench.ROOT, "records": records}, f, indent=1)


if __name__ == "__main__":
    main()
