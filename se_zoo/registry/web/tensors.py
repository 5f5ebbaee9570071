"""safetensors files read without torch or numpy: the header, and tensor-by-tensor comparisons.

A safetensors file is an 8-byte little-endian header length, a JSON header naming each tensor's
dtype, shape and byte range (``data_offsets``, relative to the end of the header), then the raw
little-endian bytes. The pages read the header alone (``read_header``) for the file viewer and the
model page, and compare two files tensor by tensor (``compare``) for the commit page: bytes are
read in chunks of ``CHUNK`` from both files at once, so the memory used does not grow with the file.
Identical chunks are told apart by a plain byte comparison; only chunks that differ are decoded to
Python numbers (the standard library's ``array`` and ``struct``) to find the largest absolute change.
"""
import array
import json
import math
import operator
import struct
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..limits import MAX_SAFETENSORS_HEADER, MAX_TENSOR_DIFF_BYTES

__all__ = ["Header", "SafetensorsError", "Tensor", "TensorChange", "TensorDiff", "compare", "read_header", "summarize"]

CHUNK = 1024 * 1024  # bytes read from each file at a time
BLOCK = 16 * 1024  # values compared in one call (a few ms, holding the GIL)
ITEM_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4,
             "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
_ARRAY_CODES = {"F64": "d", "F32": "f", "I64": "q", "I32": "i", "I16": "h", "I8": "b", "U64": "Q", "U32": "I",
                "U16": "H", "U8": "B", "BOOL": "B"}
# the byte holding the top exponent bits, and the bits that are all set only in inf/NaN candidates
_SPECIAL = {"F64": (7, 0x7F), "F32": (3, 0x7F), "BF16": (1, 0x7F), "F16": (1, 0x7C)}


class SafetensorsError(ValueError):
    """The file is not a readable safetensors file (the message says why)."""


@dataclass(frozen=True)
class Tensor:
    """One tensor of a header: name, dtype, shape, absolute byte range in the file."""

    name: str
    dtype: str
    shape: Tuple[int, ...]
    start: int
    end: int

    @property
    def params(self) -> int:
        """The number of values (1 for a scalar)."""
        return math.prod(self.shape)


@dataclass(frozen=True)
class Header:
    """A parsed safetensors header: tensors in file order and the ``__metadata__`` strings."""

    tensors: Tuple[Tensor, ...]
    metadata: Tuple[Tuple[str, str], ...]
    header_size: int

    @property
    def params(self) -> int:
        """The number of values over all tensors."""
        return sum(t.params for t in self.tensors)

    def dtypes(self) -> List[Tuple[str, int]]:
        """``(dtype, values)`` pairs, the dtype holding most values first."""
        counts: Dict[str, int] = {}
        for tensor in self.tensors:
            counts[tensor.dtype] = counts.get(tensor.dtype, 0) + tensor.params
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


@lru_cache(maxsize=256)  # blobs are named by their sha256 and never change
def read_header(path: Path) -> Header:
    """Read and check the header of the safetensors file at ``path`` (the header bytes only).

    Args:
        path: The file.

    Returns:
        The header.

    Raises:
        SafetensorsError: if the file is too short, the header is over ``MAX_SAFETENSORS_HEADER``
            bytes, not a JSON object, or a tensor entry is malformed or points outside the file.
        OSError: if the file cannot be read.
    """
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise SafetensorsError(f"{path.name}: expected an 8-byte header length, the file has {len(prefix)} bytes.")
        (size,) = struct.unpack("<Q", prefix)
        if size > MAX_SAFETENSORS_HEADER:
            raise SafetensorsError(f"The header is {size} bytes, over the pages' limit of {MAX_SAFETENSORS_HEADER}.")
        raw = f.read(size)
        file_size = f.seek(0, 2)
    if len(raw) < size:
        raise SafetensorsError(f"The header announces {size} bytes, the file holds {len(raw)} after the length.")
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):
        raise SafetensorsError("The header is not valid JSON.") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"The header must be a JSON object, got {type(header).__name__}.")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise SafetensorsError("__metadata__ must be an object of strings.")
    base = 8 + size
    tensors = [_tensor(name, entry, base, file_size) for name, entry in header.items()]
    tensors.sort(key=lambda t: (t.start, t.name))
    return Header(tuple(tensors), tuple(sorted((str(k), str(v)) for k, v in metadata.items())), size)


