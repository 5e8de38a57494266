"""
Counting, on the CPU, the host synchronizations code would make on a CUDA device.

On a CUDA device the host waits for the device whenever it needs a value the device computed
(``.item()``, ``.tolist()``, ``bool(t)``, ``.cpu()``), whenever an op's output shape depends on
the data (``nonzero``, boolean-mask indexing, ``unique``, ...) and whenever it copies host data
to the device with a blocking copy (``torch.tensor(data, device=...)``, ``.to(device)`` of a
CPU tensor, indexing a device tensor with a Python list). On the CPU none of these cost
anything, so the CPU test suite cannot see them by timing. :class:`HostSyncCounter` sees them
by the calls themselves: it is a ``TorchFunctionMode`` that looks at every torch call made
while it is active.

To tell host data from device data while everything runs on the CPU, it keeps track of which
tensors *live on the host*: the tensors given to it (e.g. the model's inputs, as a data loader
gives them), those created without a ``device`` argument (``torch.tensor([...])``,
``torch.zeros(3)``, ``torch.from_numpy``), the results of ``.cpu()`` and ``.pin_memory()``,
and what ops compute from host tensors alone. Every other tensor is taken to live on the
device: the model's parameters and buffers, tensors created with ``device=...``, and the
results of ops with a device tensor among their inputs. Convention: code refers to its device
by a ``torch.device`` (``model.device``, ``tensor.device``), so ``.to(torch.device("cpu"))``
means "to the device", while ``.to("cpu")`` (a string) and ``.cpu()`` mean "to the host".

What is counted (``syncs``, by kind and call):

- ``read``: a device value read on the host: ``item``, ``tolist``, ``numpy``, ``__bool__``,
  ``__int__``, ``__float__``, ``__index__``, ``__format__``/``__repr__``, ``torch.equal``,
  ``allclose``, ``is_nonzero``, indexing with a 0-dim device integer or bool tensor, each device
  tensor in the data of ``torch.tensor([...])``/``as_tensor([...])``;
- ``shape``: ops whose output shape depends on device data: ``nonzero``, ``argwhere``,
  one-argument ``where``, ``masked_select``, ``unique``, ``unique_consecutive``,
  ``repeat_interleave`` with tensor repeats and no ``output_size``, ``bincount``, ``histc``,
  boolean-mask indexing (``x[mask]``, ``x[mask] = v``, ``index_put_`` with a mask),
  ``masked_scatter``, and ``torch.linalg`` calls that check for errors (``inv``, ``solve``,
  ``cholesky``: their ``_ex`` forms do not);
- ``d2h``: ``.cpu()`` or ``.to("cpu")`` of a device tensor;
- ``h2d``: a blocking copy of host data to the device: ``torch.tensor``/``as_tensor``/
  ``asarray`` with data and a ``device``, ``new_tensor`` of a device tensor, ``.to(device)``,
  ``.cuda()`` or ``copy_`` of a host tensor without ``non_blocking=True``, indexing a device
  tensor with a Python list or a host tensor, assigning a host tensor into a device tensor.

``mismatches`` counts ops that mix a host tensor of more than one element with device tensors:
on CUDA they raise ("expected all tensors to be on the same device"); 0-dim host tensors mix
freely, as CPU scalars do on CUDA.

``device_calls`` counts every call that touches device data and makes new data or writes
some (metadata such as ``.shape``, ``.dim()`` or ``len()`` excluded, and views, counted in
``device_views``): a proxy of kernel launches, which must not grow with the number of persons
either. ``host_calls`` counts the calls on host data alone.
"""
import collections
import os
import traceback

import numpy as np
import torch
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

__all__ = ["HostSyncCounter", "host_tensors_of", "model_host_tensors"]

_THIS_FILE = os.path.abspath(__file__)


def _name(func):
    name = getattr(func, "__name__", None) or repr(func)
    if name == "fn" and getattr(func, "__module__", "") == "torch.functional":
        return "unique"  # torch.unique is a boolean_dispatch wrapper named "fn"
    return name


