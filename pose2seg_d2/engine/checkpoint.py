"""
Checkpoints that survive a kill: the .pth file and the ``last_checkpoint`` tag are written
atomically, so ``--resume`` always finds the last complete checkpoint.

Detectron2's checkpointer (fvcore's ``Checkpointer.save``) writes ``model_XXXXXXX.pth`` in
place and then rewrites ``last_checkpoint`` in place: a training killed during either write
leaves a truncated .pth under its final name (picked up by anyone who takes the newest .pth)
or an empty tag (and ``--resume`` then fails). Here each file is written to a temporary file
in the same folder, flushed and fsynced, and renamed over its final name (``os.replace``, atomic
on POSIX), then the folder is fsynced. A kill at any point leaves either the old or the new
complete file, plus at most a hidden ``.<name>.*.tmp`` file that nothing loads and that the
next resume removes.
"""
import contextlib
import logging
import os
import tempfile
import time

import torch
from detectron2.checkpoint import DetectionCheckpointer

from ..assets_path import PACKAGE_ASSETS_PREFIX, package_asset_path

__all__ = [
    "AtomicDetectionCheckpointer",
    "WeightsUnavailableError",
    "atomic_write",
    "check_weights_available",
    "TEST_PAUSE_ENV",
]

logger = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"

# Test hook, used only by tests/test_kill_resume.py: "<checkpoint basename>:<pth|tag>:<marker>"
# pauses the save of that checkpoint (its .pth, or the last_checkpoint tag naming it) after the
# first bytes reach the temporary file: the marker file is created and the writer sleeps, so
# the test can kill the process in the middle of the write.
TEST_PAUSE_ENV = "POSE2SEG_TEST_CHECKPOINT_PAUSE"
_TEST_PAUSE_SECONDS = 300


def _fsync_folder(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. folders cannot be opened on this platform
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_temporary_file(name):
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """
    Open a temporary file next to ``path`` for writing; on a clean exit, flush and fsync it and
    rename it to ``path``. On an exception the temporary file is removed and ``path`` is left
    as it was. A kill leaves ``path`` as it was too (and the temporary file behind).

    Args:
        path (str): the final file (local).
        mode (str): "wb" or "w".

    Yields:
        file: the open temporary file, named ``.<basename>.<random>.tmp``.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


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


class _PausingWriter:
    """File wrapper for the test hook: sleeps once, after the first write, with the data flushed."""

    def __init__(self, f, marker):
        self._f, self._marker, self._paused = f, marker, False

    def write(self, data):
        n = self._f.write(data)
        if not self._paused:
            self._paused = True
            self._f.flush()
            os.fsync(self._f.fileno())
            with open(self._marker, "w") as m:
                m.write(str(os.getpid()))
            time.sleep(_TEST_PAUSE_SECONDS)
        return n

    def __getattr__(self, name):
        return getattr(self._f, name)


def _maybe_pausing(f, checkpoint, stage):
    spec = os.environ.get(TEST_PAUSE_ENV)
    if not spec:
        return f
    name, what, marker = spec.split(":", 2)
    return _PausingWriter(f, marker) if (name, what) == (checkpoint, stage) else f


class AtomicDetectionCheckpointer(DetectionCheckpointer):
    """
    :class:`DetectionCheckpointer` whose :meth:`save` and :meth:`tag_last_checkpoint` write
    atomically (see :func:`atomic_write`), and whose :meth:`resume_or_load` removes the
    temporary files an interrupted save left behind. Loading is unchanged, except that weights
    that cannot be read or downloaded fail with a :class:`WeightsUnavailableError` saying what
    to do. Save folders that
    are not local (``PathManager`` URLs) fall back to Detectron2's direct writes.
    """

    def _local(self):
        return "://" not in str(self.save_dir)

    def save(self, name, **kwargs):
        """Same as :meth:`Checkpointer.save`: ``<save_dir>/<name>.pth``, then the tag."""
        if not self.save_dir or not self.save_to_disk:
            return
        if not self._local():
            return super().save(name, **kwargs)
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        assert os.path.basename(save_file) == basename, basename
        self.logger.info(f"Saving checkpoint to {save_file}")
        with atomic_write(save_file, "wb") as f:
            torch.save(data, _maybe_pausing(f, basename, "pth"))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename):
        """Write ``<save_dir>/last_checkpoint`` (the name of the last complete checkpoint)."""
        if not self._local():
            return super().tag_last_checkpoint(last_filename_basename)
        save_file = os.path.join(self.save_dir, "last_checkpoint")
        with atomic_write(save_file, "w") as f:
            _maybe_pausing(f, last_filename_basename, "tag").write(last_filename_basename)

    def remove_temporary_files(self):
        """
        Delete the ``.<name>.*.tmp`` files of saves that were killed, with a warning.

        Returns:
            list[str]: the removed paths.
        """
        if not self.save_dir or not self.save_to_disk or not self._local() or not os.path.isdir(self.save_dir):
            return []
        removed = []
        for name in sorted(os.listdir(self.save_dir)):
            if _is_temporary_file(name):
                path = os.path.join(self.save_dir, name)
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                    removed.append(path)
                    logger.warning(f"Removed {path}: the partial file of a checkpoint save that was interrupted")
        return removed

    def load(self, path, *args, **kwargs):
        """Same as :meth:`DetectionCheckpointer.load`, with a clear error when ``path`` cannot
        be read or downloaded (:func:`check_weights_available`)."""
        if path:
            check_weights_available(path, self.path_manager)
        return super().load(path, *args, **kwargs)

    def resume_or_load(self, path, *, resume=True):
        """Same as :meth:`Checkpointer.resume_or_load`, after :meth:`remove_temporary_files`
        when resuming."""
        if resume:
            self.remove_temporary_files()
        return super().resume_or_load(path, resume=resume)
