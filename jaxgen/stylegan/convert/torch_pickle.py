"""PyTorch's serialised tensors read as NumPy arrays, without torch and without running pickled code.

Three containers hold them:
  plain pickles   `pickle.dump` of objects holding tensors (NVIDIA's release pickles): each storage is
                  pickled as `torch.storage._load_from_bytes(<a legacy torch.save of the storage>)`.
  legacy saves    `torch.save(..., _use_new_zipfile_serialization=False)`: pickles of a magic number,
                  the protocol, system info, the object (storages as persistent ids), the storage keys,
                  then each storage's element count (int64) and raw little-endian bytes, in key order.
  zip saves       today's `torch.save` (rosinality's checkpoints): `<prefix>/data.pkl` with storages
                  as persistent ids and each storage's raw bytes in `<prefix>/data/<key>`.

A tensor is `_rebuild_tensor_v2(storage, offset, size, stride, ...)`: here a strided NumPy view of the
storage's array. `RestrictedUnpickler` resolves only the names in its table; what it should do with
any other name is the caller's choice (`unknown`): refuse, or stand in an inert placeholder.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile

import ml_dtypes
import numpy as np

from jaxgen.errors import WeightsError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

STORAGE_DTYPES = {  # torch.<Name>Storage -> element type
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
    "UntypedStorage": np.uint8,
}
TORCH_DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16,
                "int64": np.int64, "int32": np.int32, "int16": np.int16, "int8": np.int8, "uint8": np.uint8,
                "bool": np.bool_}


class StorageType:
    """Stands for a torch storage class named in a pickle; only its element type matters."""

    def __init__(self, name: str):
        self.name, self.dtype = name, np.dtype(STORAGE_DTYPES[name])


class Inert:
    """Stands in for any class or function a pickle names that reading does not need: calling it only
    records the arguments, and pickled state lands in `.state`."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state


def inert_class(module: str, name: str) -> type:
    return type(f"Inert[{module}.{name}]", (Inert,), {})


# ----------------------------------------------------------------------------- tensors

def rebuild_tensor(storage, offset, size, stride, *unused):
    """`torch._utils._rebuild_tensor(_v2)`: a strided view of the storage's elements."""
    if not isinstance(storage, np.ndarray):
        raise WeightsError(f"a tensor's storage is a {type(storage).__name__}, not a storage")
    size, stride = tuple(int(n) for n in size), tuple(int(s) for s in stride)
    if any(n == 0 for n in size):
        return np.zeros(size, storage.dtype)
    last = int(offset) + sum((n - 1) * s for n, s in zip(size, stride))
    if offset < 0 or any(s < 0 for s in stride) or last >= storage.size:
        raise WeightsError(f"a tensor of size {size} reaches past its storage of {storage.size} elements")
    return np.lib.stride_tricks.as_strided(storage[int(offset):], size, [s * storage.itemsize for s in stride])


def rebuild_parameter(data, *unused):
    """`torch._utils._rebuild_parameter(_with_state)`: a Parameter is its tensor."""
    return data


def rebuild_from_type(function, new_type, args, state):
    """`torch._tensor._rebuild_from_type_v2`: tensors pickled with a Python state; only plain tensors."""
    if not (isinstance(new_type, type) and issubclass(new_type, TensorClass)):
        raise WeightsError(f"a tensor subclass ({getattr(new_type, '__name__', new_type)}) is not supported")
    return function(*args)


class TensorClass:
    """Stands for torch.Tensor / torch.nn.Parameter as named by `_rebuild_from_type_v2`."""


class Namespace(dict):
    """argparse.Namespace (training options saved in rosinality's checkpoints), kept as a dict."""

    def __setstate__(self, state):
        self.update(state if isinstance(state, dict) else {})


TENSOR_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): rebuild_from_type,
    ("torch", "Tensor"): TensorClass,
    ("torch.nn.parameter", "Parameter"): TensorClass,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("argparse", "Namespace"): Namespace,
    **{("torch", name): StorageType(name) for name in STORAGE_DTYPES},
    **{("torch.cuda", name): StorageType(name) for name in STORAGE_DTYPES},  # saved from a GPU: same bytes
    **{("torch", name): np.dtype(dtype) for name, dtype in TORCH_DTYPES.items()},
}