READS = {
    "item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__", "__complex__",
    "__format__", "__repr__", "__str__", "__array__", "equal", "allclose", "is_nonzero",
}  # fmt: skip
SHAPE_DEPENDENT = {
    "nonzero", "argwhere", "masked_select", "unique", "unique_consecutive", "_unique", "_unique2",
    "bincount", "histc", "masked_scatter", "masked_scatter_", "inv", "inverse", "solve", "cholesky",
    "lstsq", "matrix_rank", "eigh", "eig",
}  # fmt: skip
METADATA = {
    "__get__", "__set__", "dim", "ndimension", "size", "stride", "numel", "nelement", "__len__",
    "is_floating_point", "is_complex", "element_size", "is_contiguous", "get_device", "data_ptr",
    "storage_offset", "__hash__", "has_names", "is_pinned", "untyped_storage", "_is_view",
    "requires_grad_", "__reduce_ex__", "__deepcopy__", "__torch_function__",
}  # fmt: skip
# factory functions: their output lives where their device argument says
DATA_FACTORIES = {"tensor", "as_tensor", "asarray", "from_numpy", "frombuffer", "scalar_tensor"}
TO_HOST_STRINGS = ("cpu",)


def _in_place(name):
    """``add_``, ``__iadd__``, ``__setitem__``: ops that write into their first argument."""
    if name.startswith("__"):
        return name == "__setitem__" or (name.startswith("__i") and name not in ("__index__", "__int__", "__invert__"))
    return name.endswith("_")


def _aliases(result, inputs):
    """Every tensor of ``result`` shares the memory of one of ``inputs`` (views, no-op .to())."""
    outputs = _tensors(result)
    if not outputs:
        return False
    pointers = {t.untyped_storage().data_ptr() for t in inputs if t.numel()}
    return all(t.numel() == 0 or t.untyped_storage().data_ptr() in pointers for t in outputs)


