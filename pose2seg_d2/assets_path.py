"""``pose2seg_d2://`` paths in Detectron2's PathManager: files shipped inside the package.

``MODEL.WEIGHTS: "pose2seg_d2://backbones/R_18_FPN_synthetic_dense.pth"`` names
``pose2seg_d2/assets/backbones/R_18_FPN_synthetic_dense.pth``, as ``detectron2://`` names
Detectron2's model zoo, from any working directory. Importing :mod:`pose2seg_d2` registers
the handler with Detectron2's ``PathManager``, through which its checkpointer opens weights
(templates files go through :func:`pose2seg_d2.utils.resolve_path`, same prefix).
"""
import os

from detectron2.utils.file_io import PathManager
from iopath.common.file_io import PathHandler

from .utils import PACKAGE_ASSETS_PREFIX, package_asset

__all__ = ["PACKAGE_ASSETS_PREFIX", "PackageAssetHandler", "package_asset_path"]

# what to do when a shipped file is missing (a checkout without it, or a name of one's own)
_HOW_TO_MAKE = {
    "backbones/R_18_FPN_synthetic_dense.pth": "python tools/pretrain_backbone.py (README.md, 'The synthetic backbone')",
}


def package_asset_path(path):
    """The local file of a ``pose2seg_d2://`` path (or a path relative to the assets); a
    FileNotFoundError naming what makes it, if absent."""
    if not path.startswith(PACKAGE_ASSETS_PREFIX):
        path = PACKAGE_ASSETS_PREFIX + path
    relative = path[len(PACKAGE_ASSETS_PREFIX) :]
    local = package_asset(path)
    if not os.path.isfile(local):
        how = _HOW_TO_MAKE.get(relative)
        raise FileNotFoundError(
            f"{path}: no such file in the package ({local})" + (f"; make it with {how}" if how else "")
        )
    return local


class PackageAssetHandler(PathHandler):
    """Resolves ``pose2seg_d2://RELATIVE`` to ``pose2seg_d2/assets/RELATIVE`` (read only)."""

    def _get_supported_prefixes(self):
        return [PACKAGE_ASSETS_PREFIX]

    def _get_local_path(self, path, **kwargs):
        return package_asset_path(path)

    def _open(self, path, mode="r", buffering=-1, **kwargs):
        if any(c in mode for c in "wax+"):
            raise PermissionError(f"{path}: package assets are read only")
        return open(package_asset_path(path), mode, buffering=buffering)

    def _exists(self, path, **kwargs):
        try:
            package_asset_path(path)
        except FileNotFoundError:
            return False
        return True

    def _isfile(self, path, **kwargs):
        return self._exists(path)


if not any(isinstance(h, PackageAssetHandler) for h in PathManager._path_handlers.values()):
    PathManager.register_handler(PackageAssetHandler())
