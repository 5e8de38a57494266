"""
The parts of ``benchmarks/bench_inference.py`` (whole models against Mask R-CNN), one concept a
module: ``models`` (configs and built models), ``inputs`` (synthetic images and persons),
``timing`` (timed calls split by stage, heads alone, training speed), ``counts`` (host syncs,
kernel launches, flops, profiler tables), ``memory`` (peak memory of one call), ``report``
(the markdown tables) and ``cli`` (the command line).

Importing this package first reads ``--package-root`` (see :mod:`.package_root`), so that the
modules below import that checkout's ``pose2seg_d2``.
"""
from .package_root import ROOT, THIS_CHECKOUT  # noqa: F401  (before any import of pose2seg_d2)
