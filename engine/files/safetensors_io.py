"""A small, strict reader and writer of the safetensors format (no third-party package).

Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping each
tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (plus an optional
``"__metadata__"`` object of strings), then the raw little-endian tensor bytes. Offsets
are relative to the start of the data block and must tile it exactly.

Reading never executes code and checks everything before allocating: header size, JSON
shape, duplicate keys, dtypes, shapes, offsets and the total number of values. Every
problem is a FileFormatError.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.spec import atomic_write_bytes
from engine.errors import FileFormatError
from engine.files.json_text import parse_json

MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_VALUES = 500_000_000  # numbers in one file (2 GB as float32)
MAX_DIMS = 8
MAX_DIM = 2**31  # one dimension; more is a lie even when another dimension is 0
MAX_FILE_BYTES = 4 * 1024**3

DTYPES: dict[str, np.dtype] = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
}
_CODES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64"}


def dumps(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """Serialise named arrays (float32, float64 or int64) to safetensors bytes."""
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        if name == "__metadata__":
            raise ValueError("'__metadata__' cannot be a tensor name")
        arr = np.asarray(tensors[name])
        code = _CODES.get(arr.dtype)
        if code is None:
            raise ValueError(f"tensor {name!r} has dtype {arr.dtype}; use float32/64 or int64")
        raw = np.ascontiguousarray(arr, dtype=DTYPES[code]).tobytes()
        header[name] = {"dtype": code, "shape": [int(d) for d in arr.shape],
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    head += b" " * (-len(head) % 8)  # pad so the data block starts 8-byte aligned
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def loads(data: bytes, source: str = "the weights",
          max_values: int = MAX_VALUES) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse safetensors bytes into (tensors, metadata). Raises FileFormatError."""
    if len(data) < 8:
        raise FileFormatError(f"{source} is truncated: it is shorter than its 8-byte header.")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        raise FileFormatError(
            f"{source} is damaged or hostile: its header claims {n:,} bytes "
            f"(at most {MAX_HEADER_BYTES:,} allowed).")
    if 8 + n > len(data):
        raise FileFormatError(f"{source} is truncated: the header needs {n:,} bytes but only "
                              f"{len(data) - 8:,} follow.")
    header = parse_json(bytes(data[8:8 + n]), source)
    if not isinstance(header, dict):
        raise FileFormatError(f"{source} is damaged: its header is not a JSON object.")
    body = memoryview(data)[8 + n:]
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise FileFormatError(f"{source} is damaged: '__metadata__' must map text to text.")
    spans: list[tuple[int, int, str]] = []
    plan: list[tuple[str, np.dtype, tuple[int, ...], int, int]] = []
    total = 0
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise FileFormatError(
                f"{source} is damaged: the entry of {name!r} needs exactly dtype, shape and "
                "data_offsets.")
        dtype = DTYPES.get(info["dtype"]) if isinstance(info["dtype"], str) else None
        if dtype is None:
            raise FileFormatError(
                f"{source}: tensor {name!r} has the unsupported dtype {info['dtype']!r} "
                f"(supported: {', '.join(DTYPES)}).")
        shape = info["shape"]
        if (not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(
                type(d) is int and 0 <= d <= MAX_DIM for d in shape)):
            raise FileFormatError(f"{source} is damaged: tensor {name!r} has the invalid "
                                  f"shape {shape!r}.")
        offs = info["data_offsets"]
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(type(o) is int and o >= 0 for o in offs) or offs[0] > offs[1]):
            raise FileFormatError(f"{source} is damaged: tensor {name!r} has invalid "
                                  f"data_offsets {offs!r}.")
        count = 1
        for d in shape:
            count *= d
        total += count
        if total > max_values:
            raise FileFormatError(
                f"{source} holds more than {max_values:,} values; that is more than "
                "Gradscape loads.")
        begin, end = offs
        if end - begin != count * dtype.itemsize:
            raise FileFormatError(
                f"{source} is damaged: tensor {name!r} of shape {tuple(shape)} ({info['dtype']}) "
                f"needs {count * dtype.itemsize:,} bytes but its offsets span {end - begin:,}.")
        if end > len(body):
            raise FileFormatError(f"{source} is truncated: tensor {name!r} ends at byte "
                                  f"{end:,} of a {len(body):,}-byte data block.")
        spans.append((begin, end, name))
        plan.append((name, dtype, tuple(shape), begin, end))
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            what = "overlaps another" if begin < pos else "leaves a gap before it"
            raise FileFormatError(f"{source} is damaged: tensor {name!r} {what}.")
        pos = end
    if pos != len(body):
        raise FileFormatError(f"{source} is damaged: {len(body) - pos:,} bytes after the last "
                              "tensor belong to none.")
    tensors: dict[str, np.ndarray] = {}
    for name, dtype, shape, begin, end in plan:
        arr = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape)
        tensors[name] = arr.astype(dtype.newbyteorder("="), copy=True)
    return tensors, dict(metadata)


def save_file(path: str | os.PathLike[str], tensors: dict[str, np.ndarray],
              metadata: dict[str, str] | None = None) -> None:
    """Write a .safetensors file atomically."""
    atomic_write_bytes(path, dumps(tensors, metadata))


def load_file(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a .safetensors file into (tensors, metadata). Raises FileFormatError."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FileFormatError(f"{p.name} is {size / 2**30:.1f} GiB, more than Gradscape "
                                  "loads.")
        data = p.read_bytes()
    except OSError as exc:
        raise FileFormatError(f"Cannot read {p.name}: {exc.strerror or exc}.") from None
    return loads(data, p.name)