def refuse(module: str, name: str):
    raise pickle.UnpicklingError(f"it names {module}.{name}, which a checkpoint of tensors does not need")


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves the names in `allowed` (plus the tensor rebuilders); `unknown(module, name)` decides
    about the rest (default: refuse). `storage(pid)` answers persistent ids."""

    def __init__(self, file, allowed=None, unknown=refuse, storage=None):
        super().__init__(file)
        self.allowed = {**TENSOR_GLOBALS, **(allowed or {})}
        self.unknown = unknown
        self.storage = storage

    def find_class(self, module, name):
        if (module, name) in self.allowed:
            return self.allowed[(module, name)]
        return self.unknown(module, name)

    def persistent_load(self, pid):
        if self.storage is None:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        return self.storage(pid)


def _storage_record(pid):
    """(storage type, key, element count, view metadata) of a ('storage', ...) persistent id."""
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], StorageType)):
        raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
    return pid[1], str(pid[2]), int(pid[4]), (pid[5] if len(pid) > 5 else None)


# ----------------------------------------------------------------------------- the two torch.save formats

def load_legacy(data: bytes, allowed=None, unknown=refuse):
    """The object of a legacy-format `torch.save`, tensors as NumPy arrays."""
    file = io.BytesIO(data)
    plain = lambda: RestrictedUnpickler(file).load()
    if plain() != LEGACY_MAGIC or plain() != LEGACY_PROTOCOL:
        raise pickle.UnpicklingError("not a torch.save file (legacy format)")
    system = plain()
    if isinstance(system, dict) and not system.get("little_endian", True):
        raise pickle.UnpicklingError("saved on a big-endian machine, which is not supported")
    storages = {}

    def storage(pid):
        kind, key, count, view = _storage_record(pid)
        if key not in storages:  # filled in place below, after the object: its views see the data
            storages[key] = np.empty(count, kind.dtype)
        if view is not None:
            _, offset, view_size = view
            return storages[key][int(offset):int(offset) + int(view_size)]
        return storages[key]

    result = RestrictedUnpickler(file, allowed, unknown, storage).load()
    for key in plain():
        array = storages[str(key)]
        (count,) = struct.unpack("<q", file.read(8))
        raw = file.read(count * array.itemsize)
        if count != array.size or len(raw) != array.nbytes:
            raise pickle.UnpicklingError(f"storage {key} is cut short or does not match its record")
        array.view(np.uint8)[:] = np.frombuffer(raw, np.uint8)
    return result


def load_zip(path_or_file, allowed=None, unknown=refuse):
    """The object of a zip-format `torch.save`, tensors as NumPy arrays."""
    with zipfile.ZipFile(path_or_file) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise pickle.UnpicklingError("a torch.save zip holds exactly one data.pkl")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = f"{prefix}byteorder"
        if byteorder in names and archive.read(byteorder).strip() != b"little":
            raise pickle.UnpicklingError("saved on a big-endian machine, which is not supported")
        storages = {}

        def storage(pid):
            kind, key, count, _ = _storage_record(pid)
            if key not in storages:
                raw = bytearray(archive.read(f"{prefix}data/{key}"))
                if len(raw) < count * kind.dtype.itemsize:
                    raise pickle.UnpicklingError(f"storage {key} is cut short")
                storages[key] = np.frombuffer(raw, kind.dtype, count)
            return storages[key].view(kind.dtype)

        with archive.open(pickles[0]) as file:
            return RestrictedUnpickler(file, allowed, unknown, storage).load()


def load(path, allowed=None, unknown=refuse):
    """A `torch.save` file (zip or legacy format) with tensors as NumPy arrays; WeightsError naming
    the file and the reason when it holds anything else (no pickled code is ever run)."""
    try:
        if zipfile.is_zipfile(path):
            return load_zip(path, allowed, unknown)
        with open(path, "rb") as file:
            return load_legacy(file.read(), allowed, unknown)
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, KeyError, ValueError, struct.error) as error:
        raise WeightsError(f"{path} could not be read as a checkpoint of tensors: {error}") from error


def load_from_bytes(data: bytes):
    """`torch.storage._load_from_bytes`, as NVIDIA's release pickles name it: a storage's array."""
    return load_legacy(data)
