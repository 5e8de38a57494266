"""
Checkpoints that survive a kill: the .pth file and the ``last_checkpoint`` tag are written
atomically (:func:`~.atomic_io.atomic_write`), so ``--resume`` always finds the last complete
checkpoint.

Detectron2's checkpointer (fvcore's ``Checkpointer.save``) writes ``model_XXXXXXX.pth`` in
place and then rewrites ``last_checkpoint`` in place: a training killed during either write
leaves a truncated .pth under its final name (picked up by anyone who takes the newest .pth)
or an empty tag (and ``--resume`` then fails). Here a kill leaves either the old or the new
complete file, plus at most a hidden ``.<name>.*.tmp`` file that nothing loads and that the
next resume removes.
"""
import contextlib
import logging
import os

import torch
from detectron2.checkpoint import DetectionCheckpointer

from .atomic_io import atomic_write, is_temporary_file
from .partial_checkpoints import BASE_WEIGHTS_KEY
from .weights import check_weights_available

__all__ = ["AtomicDetectionCheckpointer"]

logger = logging.getLogger(__name__)


class AtomicDetectionCheckpointer(DetectionCheckpointer):
    """
    :class:`DetectionCheckpointer` whose :meth:`save` and :meth:`tag_last_checkpoint` write
    atomically (see :func:`~.atomic_io.atomic_write`), and whose :meth:`resume_or_load` removes
    the temporary files an interrupted save left behind. Loading is unchanged, except that
    weights that cannot be read or downloaded fail with a
    :class:`~.weights.WeightsUnavailableError` saying what to do, and that a partial checkpoint
    (a head saved alone, :mod:`.partial_checkpoints`) loads over the base checkpoint it names.
    Save folders that are not local (``PathManager`` URLs) fall back to Detectron2's direct
    writes.
    """

    # ``open_for_write(path, mode)``: the context manager each local file is written through,
    # yielding the open file
    open_for_write = staticmethod(atomic_write)

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
        with self.open_for_write(save_file, "wb") as f:
            torch.save(data, f)
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename):
        """Write ``<save_dir>/last_checkpoint`` (the name of the last complete checkpoint)."""
        if not self._local():
            return super().tag_last_checkpoint(last_filename_basename)
        save_file = os.path.join(self.save_dir, "last_checkpoint")
        with self.open_for_write(save_file, "w") as f:
            f.write(last_filename_basename)

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
            if is_temporary_file(name):
                path = os.path.join(self.save_dir, name)
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                    removed.append(path)
                    logger.warning(f"Removed {path}: the partial file of a checkpoint save that was interrupted")
        return removed

    def load(self, path, *args, **kwargs):
        """Same as :meth:`DetectionCheckpointer.load`, with a clear error when ``path`` cannot
        be read or downloaded (:func:`~.weights.check_weights_available`); a partial checkpoint
        (:mod:`.partial_checkpoints`) loads over its base checkpoint (:meth:`_load_file`)."""
        if path:
            check_weights_available(path, self.path_manager)
        return super().load(path, *args, **kwargs)

    def _load_file(self, filename):
        """
        Detectron2's reading of a checkpoint file; a partial checkpoint's weights are put over
        those of the base checkpoint it names, and the two load as one: loading the base and
        then the part would reset what the part lacks in some modules (FrozenBatchNorm2d takes
        running statistics missing from a state dict without version metadata for 0 and 1).
        """
        loaded = super()._load_file(filename)
        base = loaded.pop(BASE_WEIGHTS_KEY, None) if isinstance(loaded, dict) else None
        if not base:
            return loaded
        if os.path.abspath(self.path_manager.get_local_path(base)) == os.path.abspath(filename):
            raise ValueError(f"{filename}: a partial checkpoint names itself as its {BASE_WEIGHTS_KEY}")
        check_weights_available(base, self.path_manager)
        logger.info(f"{filename} holds part of the model; the rest comes from its {BASE_WEIGHTS_KEY} {base}")
        merged = self._load_file(self.path_manager.get_local_path(base))
        merged["model"] = {**merged["model"], **loaded["model"]}
        return merged

    def resume_or_load(self, path, *, resume=True):
        """Same as :meth:`Checkpointer.resume_or_load`, after :meth:`remove_temporary_files`
        when resuming."""
        if resume:
            self.remove_temporary_files()
        return super().resume_or_load(path, resume=resume)
