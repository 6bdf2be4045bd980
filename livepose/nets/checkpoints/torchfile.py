"""Read PyTorch checkpoints into numpy arrays without importing torch, and without running their pickles.

A ``.pth`` file is a pickle, and an ordinary unpickler will call any function the file names. Here the
unpickler resolves globals against a short allowlist of *our own* rebuild functions (never torch's or the
named module's), so a hostile file can at most describe tensors; anything else raises
:class:`UnsafeCheckpointError` before a single call is made.

Two containers are read (as written by ``torch.save`` in torch 2.x, ``torch/serialization.py``):

* zip (torch >= 1.6): ``<prefix>/data.pkl`` is the pickle, ``<prefix>/data/<key>`` holds each storage's raw
  bytes, ``<prefix>/byteorder`` says ``little`` or ``big`` (absent in old files: little).
* legacy (``_use_new_zipfile_serialization=False``, and every file from torch 0.4 to 1.5): consecutive
  pickles ``MAGIC_NUMBER``, ``PROTOCOL_VERSION``, ``sys_info``, the object, the sorted list of storage keys;
  then, per key in that order, an int64 little-endian element count followed by the storage's raw bytes.

Storages are referenced from the object pickle through persistent ids, ``('storage', storage_type, key,
location, numel[, view_metadata])``; tensors are ``torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, ...)``. The storage bytes of a legacy file only come *after* the object pickle, so tensors are
built as placeholders and turned into arrays once every storage has been read.
"""

from __future__ import annotations

import codecs
import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

#: torch storage class name -> numpy dtype of its elements ("bfloat16" has none: read as uint16, widened)
STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "BFloat16Storage": "<u2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
    "UntypedStorage": "u1",
}
STORAGE_MODULES = ("torch", "torch.cuda")


class CheckpointError(ValueError):
    """The file is not a readable PyTorch checkpoint (truncated, corrupt, or an unsupported layout)."""


class UnsafeCheckpointError(CheckpointError):
    """The pickle asks for something outside the allowlist; nothing it names has been called."""


# --- placeholders built while unpickling ----------------------------------------------------------------


class _Frozen:
    """Base of our placeholder objects: a pickle may not set attributes on them (BUILD opcode)."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise UnsafeCheckpointError(f"pickle tries to set state on a {type(self).__name__}; refused")


class _StorageType(_Frozen):
    __slots__ = ("name", "dtype")

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


@dataclass(frozen=True)
class _StorageRef:
    """A (possibly offset) view of one serialized storage, counted in elements."""

    key: str
    name: str
    dtype: np.dtype
    offset: int
    numel: int

    def __setstate__(self, state: Any) -> None:
        raise UnsafeCheckpointError("pickle tries to set state on a storage; refused")


class _LazyTensor(_Frozen):
    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage: Any, offset: Any, size: Any, stride: Any) -> None:
        if not isinstance(storage, _StorageRef):
            raise UnsafeCheckpointError(f"tensor rebuilt from a {type(storage).__name__}, not a storage; refused")
        self.storage, self.offset = storage, _int(offset, "storage offset")
        self.size = tuple(_int(s, "tensor size") for s in size)
        self.stride = tuple(_int(s, "tensor stride") for s in stride)
        if len(self.size) != len(self.stride):
            raise CheckpointError(f"tensor has {len(self.size)} sizes but {len(self.stride)} strides")


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CheckpointError(f"{what} must be a non-negative int, got {value!r}")
    return value


# --- the allowlist: our own reimplementations, keyed by the global the pickle names ----------------------


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, *_: Any) -> _LazyTensor:
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data: Any, *_: Any) -> Any:
    return data


def _torch_size(dims: Any = ()) -> tuple:
    return tuple(_int(d, "torch.Size entry") for d in dims)


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    """Protocol-2 pickles write bytes as ``_codecs.encode(str, 'latin1')``; only that is allowed."""
    if not isinstance(text, str) or codecs.lookup(encoding).name not in ("latin-1", "iso8859-1", "utf-8"):
        raise UnsafeCheckpointError(f"_codecs.encode({type(text).__name__}, {encoding!r}) refused")
    return text.encode(encoding)


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UnsafeCheckpointError("numpy scalar of an object dtype, or without raw bytes; refused")
    return np.frombuffer(data, dtype)[0]


def _numpy_dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    if not isinstance(spec, str):
        raise UnsafeCheckpointError(f"numpy dtype from a {type(spec).__name__}; refused")
    dtype = np.dtype(spec)
    if dtype.hasobject:
        raise UnsafeCheckpointError("numpy object dtype refused")
    return dtype


def _numpy_reconstruct(cls: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy arrays pickle as ``_reconstruct(ndarray, (0,), b'b')`` then ``__setstate__`` with raw bytes."""
    if cls is not np.ndarray:
        raise UnsafeCheckpointError(f"numpy _reconstruct of {cls!r}; only ndarray is allowed")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


