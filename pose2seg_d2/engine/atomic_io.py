"""
Files written atomically: to a temporary file in the same folder, flushed and fsynced, then
renamed over the final name (``os.replace``, atomic on POSIX), then the folder fsynced. A kill at
any point leaves either the old or the new complete file, plus at most a hidden
``.<name>.*.tmp`` file that nothing loads (:func:`is_temporary_file` tells them apart).
"""
import contextlib
import os
import tempfile

__all__ = ["TEMP_SUFFIX", "atomic_write", "is_temporary_file"]

TEMP_SUFFIX = ".tmp"


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


def is_temporary_file(name):
    """Whether the file name ``name`` (a basename) is one of :func:`atomic_write`'s temporary
    files."""
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
