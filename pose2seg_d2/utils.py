"""Small helpers shared by the package."""
import os

__all__ = ["datasets_root", "resolve_path", "default_templates_file", "PACKAGE_ASSETS_PREFIX"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

# A config path starting with this names a file shipped in pose2seg_d2/assets/.
PACKAGE_ASSETS_PREFIX = "pose2seg_d2://"


def datasets_root():
    """$DETECTRON2_DATASETS, or ./datasets as Detectron2 defaults to."""
    return os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))


def default_templates_file():
    """The templates JSON shipped with the package (clustered from the synthetic train split)."""
    return os.path.join(_PACKAGE_DIR, "assets", "templates_synthetic.json")


def resolve_path(path):
    """
    Expand a path from a config: "" -> the packaged templates file; "pose2seg_d2://NAME" ->
    the packaged asset pose2seg_d2/assets/NAME; a leading "$DETECTRON2_DATASETS" or
    "${DETECTRON2_DATASETS}" -> :func:`datasets_root`; "~" and other environment variables as
    the shell would.
    """
    if not path:
        return default_templates_file()
    if path.startswith(PACKAGE_ASSETS_PREFIX):
        return os.path.join(_PACKAGE_DIR, "assets", path[len(PACKAGE_ASSETS_PREFIX) :])
    for token in ("${DETECTRON2_DATASETS}", "$DETECTRON2_DATASETS"):
        if path.startswith(token):
            path = datasets_root() + path[len(token) :]
            break
    return os.path.expanduser(os.path.expandvars(path))