_TORCH_UTILS = "torch._utils"
ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    (_TORCH_UTILS, "_rebuild_tensor"): _rebuild_tensor,
    (_TORCH_UTILS, "_rebuild_tensor_v2"): _rebuild_tensor,
    (_TORCH_UTILS, "_rebuild_parameter"): _rebuild_parameter,
    (_TORCH_UTILS, "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): _torch_size,
    ("_codecs", "encode"): _codecs_encode,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, persistent_load: Callable[[Any], Any] | None = None) -> None:
        super().__init__(file, encoding="latin1")  # py2-era checkpoints: bytes -> str, as torch.load does
        self._persistent = persistent_load

    def find_class(self, module: str, name: str) -> Any:
        if module in STORAGE_MODULES and name in STORAGE_DTYPES:
            return _StorageType(name)
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"checkpoint pickle references the global {module}.{name}, which is not on the allowlist of "
                "tensor-rebuilding functions; refusing to load it (nothing was executed)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise UnsafeCheckpointError(f"unexpected persistent id {pid!r} outside the object pickle")
        return self._persistent(pid)


# --- containers -----------------------------------------------------------------------------------------


class _Storages:
    """Collects storage references while unpickling; raw bytes are attached afterwards."""

    def __init__(self) -> None:
        self.roots: dict[str, tuple[str, np.dtype, int]] = {}  # key -> (storage name, dtype, numel)
        self.data: dict[str, np.ndarray] = {}

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not isinstance(pid, tuple) or not pid or pid[0] not in ("storage", b"storage"):
            raise UnsafeCheckpointError(f"unknown persistent id {pid!r}: only ('storage', ...) is allowed")
        if len(pid) not in (5, 6) or not isinstance(pid[1], _StorageType):
            raise UnsafeCheckpointError(f"malformed storage persistent id {pid!r}")
        stype, key, numel = pid[1], str(pid[2]), _int(pid[4], "storage size")
        if key in self.roots and self.roots[key][1] != stype.dtype:
            raise CheckpointError(f"storage {key} is referenced with two element types")
        self.roots.setdefault(key, (stype.name, stype.dtype, numel))
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return _StorageRef(key, stype.name, stype.dtype, 0, self.roots[key][2])
        _, offset, size = view
        return _StorageRef(key, stype.name, stype.dtype, _int(offset, "view offset"), _int(size, "view size"))

    def attach(self, key: str, raw: bytes, big_endian: bool) -> None:
        name, dtype, numel = self.roots[key]
        if len(raw) != numel * dtype.itemsize:
            raise CheckpointError(
                f"storage {key} holds {len(raw)} bytes, expected {numel} x {dtype.itemsize}: file truncated or corrupt"
            )
        arr = np.frombuffer(raw, dtype.newbyteorder(">") if big_endian else dtype)
        self.data[key] = _widen_bfloat16(arr) if name == "BFloat16Storage" else arr

    def tensor(self, t: _LazyTensor) -> np.ndarray:
        ref = t.storage
        if ref.key not in self.data:
            raise CheckpointError(f"storage {ref.key} is referenced but its data is missing from the file")
        flat = self.data[ref.key]
        if ref.offset + ref.numel > flat.size:
            raise CheckpointError(f"storage view {ref.key}[{ref.offset}:+{ref.numel}] runs past its storage")
        flat = flat[ref.offset: ref.offset + ref.numel]
        if 0 in t.size:
            return np.zeros(t.size, flat.dtype)
        last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride))
        if last >= flat.size:
            raise CheckpointError(
                f"tensor of size {t.size}, stride {t.stride}, offset {t.offset} reads past its storage of "
                f"{flat.size} elements: corrupt checkpoint"
            )
        strides = tuple(s * flat.itemsize for s in t.stride)
        return np.lib.stride_tricks.as_strided(flat[t.offset:], t.size, strides, writeable=False).copy()

    def resolve(self, obj: Any) -> Any:
        """Replace every placeholder tensor in the unpickled tree by its array."""
        if isinstance(obj, _LazyTensor):
            return self.tensor(obj)
        if isinstance(obj, (_StorageRef, _StorageType)):
            raise CheckpointError("checkpoint holds a bare storage, not a tensor; unsupported")
        if isinstance(obj, dict):
            return type(obj)((k, self.resolve(v)) for k, v in obj.items())
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.resolve(v) for v in obj)
        return obj


