"""``MODEL.WEIGHTS`` that cannot be read: a clear error saying what to pass instead."""
import os

from ..assets_path import PACKAGE_ASSETS_PREFIX, package_asset_path

__all__ = ["WeightsUnavailableError", "check_weights_available"]


class WeightsUnavailableError(OSError):
    """MODEL.WEIGHTS names a file that is not there or a URL that cannot be downloaded."""


# Detectron2's "detectron2://" prefix stands for this URL (its model zoo's file host)
_DETECTRON2_URL = "https://dl.fbaipublicfiles.com/detectron2/"


def check_weights_available(path, path_manager=None):
    """
    Make sure the weights file ``path`` (MODEL.WEIGHTS) can be read: a local file, or a URL
    that Detectron2 downloads (into its cache, on first use). "" passes (no weights).

    Raises:
        WeightsUnavailableError: a local file that does not exist, or a URL whose download
            fails (e.g. no internet access); the message says what to pass instead.
    """
    if not path or os.path.isfile(path):
        return
    remedy = 'pass MODEL.WEIGHTS /path/to/a/local/copy, or MODEL.WEIGHTS "" to start from random weights'
    if "://" not in path:
        raise WeightsUnavailableError(f"MODEL.WEIGHTS {path}: no such file; {remedy}")
    if path_manager is None:
        from detectron2.utils.file_io import PathManager as path_manager
    url = path.split("?", 1)[0]  # Detectron2 reads options from the query (?matching_heuristics=...)
    if url.startswith(PACKAGE_ASSETS_PREFIX):  # a file shipped with the package: nothing to download
        try:
            package_asset_path(url)
        except FileNotFoundError as e:
            raise WeightsUnavailableError(f"MODEL.WEIGHTS {path}: {e}; or {remedy}") from e
        return
    try:
        local = path_manager.get_local_path(url)
    except Exception as e:  # noqa: BLE001 (urllib, HTTP and file errors alike)
        where = _DETECTRON2_URL + url[len("detectron2://") :] if url.startswith("detectron2://") else url
        raise WeightsUnavailableError(
            f"MODEL.WEIGHTS {path} could not be downloaded ({type(e).__name__}: {e}). Detectron2 "
            f"downloads it on first use, which needs internet access. Without it, download {where} "
            f"on a machine that has it and {remedy}."
        ) from e
    if not os.path.isfile(local):
        raise WeightsUnavailableError(f"MODEL.WEIGHTS {path}: nothing was found there; {remedy}")
