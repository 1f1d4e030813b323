"""The IDX file format (the format of the MNIST files): :func:`read_idx` and :func:`write_idx`.

A reader of untrusted files: the header is checked before anything is allocated, the payload is
read in 1 MiB pieces so that a header claiming more than the file holds cannot make the reader
allocate it, and every error is a ``ValueError`` naming the file.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np

from binarynet.data.checks import PathLike

__all__ = ["read_idx", "write_idx"]

# IDX type codes (third byte of the magic number) and the big-endian dtypes they stand for.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20  # read payloads in 1 MiB pieces so a lying header cannot make us allocate


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (the format of the MNIST files), gzipped or not.

    An IDX file is a big-endian header followed by the array in C order::

        magic   4 bytes: 0x00, 0x00, type code (0x08 = uint8, 0x09 int8, 0x0B int16,
                0x0C int32, 0x0D float32, 0x0E float64), number of dimensions d
        dims    d × uint32 (big-endian)
        data    prod(dims) items of the type, big-endian

    MNIST images have magic 0x00000803 (uint8, 3 dims), labels 0x00000801 (uint8, 1 dim).
    Gzip compression is detected from the first two bytes (0x1f 0x8b), not from the name.

    Args:
        path: the file.

    Returns:
        The array, with shape ``dims`` and a native-byte-order dtype (``uint8`` for MNIST).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not IDX (wrong magic or type code, truncated header), its payload
            is shorter or longer than the header declares, or its gzip stream is corrupt. The
            message names the file.
    """
    path = Path(path)
    with _open_maybe_gzip(path) as f:
        try:
            dtype, dims = _read_idx_header(f, path)
            nbytes = int(np.prod(dims, dtype=object)) * dtype.itemsize
            payload = _read_exact(f, nbytes, path, dims, dtype)
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt gzip data ({e})") from e
    try:
        array = np.frombuffer(payload, dtype=dtype).reshape(dims)
    except ValueError as e:  # more dimensions than NumPy allows, or dims it cannot index
        raise ValueError(f"{path}: IDX dims {list(dims)} cannot be a NumPy array ({e})") from e
    return array.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path: PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzipped when ``path`` ends in ``.gz``.

    The gzip stream is deterministic (no time stamp, no file name), so the same array always
    gives the same bytes.

    Raises:
        ValueError: the array's dtype has no IDX type code, it has no dimensions or more than
            255, or a dimension does not fit in a uint32.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _idx_type_code(array.dtype)
    if not 1 <= array.ndim <= 255 or any(d >= 2**32 for d in array.shape):
        raise ValueError(f"cannot write shape {array.shape} as IDX: need 1..255 dims < 2**32")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + np.ascontiguousarray(array, dtype=_IDX_DTYPES[code]).tobytes()
    if path.suffix == ".gz":
        with open(path, "wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as f:
            f.write(data)
    else:
        path.write_bytes(data)


def _idx_type_code(dtype: np.dtype) -> int:
    """The IDX type code of ``dtype`` (whatever its byte order)."""
    for code, idx_dtype in _IDX_DTYPES.items():
        if dtype.newbyteorder("=") == idx_dtype.newbyteorder("="):
            return code
    names = ", ".join(str(d.newbyteorder("=")) for d in _IDX_DTYPES.values())
    raise ValueError(f"IDX cannot store dtype {dtype}; it stores {names}")


def _open_maybe_gzip(path: Path) -> BinaryIO:
    """Open ``path`` for reading, through gzip when it starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        compressed = f.read(2) == _GZIP_MAGIC
    if compressed:
        # GzipFile reads bytes like any binary file; typeshed does not declare it a BinaryIO.
        return cast(BinaryIO, gzip.GzipFile(path, "rb"))
    return open(path, "rb")


def _read_idx_header(f: BinaryIO, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    """Read and check the magic number and dims; return (big-endian dtype, dims)."""
    magic = f.read(4)
    if len(magic) < 4:
        raise ValueError(f"{path}: file too short for an IDX header ({len(magic)} bytes)")
    zero0, zero1, code, ndim = magic
    if zero0 or zero1 or code not in _IDX_DTYPES or ndim == 0:
        codes = ", ".join(f"0x{c:02x}" for c in _IDX_DTYPES)
        raise ValueError(
            f"{path}: not an IDX file: magic number 0x{magic.hex()}, expected 0x0000TTDD with "
            f"type code TT in {{{codes}}} (0x08 = uint8) and DD ≥ 1 dimensions "
            f"(MNIST: 0x00000803 images, 0x00000801 labels)"
        )
    raw_dims = f.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise ValueError(
            f"{path}: IDX header truncated: magic declares {ndim} dims ({4 * ndim} bytes), "
            f"file has {len(raw_dims)} bytes after the magic number"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
    return _IDX_DTYPES[code], dims


def _read_exact(
    f: BinaryIO, nbytes: int, path: Path, dims: tuple[int, ...], dtype: np.dtype
) -> bytearray:
    """Read exactly ``nbytes`` up to the end of ``f``; raise if the file has fewer or more.

    Memory grows with the bytes actually read, never with what the header claims.
    """
    payload = bytearray()
    while len(payload) < nbytes:
        chunk = f.read(min(_CHUNK, nbytes - len(payload)))
        if not chunk:
            break
        payload += chunk
    actual = len(payload) + _count_rest(f)
    if actual != nbytes:
        what = "truncated" if actual < nbytes else "has extra bytes"
        raise ValueError(
            f"{path}: IDX payload {what}: the header declares dims {list(dims)} of "
            f"{dtype.newbyteorder('=')}, i.e. {nbytes} bytes, but the file holds {actual} "
            f"bytes after the header"
        )
    return payload


def _count_rest(f: BinaryIO) -> int:
    """Read ``f`` to its end in chunks, returning how many bytes were left."""
    count = 0
    while chunk := f.read(_CHUNK):
        count += len(chunk)
    return count