def _widen_bfloat16(raw: np.ndarray) -> np.ndarray:
    return (raw.astype(np.uint32) << 16).view(np.float32)


def _load_zip(data: bytes) -> Any:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        names = zf.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"zip checkpoint is truncated or corrupt ({e})") from e
    pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise CheckpointError(f"zip file has no single '<prefix>/data.pkl'; not a torch.save checkpoint")
    prefix = pickles[0][: -len("data.pkl")]
    storages = _Storages()
    try:
        byteorder = zf.read(prefix + "byteorder").decode() if prefix + "byteorder" in names else "little"
        obj = _RestrictedUnpickler(io.BytesIO(zf.read(pickles[0])), storages.persistent_load).load()
        for key in storages.roots:
            member = f"{prefix}data/{key}"
            if member not in names:
                raise CheckpointError(f"storage record {member} is missing: truncated or corrupt")
            storages.attach(key, zf.read(member), byteorder == "big")
    except CheckpointError:
        raise
    except Exception as e:  # any other failure to parse untrusted bytes is a corrupt file, reported as one
        raise CheckpointError(f"zip checkpoint is truncated or corrupt ({type(e).__name__}: {e})") from e
    return storages.resolve(obj)


def _load_legacy(f: BinaryIO) -> Any:
    def plain() -> Any:
        return _RestrictedUnpickler(f).load()

    storages = _Storages()
    try:
        if plain() != MAGIC_NUMBER:
            raise CheckpointError(f"not a PyTorch checkpoint (no torch.save magic number)")
        protocol = plain()
        if protocol != PROTOCOL_VERSION:
            raise CheckpointError(f"legacy protocol {protocol!r}, expected {PROTOCOL_VERSION}")
        sys_info = plain()
        big_endian = isinstance(sys_info, dict) and sys_info.get("little_endian") is False
        obj = _RestrictedUnpickler(f, storages.persistent_load).load()
        keys = plain()
        if not isinstance(keys, list) or set(map(str, keys)) != set(storages.roots):
            raise CheckpointError(f"storage key list does not match the storages the pickle uses")
        for key in map(str, keys):
            header = f.read(8)
            if len(header) != 8:
                raise CheckpointError(f"file ends before storage {key}: truncated")
            (count,) = struct.unpack("<q", header)
            itemsize = storages.roots[key][1].itemsize
            if count != storages.roots[key][2]:
                raise CheckpointError(f"storage {key} holds {count} elements, the pickle says "
                                      f"{storages.roots[key][2]}: corrupt")
            storages.attach(key, f.read(count * itemsize), big_endian)
    except CheckpointError:
        raise
    except Exception as e:  # any other failure to parse untrusted bytes is a corrupt file, reported as one
        raise CheckpointError(f"legacy checkpoint is truncated or corrupt ({type(e).__name__}: {e})") from e
    return storages.resolve(obj)


def load_checkpoint(path: str | Path) -> Any:
    """Unpickle a ``torch.save`` file with tensors as numpy arrays; never executes code from the file."""
    path = Path(path)
    data = path.read_bytes()
    try:
        if data[:4] == b"PK\x03\x04":
            return _load_zip(data)
        if len(data) > 262 and data[257:262] == b"ustar":
            raise CheckpointError("tar checkpoint (torch < 0.4) is not supported; re-save it with torch.save")
        return _load_legacy(io.BytesIO(data))
    except CheckpointError as e:
        raise type(e)(f"{path}: {e}") from e.__cause__


#: wrappers training scripts put around the weights, tried in order
STATE_DICT_KEYS = ("state_dict", "model", "net")


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The weights of a checkpoint as ``{torch key: array}``, unwrapped from ``{'state_dict': ...}`` etc."""
    obj = load_checkpoint(path)
    while isinstance(obj, dict):
        inner = next((obj[k] for k in STATE_DICT_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, np.ndarray)}
    if not tensors:
        raise CheckpointError(f"{path}: no tensors found (top-level keys: {sorted(map(str, obj))[:10]})")
    return tensors
