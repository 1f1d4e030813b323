"""The ``.bnn`` model file: a safetensors file with the network's graph as JSON in its metadata.

This module is shared by :mod:`binarynet.export` (which writes files) and
:mod:`binarynet.backends.engine` (which runs them). It needs only NumPy and the ``safetensors``
package: never torch.

File layout
-----------
A standard safetensors file (8-byte little-endian header length, JSON header, raw tensor data;
no pickle anywhere). Its ``__metadata__`` holds two strings:

``"binarynet"``
    the graph, a JSON object::

        {"format": "binarynet-bnn", "version": 1,
         "input": {"layout": "NHWC" | "NHW" | "NF", "shape": [H, W, C] | [H, W] | [F],
                   "dtype": "uint8", "zero_point": 128, "scale": 0.0078125},
         "preprocess": null | {"kind": "gcn-zca", "version": 1, ...},
         "num_classes": 10,
         "ops": [ {"type": ..., ...}, ... ],
         "provenance": {"binarynet_version": "0.1.0", "model": "mnist-mlp",
                        "model_kwargs": {...}, ...}}

``"binarynet.sha256"``
    SHA-256 (hex) of the graph string followed by every tensor (name, dtype, shape, bytes) in
    name order, so that any flipped byte of the graph or of the data is detected on load.

``preprocess`` is the JSON part of the state of the :mod:`binarynet.data.preprocess` object the
network was trained behind (GCN + ZCA whitening for the ConvNets, say); its arrays are tensors
named ``preprocess.<key>`` (``preprocess.zca_whitening``, ...). It maps raw uint8 images to the
uint8 images the network takes (the input below); null when the network takes raw images.

Values and ops
--------------
The graph's values, its ops and their maths are described in :mod:`binarynet.graph.values`,
:mod:`binarynet.graph.ops` and :mod:`binarynet.graph.graph`; this module is the file around them.

Loading (:func:`load`) validates the whole file before the engine allocates anything: the
safetensors header, the format and version, the checksum, every op and its parameters, that
shapes chain from the input to ``num_classes`` scores, every tensor's dtype and shape against
its op, that no tensor is left unused, the preprocessor's state, that padding bits of packed
weights are zero and float parameters finite, and size limits (|y| < 2²⁴ so that torch's
float32 sums were exact). Any problem raises :class:`BNNFileError` (a ``ValueError``) naming it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from binarynet import filekind
from binarynet.atomic import atomic_write_bytes, check_target
from binarynet.graph.graph import PREPROCESS_PREFIX, Graph
from binarynet.graph.values import GraphError, ValueInfo

__all__ = [
    "FORMAT",
    "VERSION",
    "BNNFile",
    "BNNFileError",
    "graph_from_json",
    "graph_to_json",
    "load",
    "save",
    "tensor_table",
    "validate",
]

FORMAT = "binarynet-bnn"
VERSION = 1


class BNNFileError(GraphError):
    """A ``.bnn`` file (or a graph about to be written) is malformed or unsupported."""


def graph_to_json(graph: Graph) -> dict[str, Any]:
    """The file's graph object: the format and version, then :meth:`Graph.to_json`."""
    return {"format": FORMAT, "version": VERSION, **graph.to_json()}


def graph_from_json(obj: Any) -> Graph:
    """The graph of the file's graph object: its format and version first, then the graph."""
    if not isinstance(obj, dict):
        raise BNNFileError(f"the graph must be a JSON object, got {type(obj).__name__}")
    if obj.get("format") != FORMAT:
        raise BNNFileError(
            f"not a binarynet model: format {obj.get('format')!r}, expected {FORMAT!r}"
        )
    version = obj.get("version")
    if version != VERSION:
        raise BNNFileError(
            f"unsupported .bnn version {version!r}: this binarynet reads version {VERSION}"
        )
    try:
        return Graph.from_json({k: v for k, v in obj.items() if k not in ("format", "version")})
    except GraphError as exc:
        raise BNNFileError(str(exc)) from None


GRAPH_KEY = "binarynet"
CHECKSUM_KEY = "binarynet.sha256"

MAX_HEADER_BYTES = 64 << 20
"""Largest safetensors header accepted (the graph and the tensor table)."""

# safetensors dtype names used by the format.
_DTYPES: dict[str, np.dtype] = {
    "U8": np.dtype(np.uint8),
    "U64": np.dtype("<u8"),
    "I32": np.dtype("<i4"),
    "F32": np.dtype("<f4"),
}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}


# --------------------------------------------------------------------------------------------
# Reading and writing
# --------------------------------------------------------------------------------------------


