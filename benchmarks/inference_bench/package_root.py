"""
Which checkout's ``pose2seg_d2`` and ``configs/`` the benchmarks measure: this one, or the one
``--package-root DIR`` names on the command line. Read from ``sys.argv`` when this module is
first imported, before anything imports the package, and put first on ``sys.path``.
"""
import os
import sys

# the checkout these scripts belong to
THIS_CHECKOUT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def package_root(argv):
    """The checkout named by ``--package-root DIR`` (or ``--package-root=DIR``) in ``argv``,
    else :data:`THIS_CHECKOUT`."""
    for i, arg in enumerate(argv):
        if arg == "--package-root" and i + 1 < len(argv):
            return os.path.abspath(argv[i + 1])
        if arg.startswith("--package-root="):
            return os.path.abspath(arg.split("=", 1)[1])
    return THIS_CHECKOUT


ROOT = package_root(sys.argv)
sys.path.insert(0, ROOT)