def _tensor(name: str, entry: Any, base: int, file_size: int) -> Tensor:
    try:
        dtype, shape, (start, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
        valid = (dtype in ITEM_SIZE and all(isinstance(d, int) and d >= 0 for d in shape)
                 and isinstance(start, int) and isinstance(end, int) and 0 <= start <= end
                 and end - start == math.prod(shape) * ITEM_SIZE[dtype] and base + end <= file_size)
    except (TypeError, KeyError, ValueError):
        valid = False
    if not valid:
        shown = json.dumps(entry)[:200]
        raise SafetensorsError(f"Tensor {name!r}: expected a known dtype, a shape and data_offsets inside the "
                               f"file matching them, got {shown}.")
    return Tensor(name, dtype, shape, base + start, base + end)


def summarize(headers: Sequence[Header]) -> Dict[str, Any]:
    """Totals over the safetensors files of a repository: ``params`` and ``dtypes`` (most values first)."""
    dtypes: Dict[str, int] = {}
    for header in headers:
        for dtype, count in header.dtypes():
            dtypes[dtype] = dtypes.get(dtype, 0) + count
    return {"params": sum(h.params for h in headers),
            "dtypes": [d for d, _ in sorted(dtypes.items(), key=lambda item: (-item[1], item[0]))]}


@dataclass
class TensorChange:
    """One tensor that differs between two files.

    Attributes:
        name: The tensor's name.
        change: ``added``, ``removed``, ``reshaped``, ``dtype changed`` or ``changed``.
        old: The tensor in the old file (``None`` when added).
        new: The tensor in the new file (``None`` when removed).
        max_change: The largest absolute difference of a value (``changed`` and ``dtype changed``),
            ``math.inf`` when a value became or stopped being infinite, ``math.nan`` when NaN is involved;
            ``None`` when not compared.
        note: Why values were not compared (over the page's byte budget, a dtype without numbers).
    """

    name: str
    change: str
    old: Optional[Tensor] = None
    new: Optional[Tensor] = None
    max_change: Optional[float] = None
    note: str = ""


@dataclass
class TensorDiff:
    """The tensor-level difference of two safetensors files."""

    changes: List[TensorChange] = field(default_factory=list)
    unchanged: int = 0
    metadata: List[Tuple[str, Optional[str], Optional[str]]] = field(default_factory=list)
    bytes_read: int = 0
    cut: bool = False  # the byte budget ran out: later tensors were compared by size and dtype only

    @property
    def counts(self) -> Dict[str, int]:
        """How many tensors of each kind of change."""
        counts: Dict[str, int] = {}
        for change in self.changes:
            counts[change.change] = counts.get(change.change, 0) + 1
        return counts


def compare(old: Optional[Path], new: Optional[Path], budget: int = MAX_TENSOR_DIFF_BYTES) -> TensorDiff:
    """Compare two safetensors files tensor by tensor (either may be ``None``: everything added or removed).

    Args:
        old: The file before the commit.
        new: The file after it.
        budget: How many bytes (both files together) may be read to compare values; tensors left when
            it runs out are reported as ``changed`` without a value, with a note.

    Returns:
        The difference.

    Raises:
        SafetensorsError: if a header is unreadable (see ``read_header``).
    """
    before = {t.name: t for t in read_header(old).tensors} if old else {}
    after = {t.name: t for t in read_header(new).tensors} if new else {}
    diff = TensorDiff()
    old_meta = dict(read_header(old).metadata) if old else {}
    new_meta = dict(read_header(new).metadata) if new else {}
    diff.metadata = [(k, old_meta.get(k), new_meta.get(k)) for k in sorted(set(old_meta) | set(new_meta))
                     if old_meta.get(k) != new_meta.get(k)]
    pairs = [(name, before.get(name), after.get(name)) for name in sorted(set(before) | set(after))]
    files = (open(old, "rb") if old else None, open(new, "rb") if new else None)
    try:
        for name, a, b in pairs:
            if a is None or b is None:
                diff.changes.append(TensorChange(name, "added" if a is None else "removed", a, b))
            elif a.shape != b.shape:
                diff.changes.append(TensorChange(name, "reshaped", a, b))
            elif diff.bytes_read + (a.end - a.start) + (b.end - b.start) > budget:
                diff.cut = True
                kind = "changed" if a.dtype == b.dtype else "dtype changed"
                diff.changes.append(TensorChange(name, kind, a, b, note="not compared: over the page's budget"))
            else:
                diff.bytes_read += (a.end - a.start) + (b.end - b.start)
                change = _compare_values(files[0], files[1], a, b)
                if change is None:
                    diff.unchanged += 1
                else:
                    diff.changes.append(change)
    finally:
        for f in files:
            if f is not None:
                f.close()
    return diff


def _compare_values(fa: Any, fb: Any, a: Tensor, b: Tensor) -> Optional[TensorChange]:
    """The change between two tensors of one shape, or ``None`` when their bytes are equal."""
    kind = "changed" if a.dtype == b.dtype else "dtype changed"
    numeric = a.dtype in _DECODERS and b.dtype in _DECODERS
    step = CHUNK // max(ITEM_SIZE[a.dtype], ITEM_SIZE[b.dtype])  # values per chunk
    largest, differing, nan = 0.0, False, False
    for offset in range(0, a.params, step) if a.params else ():
        count = min(step, a.params - offset)
        fa.seek(a.start + offset * ITEM_SIZE[a.dtype])
        fb.seek(b.start + offset * ITEM_SIZE[b.dtype])
        chunk_a, chunk_b = fa.read(count * ITEM_SIZE[a.dtype]), fb.read(count * ITEM_SIZE[b.dtype])
        if a.dtype == b.dtype and chunk_a == chunk_b:
            continue
        differing = True
        if not numeric:
            continue
        special = _maybe_special(a.dtype, chunk_a) or _maybe_special(b.dtype, chunk_b)
        view_a, view_b = memoryview(chunk_a), memoryview(chunk_b)
        size_a, size_b = ITEM_SIZE[a.dtype], ITEM_SIZE[b.dtype]
        for at in range(0, count, BLOCK):  # decoded block by block: one C call each, the GIL let go between
            values_a = _DECODERS[a.dtype](view_a[at * size_a:(at + BLOCK) * size_a])
            values_b = _DECODERS[b.dtype](view_b[at * size_b:(at + BLOCK) * size_b])
            if special:
                diffs = [x - y if x != y else 0.0 for x, y in zip(values_a, values_b)]  # inf == inf: no change
                nan = nan or any(d != d for d in diffs)
                block = max((abs(d) for d in diffs if d == d), default=0.0)
            else:
                block = max(map(abs, map(operator.sub, values_a, values_b)))
            largest = block if block > largest else largest
    if not differing:
        return None
    if not numeric:
        return TensorChange(a.name, kind, a, b, note=f"values of {a.dtype if a.dtype not in _DECODERS else b.dtype} "
                                                     "are not compared")
    return TensorChange(a.name, kind, a, b, max_change=math.nan if nan else float(largest))


def _maybe_special(dtype: str, chunk: bytes) -> bool:
    """Whether ``chunk`` may hold an inf or NaN (its exponent bits all set somewhere); fast, may say yes wrongly."""
    if dtype not in _SPECIAL:
        return False
    index, bits = _SPECIAL[dtype]
    return chunk[index::ITEM_SIZE[dtype]].translate(_ALL_SET[bits]).find(b"\1") >= 0


_ALL_SET = {bits: bytes(1 if byte & bits == bits else 0 for byte in range(256)) for bits in (0x7F, 0x7C)}


def _array(code: str) -> Callable[[memoryview], Sequence[Any]]:
    def decode(chunk: memoryview) -> Sequence[Any]:
        if sys.byteorder == "little":
            return chunk.cast(code)  # no copy
        values = array.array(code)
        values.frombytes(chunk)
        values.byteswap()
        return values
    return decode


def _f16(chunk: memoryview) -> Sequence[float]:
    return struct.unpack(f"<{len(chunk) // 2}e", chunk)


def _bf16(chunk: memoryview) -> Sequence[float]:
    raw, widened = bytes(chunk), bytearray(2 * len(chunk))  # a bfloat16 is the top half of a float32
    widened[2::4], widened[3::4] = raw[0::2], raw[1::2]
    return _array("f")(memoryview(widened))


_DECODERS: Dict[str, Callable[[memoryview], Sequence[Any]]] = {
    **{dtype: _array(code) for dtype, code in _ARRAY_CODES.items()}, "F16": _f16, "BF16": _bf16}
