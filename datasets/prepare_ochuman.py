#!/usr/bin/env python
"""
Convert the native OCHuman annotations (ochuman.json) to the COCO-style val and test files
of the release (docs/method.md §3), e.g.

    python datasets/prepare_ochuman.py datasets/ochuman/ochuman.json \\
        --output-dir datasets/ochuman/annotations

writes ochuman_coco_format_val_range_0.00_1.00.json and
ochuman_coco_format_test_range_0.00_1.00.json. Needs no images.
"""
import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pose2seg_d2.data.ochuman import OCHUMAN_VAL_SIZE, prepare_ochuman  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("native_json", help="the native OCHuman annotation file (ochuman.json)")
    p.add_argument("--output-dir", required=True, help="where to write the COCO-style files")
    p.add_argument("--max-iou-range", nargs=2, type=float, default=(0.0, 1.0), metavar=("LO", "HI"),
                   help="keep persons with LO <= max_iou < HI (release: 0 1; moderate 0.5 0.75; hard 0.75 1)")
    p.add_argument("--val-size", type=int, default=OCHUMAN_VAL_SIZE, help="images in val (the rest is test)")
    p.add_argument("--subsets", nargs="+", choices=("val", "test", "all"), default=("val", "test"))
    p.add_argument("--with-max-iou", action="store_true",
                   help="also write each person's native max_iou (an extra field, not in the release's files)")
    p.add_argument("--sort-by-image-id", action="store_true",
                   help="order images by image_id as OCHumanApi does, instead of file order")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        written = prepare_ochuman(
            args.native_json,
            args.output_dir,
            tuple(args.max_iou_range),
            args.val_size,
            tuple(args.subsets),
            args.with_max_iou,
            args.sort_by_image_id,
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for subset, path in written.items():
        print(f"{subset}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
