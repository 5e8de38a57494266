#!/usr/bin/env python
"""
Generate the synthetic occluded-human benchmark (the embedded default dataset), e.g.

    python datasets/prepare_synthetic.py --output-dir datasets/synthetic_occluded --seed 0

writes images/{train,val,test,all_levels}/*.png and annotations/{train,val,test,all_levels}.json; the same seed and
counts give byte-identical files. The registered synthetic_occluded_* datasets generate the
default one on first use when it is missing.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pose2seg_d2.data.synthetic import DEFAULT_COUNTS, DEFAULT_SEED, generate_synthetic_dataset  # noqa: E402


def main(argv=None):
    root = os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output-dir", default=os.path.join(root, "synthetic_occluded"),
                   help="default $DETECTRON2_DATASETS/synthetic_occluded")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--num-train", type=int, default=DEFAULT_COUNTS["train"])
    p.add_argument("--num-val", type=int, default=DEFAULT_COUNTS["val"])
    p.add_argument("--num-test", type=int, default=DEFAULT_COUNTS["test"])
    p.add_argument("--num-all-levels", type=int, default=DEFAULT_COUNTS["all_levels"])
    p.add_argument("--num-workers", type=int, default=None, help="processes (default: up to 2)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    for name in ("num_train", "num_val", "num_test", "num_all_levels"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    start = time.perf_counter()
    generate_synthetic_dataset(
        args.output_dir,
        seed=args.seed,
        num_train=args.num_train,
        num_val=args.num_val,
        num_test=args.num_test,
        num_all_levels=args.num_all_levels,
        progress=not args.no_progress,
        num_workers=args.num_workers,
    )
    print(f"done in {time.perf_counter() - start:.1f} s: {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
