"""safetensors files written without torch or numpy, for the registry's tests.

The format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape
and byte range, then the raw bytes.
"""
import json
import random
import struct
from pathlib import Path
from typing import Dict

# little-endian byte 3 of a float32 holds the sign and the exponent's top bits; for values of about
# unit size it takes few values, which keeps the bytes as compressible as real weights
_SIGN_EXPONENT = bytes((0x3E, 0x3F, 0xBE, 0xBF) * 64)


def float32_bytes(n_values: int, seed: int) -> bytes:
    """Bytes of ``n_values`` float32 numbers of about unit size, random but reproducible from ``seed``."""
    rng = random.Random(seed)
    data = bytearray(rng.randbytes(4 * n_values))
    data[3::4] = rng.randbytes(n_values).translate(_SIGN_EXPONENT)
    return bytes(data)


def checkpoint(n_bytes: int, seed: int = 0, n_tensors: int = 20) -> Dict[str, bytes]:
    """A float32 state dict of about ``n_bytes`` in ``n_tensors`` equal tensors, as name -> raw bytes."""
    per = n_bytes // 4 // n_tensors
    return {f"layer{i}.weight": float32_bytes(per, seed * 1000 + i) for i in range(n_tensors)}


def write_safetensors(path: Path, tensors: Dict[str, bytes]) -> None:
    """Write one-dimensional float32 ``tensors`` (name -> raw little-endian bytes) as a safetensors file.

    Args:
        path: the file to write.
        tensors: each tensor's raw bytes; the length must be a multiple of 4.

    Raises:
        ValueError: when a tensor's length is not a multiple of 4.
    """
    header, offset = {}, 0
    for name, data in tensors.items():
        if len(data) % 4:
            raise ValueError(f"tensors[{name!r}]: expected a multiple of 4 bytes, got {len(data)}")
        header[name] = {"dtype": "F32", "shape": [len(data) // 4], "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(raw)) + raw)
        for data in tensors.values():
            out.write(data)
