"""Read tensors from a file written by PyTorch's legacy (non-zip) `torch.save`, without PyTorch.

The legacy format is five consecutive pickles and then raw bytes: a magic number, the protocol version,
system information, the saved object (tensors appear in it as calls to `torch._utils._rebuild_tensor_v2`
on "persistent" storages), and the list of storage keys; then, for each key in that order, an int64
element count and the storage's little-endian bytes. Only the classes such a file of plain tensors needs
are allowed when unpickling, so a crafted file cannot run code (`pickle.load` on a download would).
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# torch storage class → numpy element type, for the storages a file of weights holds.
_STORAGE_DTYPES = {
    "ByteStorage": np.uint8,
    "CharStorage": np.int8,
    "ShortStorage": np.int16,
    "IntStorage": np.int32,
    "LongStorage": np.int64,
    "HalfStorage": np.float16,
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
}


class TorchFileError(ValueError):
    """The file is not a legacy `torch.save` file of plain tensors."""


@dataclass(frozen=True)
class _StorageType:
    dtype: type


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: type
    size: int


@dataclass(frozen=True)
class _TensorView:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return _TensorView(storage, int(storage_offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only tensor placeholders, ordered dicts and builtin values."""

    def find_class(self, module: str, name: str):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return dict
        raise TorchFileError(f"refuses to load {module}.{name}: only tensors of numbers are allowed")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise TorchFileError(f"unexpected persistent object {pid!r:.80}")
        return _Storage(key=str(pid[2]), dtype=pid[1].dtype, size=int(pid[4]))


def load_tensors(source: str | Path | bytes) -> dict[str, np.ndarray]:
    """The `{name: array}` dict saved by `torch.save(dict_of_tensors, path)` in the legacy format, from
    the file at `source` or its bytes."""
    stream = io.BytesIO(source if isinstance(source, bytes) else Path(source).read_bytes())
    try:
        if _restricted_load(stream) != MAGIC_NUMBER:
            raise TorchFileError("not a legacy torch.save file (wrong magic number)")
        if _restricted_load(stream) != PROTOCOL_VERSION:
            raise TorchFileError("unsupported torch.save protocol version")
        _restricted_load(stream)  # system information: endianness and type sizes
        saved = _restricted_load(stream)
        keys = _restricted_load(stream)
    except (pickle.UnpicklingError, EOFError, AttributeError, IndexError, TypeError) as error:
        raise TorchFileError(f"not a legacy torch.save file ({error})") from None
    if not isinstance(saved, dict) or not all(isinstance(value, _TensorView) for value in saved.values()):
        raise TorchFileError("expected a dict of tensors")
    storages = {view.storage.key: view.storage for view in saved.values()}
    buffers = {}
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise TorchFileError(f"storage {key} is not used by any tensor")
        count = int(np.frombuffer(stream.read(8), "<i8")[0])
        itemsize = np.dtype(storage.dtype).itemsize
        raw = stream.read(count * itemsize)
        if count != storage.size or len(raw) != count * itemsize:
            raise TorchFileError(f"storage {key} is truncated or has the wrong size")
        buffers[storage.key] = np.frombuffer(raw, np.dtype(storage.dtype).newbyteorder("<"))
    return {name: _materialize(view, buffers) for name, view in saved.items()}


def _restricted_load(stream: io.BytesIO):
    return _RestrictedUnpickler(stream).load()


def _materialize(view: _TensorView, buffers: dict[str, np.ndarray]) -> np.ndarray:
    buffer = buffers.get(view.storage.key)
    if buffer is None:
        raise TorchFileError(f"storage {view.storage.key} has no data")
    extent = view.offset + sum((length - 1) * step for length, step in zip(view.shape, view.stride)) + 1
    if min(view.shape, default=1) > 0 and (view.offset < 0 or extent > buffer.size):
        raise TorchFileError("a tensor reaches outside its storage")
    strides = tuple(step * buffer.itemsize for step in view.stride)
    array = np.lib.stride_tricks.as_strided(buffer[view.offset:], view.shape, strides, writeable=False)
    return np.array(array, dtype=buffer.dtype.newbyteorder("="))
