#!/usr/bin/env python
"""
Convert the Pose2Seg release's trained model (``pose2seg_release.pkl``, linked from its README: a
``torch.save``d state dict with ``backbone.*`` and ``segnet.*``, or the older
``pose2seg.seg_branch.*``) into a Detectron2 checkpoint for
``configs/pose2seg_R_50_FPN_release.yaml``:

    python tools/convert_release_checkpoint.py pose2seg_release.pkl pose2seg_release.pth
    python train_net.py --config-file configs/pose2seg_R_50_FPN_release.yaml --eval-only \\
        MODEL.WEIGHTS pose2seg_release.pth

Every entry is renamed (pose2seg_d2/release/checkpoint.py lists how) and checked against
the model the config builds: a key the release model does not have, a key of the model that
the checkpoint lacks, or a shape that differs stops the conversion with a message naming them
(exit status 1); nothing is written then.
"""
import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DEFAULT_CONFIG = os.path.join(REPO, "configs", "pose2seg_R_50_FPN_release.yaml")

logger = logging.getLogger("pose2seg_d2.convert_release_checkpoint")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="the release's checkpoint (a state dict saved with torch.save)")
    p.add_argument("dst", help="the Detectron2 checkpoint to write (.pth)")
    p.add_argument("--config-file", default=DEFAULT_CONFIG, help="the config the checkpoint is for")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides (KEY VALUE ...)")
    return p.parse_args(argv)


def convert(src, dst, config_file=DEFAULT_CONFIG, opts=()):
    """
    Convert ``src`` into ``dst`` for the model of ``config_file`` (+ ``opts``).

    Returns:
        int: the number of tensors written.

    Raises:
        ReleaseCheckpointError: see :func:`convert_release_state_dict`.
    """
    from detectron2.modeling import build_model

    import pose2seg_d2  # noqa: F401  (registers the model)
    from pose2seg_d2.config import load_config
    from pose2seg_d2.engine.checkpoint import atomic_write
    from pose2seg_d2.release import (
        ReleaseCheckpointError,
        convert_release_state_dict,
        load_release_state_dict,
    )

    state_dict = load_release_state_dict(src)
    cfg = load_config(config_file, ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", *opts])
    expected = build_model(cfg).state_dict()
    try:
        converted = convert_release_state_dict(state_dict, expected)
    except ReleaseCheckpointError as e:
        raise ReleaseCheckpointError(f"{src}: {e}") from e
    checkpoint = {
        "model": converted,
        "__author__": f"pose2seg_d2 tools/convert_release_checkpoint.py from {os.path.basename(src)}",
        "matching_heuristics": False,
    }
    folder = os.path.dirname(os.path.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    with atomic_write(dst, "wb") as f:
        torch.save(checkpoint, f)
    return len(converted)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    from pose2seg_d2.release import ReleaseCheckpointError

    try:
        count = convert(args.src, args.dst, args.config_file, args.opts)
    except ReleaseCheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    logger.info(f"Wrote {args.dst}: {count} tensors for {os.path.relpath(args.config_file)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
