"""
A checkpoint save that stops in the middle, for tests/test_kill_resume.py: its training
subprocess calls :func:`pause_checkpoint_write` before train_net's main, so that the test can
SIGKILL it while a checkpoint is being written.
"""
import contextlib
import os
import time

from pose2seg_d2.engine import AtomicDetectionCheckpointer

PAUSE_SECONDS = 300  # longer than the test waits: the kill comes first


class PausingFile:
    """
    A file that, at the first write ``pauses(data)`` accepts, flushes and fsyncs what has been
    written so far, creates the file ``marker`` (holding the process id) and sleeps.
    """

    def __init__(self, f, marker, pauses):
        self._f, self._marker, self._pauses, self._paused = f, marker, pauses, False

    def write(self, data):
        n = self._f.write(data)
        if not self._paused and self._pauses(data):
            self._paused = True
            self._f.flush()
            os.fsync(self._f.fileno())
            with open(self._marker, "w") as m:
                m.write(str(os.getpid()))
            time.sleep(PAUSE_SECONDS)
        return n

    def __getattr__(self, name):
        return getattr(self._f, name)


def pause_checkpoint_write(checkpoint, stage, marker):
    """
    Make :class:`AtomicDetectionCheckpointer` pause in the save of ``checkpoint`` (a .pth
    basename, e.g. "model_0000005.pth"): ``stage`` "pth" after the first bytes of that .pth
    reach its temporary file, "tag" while ``last_checkpoint`` is being written to name it.
    ``marker`` is created when the pause begins.
    """
    if stage not in ("pth", "tag"):
        raise ValueError(f"stage must be 'pth' or 'tag', got {stage!r}")
    write_atomically = AtomicDetectionCheckpointer.open_for_write

    @contextlib.contextmanager
    def open_for_write(path, mode="wb"):
        with write_atomically(path, mode) as f:
            name = os.path.basename(path)
            if stage == "pth" and name == checkpoint:
                yield PausingFile(f, marker, lambda data: True)
            elif stage == "tag" and name == "last_checkpoint":
                yield PausingFile(f, marker, lambda data: data == checkpoint)
            else:
                yield f

    AtomicDetectionCheckpointer.open_for_write = staticmethod(open_for_write)