def _checksum(graph_text: str, tensors: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    h.update(graph_text.encode("utf-8"))
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        h.update(
            json.dumps(
                [name, _DTYPE_NAMES.get(array.dtype, array.dtype.str), list(array.shape)]
            ).encode("utf-8")
        )
        h.update(array.tobytes())
    return h.hexdigest()


def tensor_table(tensors: Mapping[str, np.ndarray]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{name: (safetensors dtype, shape)} of ``tensors``, what :meth:`Graph.infer` takes."""
    table = {}
    for name, array in tensors.items():
        dtype = np.dtype(array.dtype)
        if dtype not in _DTYPE_NAMES:
            raise BNNFileError(
                f"tensor {name!r} has dtype {array.dtype}; expected one of uint8, uint64, "
                "int32, float32"
            )
        table[name] = (_DTYPE_NAMES[dtype], tuple(array.shape))
    return table


@dataclass(frozen=True)
class BNNFile:
    """A validated ``.bnn`` file.

    Attributes:
        graph: the graph.
        tensors: every tensor by name (the preprocessor's arrays under ``preprocess.*``).
        values: the value before each op and after the last (``len(graph.ops) + 1`` entries).
        preprocessor: the fitted :mod:`binarynet.data.preprocess` object the model was trained
            behind (its ``transform`` maps raw uint8 images to the network's input), or None.
        size: the file's size in bytes (0 before it is written).
    """

    graph: Graph
    tensors: dict[str, np.ndarray]
    values: list[ValueInfo]
    preprocessor: Any | None
    size: int = 0


def _load_preprocessor(graph: Graph, tensors: Mapping[str, np.ndarray]) -> Any | None:
    """Rebuild the preprocessor from the graph's JSON part and its ``preprocess.*`` tensors."""
    if graph.preprocess is None:
        return None
    from binarynet.data.preprocess import load_preprocessor

    state: dict[str, Any] = dict(graph.preprocess)
    for name, array in tensors.items():
        if name.startswith(PREPROCESS_PREFIX):
            key = name[len(PREPROCESS_PREFIX) :]
            if key in state:
                raise BNNFileError(f"preprocess: {key!r} is both a JSON field and a tensor")
            state[key] = array
    try:
        pre = load_preprocessor(state)
    except (ValueError, TypeError, KeyError) as exc:
        raise BNNFileError(f"preprocess: {exc}") from None
    image_shape = getattr(pre, "image_shape", None)
    if image_shape is not None and tuple(image_shape) != graph.input.shape:
        raise BNNFileError(
            f"preprocess: it takes images of shape {list(image_shape)} but the input is "
            f"{list(graph.input.shape)}"
        )
    # One blank image through it: the preprocessor must take the model's input and give uint8
    # images of the same shape (PixelScaling refuses flat features, for one).
    shape = (1, *graph.input.shape)
    try:
        probe = np.asarray(pre.transform(np.zeros(shape, np.uint8)))
    except (ValueError, TypeError) as exc:
        raise BNNFileError(
            f"preprocess: it cannot take the model's input {list(graph.input.shape)} ({exc})"
        ) from None
    if probe.dtype != np.uint8 or probe.shape != shape:
        raise BNNFileError(
            f"preprocess: it maps the input {list(shape)} to {probe.dtype} {list(probe.shape)}, "
            "expected uint8 of the same shape"
        )
    return pre


def validate(graph: Graph, tensors: Mapping[str, np.ndarray], where: str = "model") -> BNNFile:
    """A graph and its tensors checked as :func:`load` checks a file (everything but the file's
    framing: the graph against the tensors, then their values), without writing it: what a
    back-end takes when the model comes straight from :func:`binarynet.export.build_graph`."""
    try:
        values = graph.infer(tensor_table(tensors))
        graph.check_values(values, tensors)
        pre = _load_preprocessor(graph, tensors)
    except GraphError as exc:
        raise BNNFileError(f"{where}: {exc}") from None
    return BNNFile(graph, dict(tensors), values, pre)


_validate = validate  # for save(), whose argument ``validate`` hides the name


def save(
    path: str | os.PathLike[str],
    graph: Graph | Mapping[str, Any],
    tensors: Mapping[str, np.ndarray],
    *,
    validate: bool = True,
) -> int:
    """Write ``graph`` (a :class:`Graph` or its JSON form) and ``tensors`` as a ``.bnn`` file,
    atomically; returns its size.

    With ``validate`` (the default) the file is checked exactly as :func:`load` would check it
    before anything is written; ``validate=False`` exists for tests that write broken files.
    """
    check_target(path)  # a path through a file is refused before the work
    arrays = {name: np.ascontiguousarray(a) for name, a in tensors.items()}
    graph_json = graph_to_json(graph) if isinstance(graph, Graph) else dict(graph)
    graph_text = json.dumps(graph_json, separators=(",", ":"), allow_nan=False)
    if validate:
        _validate(graph_from_json(json.loads(graph_text)), arrays, str(path))
    import safetensors.numpy

    metadata = {GRAPH_KEY: graph_text, CHECKSUM_KEY: _checksum(graph_text, arrays)}
    data = safetensors.numpy.save(arrays, metadata=metadata)
    atomic_write_bytes(path, lambda f: f.write(data))
    return len(data)


def _parse_header(data: bytes, where: str) -> tuple[dict[str, Any], int]:
    """The safetensors JSON header of ``data`` and the offset where tensor data begins."""
    if len(data) < 8:
        raise BNNFileError(f"{where}: truncated file ({len(data)} bytes, not even a header)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        raise BNNFileError(f"{where}: header length {n} exceeds {MAX_HEADER_BYTES} bytes")
    if 8 + n > len(data):
        raise BNNFileError(
            f"{where}: truncated file: the header claims {n} bytes but only {len(data) - 8} follow"
        )
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the interpreter's recursion limit.
        raise BNNFileError(f"{where}: corrupt safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise BNNFileError(f"{where}: corrupt safetensors header (not a JSON object)")
    return header, 8 + n


def _tensor_entries(
    header: dict[str, Any], data_len: int, where: str
) -> dict[str, tuple[str, tuple[int, ...], int, int]]:
    """{name: (dtype, shape, begin, end)} of the header's tensor table, checked against the data
    size (so a lying header cannot make anything allocate)."""
    entries = {}
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        bad = f"{where}: tensor {name!r}"
        if not isinstance(entry, dict):
            raise BNNFileError(f"{bad}: corrupt entry {entry!r}")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise BNNFileError(
                f"{bad} has dtype {dtype!r}; a .bnn file holds only {sorted(_DTYPES)}"
            )
        if not isinstance(shape, list) or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape
        ):
            raise BNNFileError(f"{bad}: corrupt shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or any(isinstance(o, bool) or not isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_len
        ):
            raise BNNFileError(
                f"{bad}: data offsets {offsets!r} are outside the {data_len} data bytes "
                "(truncated file?)"
            )
        nbytes = math.prod(shape) * _DTYPES[dtype].itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise BNNFileError(
                f"{bad}: shape {shape} of {dtype} needs {nbytes} bytes, the file gives it "
                f"{offsets[1] - offsets[0]}"
            )
        entries[name] = (dtype, tuple(shape), offsets[0], offsets[1])
        spans.append((offsets[0], offsets[1]))
    spans.sort()
    position = 0
    for begin, end in spans:
        if begin != position:
            raise BNNFileError(f"{where}: tensor data overlaps or has gaps at byte {begin}")
        position = end
    if position != data_len:
        raise BNNFileError(
            f"{where}: {data_len - position} bytes after the last tensor (corrupt file?)"
        )
    return entries


def load(path: str | os.PathLike[str]) -> BNNFile:
    """Read and validate a ``.bnn`` file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        BNNFileError: anything wrong with the file (the message names it).
    """
    path = Path(path)
    where = str(path)
    try:  # missing (FileNotFoundError), a directory, a training checkpoint
        filekind.require(path, filekind.BNN, "model file")
    except ValueError as exc:
        raise BNNFileError(str(exc)) from None
    data = path.read_bytes()
    size = len(data)
    header, data_start = _parse_header(data, where)
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or GRAPH_KEY not in metadata:
        raise BNNFileError(
            f"{where}: not a binarynet model file (a safetensors file without the "
            f"{GRAPH_KEY!r} graph in its metadata)"
        )
    graph_text = metadata[GRAPH_KEY]
    if not isinstance(graph_text, str):
        raise BNNFileError(f"{where}: corrupt graph metadata")
    try:
        graph_json = json.loads(graph_text)
    except (json.JSONDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
        raise BNNFileError(f"{where}: corrupt graph JSON ({exc})") from None
    try:
        graph = graph_from_json(graph_json)  # format and version first, before the checksum
    except GraphError as exc:
        raise BNNFileError(f"{where}: {exc}") from None
    entries = _tensor_entries(header, len(data) - data_start, where)
    table = {name: (dtype, shape) for name, (dtype, shape, _, _) in entries.items()}
    try:
        graph.infer(table)  # shapes and dtypes, before any tensor is read
    except GraphError as exc:
        raise BNNFileError(f"{where}: {exc}") from None
    import safetensors.numpy

    try:
        raw = safetensors.numpy.load(data)
    except Exception as exc:  # the Rust parser's own error
        raise BNNFileError(f"{where}: safetensors could not read the file ({exc})") from None
    tensors = {name: np.require(raw[name], requirements=["C", "A"]) for name in entries}
    del data, raw
    if metadata.get(CHECKSUM_KEY) != _checksum(graph_text, tensors):
        raise BNNFileError(
            f"{where}: checksum mismatch: the file is corrupt (a byte of the graph or of the "
            "tensor data changed after it was written)"
        )
    bnn = _validate(graph, tensors, where)
    return BNNFile(bnn.graph, bnn.tensors, bnn.values, bnn.preprocessor, size)