def _tensors(obj, out=None):
    """Every tensor in nested lists, tuples and dicts."""
    out = [] if out is None else out
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            _tensors(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _tensors(o, out)
    return out


def host_tensors_of(obj, out=None, depth=0):
    """
    The tensors held by inputs as a data loader gives them: dicts, lists, Detectron2's
    ``Instances`` and the structures in them (``Keypoints``, ``Boxes``, ``BitMasks``).
    """
    out = [] if out is None else out
    if depth > 6:
        return out
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            host_tensors_of(v, out, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            host_tensors_of(v, out, depth + 1)
    elif hasattr(obj, "get_fields"):
        host_tensors_of(obj.get_fields(), out, depth + 1)
    elif isinstance(getattr(obj, "tensor", None), torch.Tensor):
        out.append(obj.tensor)
    return out


def model_host_tensors(model, inputs):
    """
    What a counter must take as host data in a call of ``model`` on ``inputs``: the inputs'
    tensors (:func:`host_tensors_of`) and the model's pose templates, which
    :class:`~pose2seg_d2.pose.PoseTemplates` keeps on the host (models without an ``aligner``
    holding templates have none).
    """
    host = host_tensors_of(inputs)
    templates = getattr(getattr(model, "aligner", None), "templates", None)
    if templates is not None:
        host += [templates.templates, templates.raw_templates]
    return host


class HostSyncCounter(TorchFunctionMode):
    """
    Counts what would make the host wait for a CUDA device (see the module docstring).

    Args:
        host_tensors (iterable[Tensor]): tensors that live on the host (the inputs).
        where (str): a path fragment; each counted call records the first stack frame whose
            file contains it (e.g. "pose2seg_d2"), to say where a sync comes from.
    """

    def __init__(self, host_tensors=(), where=os.sep + "pose2seg_d2" + os.sep):
        super().__init__()
        self._host = WeakIdKeyDictionary()
        for t in host_tensors:
            self._host[t] = True
        self.where = where
        self.syncs = collections.Counter()  # (kind, call) -> count
        self.mismatches = collections.Counter()
        self.device_calls = collections.Counter()
        self.device_views = collections.Counter()
        self.host_calls = collections.Counter()
        self.locations = collections.defaultdict(collections.Counter)  # (kind, call) -> {frame: n}

    # ------------------------------------------------------------------ results
    @property
    def total_syncs(self):
        return sum(self.syncs.values())

    @property
    def total_device_calls(self):
        return sum(self.device_calls.values())

    def report(self):
        """A readable account of what was counted, with where each sync was made."""
        lines = [f"{self.total_syncs} syncs, {sum(self.mismatches.values())} device mismatches, "
                 f"{self.total_device_calls} device calls, {sum(self.device_views.values())} views, "
                 f"{sum(self.host_calls.values())} host calls"]  # fmt: skip
        for key, n in sorted(self.syncs.items()):
            places = ", ".join(f"{p} x{c}" for p, c in self.locations[key].most_common(4))
            lines.append(f"  sync {key[0]} {key[1]} x{n}: {places}")
        for key, n in sorted(self.mismatches.items()):
            places = ", ".join(f"{p} x{c}" for p, c in self.locations[("mismatch", key)].most_common(4))
            lines.append(f"  mismatch {key} x{n}: {places}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ residency
    def is_host(self, t):
        return isinstance(t, torch.Tensor) and t in self._host

    def _is_device(self, t):
        return isinstance(t, torch.Tensor) and t not in self._host

    def _mark_host(self, result):
        for t in _tensors(result):
            self._host[t] = True

    def _unmark(self, result):
        for t in _tensors(result):
            if t in self._host:
                del self._host[t]

    # ------------------------------------------------------------------ counting
    def _where(self):
        for frame in reversed(traceback.extract_stack()):
            if self.where in frame.filename and os.path.abspath(frame.filename) != _THIS_FILE:
                return f"{os.path.basename(frame.filename)}:{frame.lineno}"
        return "?"

    def _sync(self, kind, name):
        self.syncs[(kind, name)] += 1
        self.locations[(kind, name)][self._where()] += 1

    def _mismatch(self, name):
        self.mismatches[name] += 1
        self.locations[("mismatch", name)][self._where()] += 1

    def _index_kind(self, index):
        """What indexing a device tensor with ``index`` costs: None, "read", "shape" or "h2d"."""
        items = index if isinstance(index, tuple) else (index,)
        for item in items:
            if isinstance(item, torch.Tensor):
                if item.dtype in (torch.bool, torch.uint8):
                    if self._is_device(item):
                        return "read" if item.dim() == 0 else "shape"
                    return "h2d"
                if self._is_device(item) and item.dim() == 0:
                    return "read"  # converted to an int by .item()
                if self.is_host(item) and item.dim() > 0:
                    return "h2d"
            elif isinstance(item, (list, np.ndarray)):
                return "h2d"
        return None

    @staticmethod
    def _target(func_name, args, kwargs):
        """(device target given: None / "host" / "device", non_blocking) of a .to() call."""
        target, non_blocking = None, bool(kwargs.get("non_blocking", False))
        device = kwargs.get("device")
        rest = list(args[1:])
        if rest and isinstance(rest[0], (torch.device, str, int)) and not isinstance(rest[0], bool):
            device = rest[0]
            if len(rest) > 2:
                non_blocking = bool(rest[2])
        elif rest and isinstance(rest[0], torch.Tensor):
            device = rest[0]
            if len(rest) > 1:
                non_blocking = bool(rest[1])
        elif rest and isinstance(rest[0], torch.dtype) and len(rest) > 1:
            non_blocking = bool(rest[1])
        if device is not None:
            target = "host" if isinstance(device, str) and device in TO_HOST_STRINGS else "device"
            if isinstance(device, torch.Tensor):
                target = device  # decided by the other tensor's residency
        return target, non_blocking

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = _name(func)
        if name in METADATA:
            result = func(*args, **kwargs)
            if name == "__get__" and args and self.is_host(args[0]):
                self._mark_host(result)  # e.g. .T, .grad, .data of a host tensor
            return result
        inputs = _tensors(list(args)) + _tensors(list(kwargs.values()))
        device_inputs = [t for t in inputs if self._is_device(t)]
        self_tensor = args[0] if args and isinstance(args[0], torch.Tensor) else None
        residency = self._count_call(name, args, kwargs, inputs, device_inputs, self_tensor)
        result = func(*args, **kwargs)
        return self._record_result(name, result, residency, kwargs, inputs, device_inputs, self_tensor)

    def _count_call(self, name, args, kwargs, inputs, device_inputs, self_tensor):
        """Count what the call would synchronize; returns where its result lives, "host" or
        "device"."""
        if name in ("to", "cuda"):
            return self._count_move(name, args, kwargs, self_tensor)
        if name == "cpu":
            if self._is_device(self_tensor):
                self._sync("d2h", name)
            return "host"
        if name == "pin_memory":
            return "host"
        if name in READS:
            if device_inputs:
                self._sync("read", name)
            return "host" if not device_inputs else "device"
        if name in DATA_FACTORIES or name == "new_tensor":
            return self._count_factory(name, args, kwargs, self_tensor)
        if name in ("__getitem__", "__setitem__", "index_put_", "index_put"):
            return self._count_indexing(name, args)
        if name == "copy_":
            return self._count_copy_into(name, args, kwargs)
        return self._count_op(name, args, kwargs, inputs, device_inputs, self_tensor)

    def _count_move(self, name, args, kwargs, self_tensor):
        """``.to(...)`` and ``.cuda()``."""
        if name == "cuda":
            target, non_blocking = "device", bool(kwargs.get("non_blocking", args[2] if len(args) > 2 else False))
        else:
            target, non_blocking = self._target(name, args, kwargs)
        if isinstance(target, torch.Tensor):
            target = "host" if self.is_host(target) else "device"
        if target is None:
            return "host" if self.is_host(self_tensor) else "device"
        if target == "host":
            if self._is_device(self_tensor):
                self._sync("d2h", name)
            return "host"
        if self.is_host(self_tensor) and not non_blocking:
            self._sync("h2d", name)
        return "device"

    def _count_factory(self, name, args, kwargs, self_tensor):
        """``torch.tensor(data, ...)``, ``as_tensor``, ``from_numpy``, ..., ``new_tensor``."""
        device_kwarg = kwargs.get("device")
        data_on_device = name == "new_tensor" and self._is_device(self_tensor)
        to_device = data_on_device or (device_kwarg is not None and device_kwarg not in TO_HOST_STRINGS)
        data = args[1] if name == "new_tensor" else (args[0] if args else kwargs.get("data"))
        from_data = not (isinstance(data, torch.Tensor) and self._is_device(data))
        if isinstance(data, (list, tuple)):
            for _ in (t for t in _tensors(data) if self._is_device(t)):
                self._sync("read", name)  # each device value in the data is read on the host
        if to_device and from_data:
            self._sync("h2d", name)
        return "device" if to_device or not from_data else "host"

    def _count_indexing(self, name, args):
        """``x[index]``, ``x[index] = value`` and ``index_put(_)``."""
        target, index = args[0], args[1]
        if name.startswith("index_put"):
            index = tuple(index)
        if self._is_device(target):
            kind = self._index_kind(index)
            if kind is not None:
                self._sync(kind, name)
            if name == "__setitem__" and self.is_host(args[2]) and args[2].dim() > 0:
                self._sync("h2d", name)
        elif name == "__setitem__" and self._is_device(args[2]) and args[2].dim() > 0:
            self._mismatch(name)
        elif self.is_host(target) and any(self._is_device(t) and t.dim() > 0 for t in _tensors(index)):
            self._mismatch(name)
        return "host" if self.is_host(target) else "device"

    def _count_copy_into(self, name, args, kwargs):
        """``dst.copy_(src)``."""
        dst, src = args[0], args[1]
        non_blocking = bool(kwargs.get("non_blocking", args[2] if len(args) > 2 else False))
        if self._is_device(dst) and self.is_host(src) and src.dim() > 0 and not non_blocking:
            self._sync("h2d", name)
        if self.is_host(dst) and self._is_device(src):
            self._sync("d2h", name)
        return "host" if self.is_host(dst) else "device"

    def _count_op(self, name, args, kwargs, inputs, device_inputs, self_tensor):
        """Every other call: data-dependent shapes, host/device mixing, factories' devices."""
        if name in SHAPE_DEPENDENT and device_inputs:
            self._sync("shape", name)
        elif name == "where" and len(args) + len(kwargs) == 1 and device_inputs:
            self._sync("shape", name)
        elif name == "repeat_interleave" and device_inputs:
            repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
            if isinstance(repeats, torch.Tensor) and kwargs.get("output_size") is None:
                if self._is_device(repeats) or len(args) == 1:
                    self._sync("shape", name)
        if device_inputs and any(t.dim() > 0 for t in inputs if self.is_host(t)):
            self._mismatch(name)
        device_kwarg = kwargs.get("device")
        to_device = device_kwarg is not None and device_kwarg not in TO_HOST_STRINGS
        if not inputs:  # a factory: where its device argument says
            return "device" if to_device else "host"
        if name.startswith("new_") and self_tensor is not None:
            return "device" if (to_device or self._is_device(self_tensor)) else "host"
        if device_kwarg is not None:
            return "host" if device_kwarg in TO_HOST_STRINGS else "device"
        return "host" if not device_inputs else "device"

    def _record_result(self, name, result, residency, kwargs, inputs, device_inputs, self_tensor):
        """Count the call as a device call, a view or a host call, and mark where its result lives."""
        if residency == "device" or device_inputs:
            if _in_place(name) or "out" in kwargs or not _aliases(result, inputs):
                self.device_calls[name] += 1
            else:
                self.device_views[name] += 1  # a view of an input: no kernel
        else:
            self.host_calls[name] += 1
        if "out" in kwargs or _in_place(name):
            return result  # the tensors keep their residency
        if result is self_tensor and name in ("to", "cuda", "cpu") and self.is_host(result) != (residency == "host"):
            # On the CPU, .cpu() and .to(device) give back the tensor itself; on a GPU they give
            # a copy on the other side. A view stands for that copy, so that the tensor itself
            # keeps its residency.
            result = result.view_as(result)
        if residency == "host":
            self._mark_host(result)
        else:
            self._unmark(result)
        return result
