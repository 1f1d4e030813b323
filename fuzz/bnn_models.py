"""Random ``.bnn`` models, an independent NumPy interpreter of the format, and mutations.

Shared by the property-based tests (``tests/graph/test_fuzz_bnn.py``,
``tests/backends/engine/test_engine_inputs.py``, hypothesis) and the coverage-guided fuzzer
(``fuzz/fuzz_bnn.py``, atheris). Needs only NumPy, safetensors and :mod:`binarynet.graph`; never
torch.

- :func:`random_model` builds a *valid* graph + tensors from a :class:`Chooser` (hypothesis,
  atheris's FuzzedDataProvider or a NumPy generator decide the structure; a NumPy generator
  seeded by the chooser fills the tensors): MLPs and ConvNets, uint8 and bit inputs, odd sizes,
  channel counts around 64, strides, padding wider than the kernel, non-square kernels and
  pools, thresholds of every kind (up-sets, down-sets, constants, intervals that are neither),
  biases, unicode tensor names.
- :func:`reference` (:mod:`binarynet.graph.reference`, re-exported here) runs a graph the slow,
  obvious way (integer NumPy, ±1 values unpacked, the maths of the :mod:`binarynet.graph.ops`
  docstring), independently of the engine's planning, fusion and kernels: the oracle for
  "never a wrong answer", and the export's self-check.
- :func:`mutate` breaks a model at the graph, tensor or safetensors-header level; :func:`seal`
  writes any graph text and tensors with a *correct* checksum, so that mutations get past the
  checksum and reach the graph validation and the engine. :func:`reseal` does the same for
  arbitrary bytes when their safetensors framing is intact.
"""

from __future__ import annotations

import copy
import json
import math
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

from binarynet.graph import bnnfile
from binarynet.graph.reference import correlate as _correlate  # noqa: F401 - for the tests
from binarynet.graph.reference import maxpool as _maxpool  # noqa: F401 - for the tests
from binarynet.graph.reference import (
    reference,
    unpack,  # noqa: F401 - for the tests
)
from binarynet.graph.values import InputSpec

I32_MIN, I32_MAX = -(2**31), 2**31 - 1

# --------------------------------------------------------------------------------------------
# Choosers: who decides the structure
# --------------------------------------------------------------------------------------------


class Chooser:
    """Decides integers in a closed range; everything random in this module goes through it."""

    def integer(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def boolean(self, p_true: float = 0.5) -> bool:
        n = 64
        return self.integer(0, n - 1) < round(p_true * n)

    def pick(self, options: list | tuple) -> Any:
        return options[self.integer(0, len(options) - 1)]


class RngChooser(Chooser):
    """A NumPy generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi, endpoint=True))


class HypothesisChooser(Chooser):
    """``hypothesis.strategies.data()``: the structure shrinks with the failing example."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self.data, self.st = data, st

    def integer(self, lo: int, hi: int) -> int:
        return self.data.draw(self.st.integers(lo, hi))


class FdpChooser(Chooser):
    """atheris's ``FuzzedDataProvider``: the fuzzer's bytes decide the structure."""

    def __init__(self, fdp: Any) -> None:
        self.fdp = fdp

    def integer(self, lo: int, hi: int) -> int:
        return int(self.fdp.ConsumeIntInRange(lo, hi))


# --------------------------------------------------------------------------------------------
# Packing (independent of pack_bits and of the compiled packer)
# --------------------------------------------------------------------------------------------


def words(k: int) -> int:
    return -(-k // 64)


def pack(negative: np.ndarray) -> np.ndarray:
    """bool [..., K] (True = −1) → uint64 [..., ceil(K/64)], element k in bit k % 64."""
    negative = np.asarray(negative, dtype=bool)
    *lead, k = negative.shape
    bits = np.zeros((*lead, words(k) * 64), dtype=np.uint8)
    bits[..., :k] = negative
    packed = np.packbits(bits, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8").reshape(*lead, words(k))


# --------------------------------------------------------------------------------------------
# Random valid models
# --------------------------------------------------------------------------------------------

NAME_STYLES = ("op{i}.{f}", "{f}{i}", "layer é{i}/{f}", "🙂{i}.{f}", "op {i} {f}")


def _channels(ch: Chooser, hi: int = 70) -> int:
    return ch.pick((1, 2, 3, 5, 8, 31, 63, 64, 65, 70, ch.integer(1, hi)))


def _thresholds(ch: Chooser, rng: np.random.Generator, c: int, bound: int):
    """Per-channel [lo, hi] of every kind: up-sets, down-sets, constants, inner intervals,
    empty intervals, bounds at int32's extremes and just outside the reachable range."""
    lo = np.empty(c, np.int64)
    hi = np.empty(c, np.int64)
    style = ch.integer(0, 3)  # 0: monotone only (the pooled-bits path), 1..3: anything
    for j in range(c):
        t = int(rng.integers(-bound - 2, bound + 3))
        u = int(rng.integers(-bound - 2, bound + 3))
        kinds = 4 if style == 0 else 8
        kind = int(rng.integers(0, kinds))
        lo[j], hi[j] = [
            (t, I32_MAX),  # γ > 0: +1 iff y ≥ t
            (I32_MIN, t),  # γ < 0: +1 iff y ≤ t
            (I32_MIN, I32_MAX),  # constant +1
            (I32_MAX, I32_MIN),  # constant −1 (lo > hi)
            (min(t, u), max(t, u)),  # an interval inside the range: neither up nor down
            (t, t),
            (max(t, u) + 1, min(t, u)),  # empty
            (t, bound + int(rng.integers(0, 3))),  # up-set, hi just at / past the bound
        ][kind]
    return lo.astype(np.int32), hi.astype(np.int32)


def _pm1_weights(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    p = rng.choice([0.0, 0.1, 0.5, 0.9, 1.0])
    return rng.random(shape) < p  # True = −1


def _floats(ch: Chooser, rng: np.random.Generator, c: int) -> np.ndarray:
    style = ch.integer(0, 5)
    if style == 0:
        return np.zeros(c, np.float32)
    if style == 1:  # extremes that stay finite through the float32 ops
        return rng.choice([1e-38, -1e-38, 1e-45, 3e38, -3e38, 0.0, -0.0], c).astype(np.float32)
    return (rng.normal(0, 4.0, c) * rng.choice([1.0, -1.0], c)).astype(np.float32)


def random_model(
    ch: Chooser, *, max_side: int = 9, max_stages: int = 4, pad_values: bool = False
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A valid (graph JSON, tensors) pair, as :func:`binarynet.graph.bnnfile.save` takes them.

    With ``pad_values``, each padded convolution on bits is padded with 0, +1 or −1 (chosen
    after everything else, so the rest of the graph is the one drawn without it)."""
    rng = np.random.default_rng(ch.integer(0, 2**32 - 1))
    layout = ch.pick(("NF", "NHW", "NHWC", "NHWC"))
    if layout == "NF":
        shape: tuple[int, ...] = (ch.pick((1, 63, 64, 65, ch.integer(1, 200))),)
    elif layout == "NHW":
        shape = (ch.integer(1, max_side), ch.integer(1, max_side))
    else:
        shape = (ch.integer(1, max_side), ch.integer(1, max_side), ch.pick((1, 3, 4, 65)))
    zero_point = ch.pick((0, 1, 127, 128, 255, ch.integer(0, 255)))
    spec = InputSpec(shape, zero_point, 2.0 ** ch.integer(-9, 2))
    mult = max(zero_point, 255 - zero_point)
    style = ch.pick(NAME_STYLES)
    tensors: dict[str, np.ndarray] = {}
    ops: list[dict[str, Any]] = []

    def name(f: str) -> str:
        return style.format(i=len(ops), f=f)

    kind, vshape = "u8", shape
    n_conv = ch.integer(0, min(2, max_stages - 1)) if layout == "NHWC" else 0
    n_dense = ch.integer(0, max_stages - 1 - n_conv)
    for _ in range(n_conv):
        h, w, c = vshape
        kh, kw = ch.integer(1, 3), ch.integer(1, 3)
        ph, pw = ch.pick((0, 0, 1, 2, 4)), ch.pick((0, 0, 1, 2, 4))
        kh, kw = min(kh, h + 2 * ph), min(kw, w + 2 * pw)
        sh, sw = ch.integer(1, 3), ch.integer(1, 3)
        o = _channels(ch)
        taps = kh * kw * c
        negative = _pm1_weights(rng, (o, kh, kw, c))
        wname = name("weight")
        if kind == "u8":
            tensors[wname] = pack(negative.reshape(o, taps))
            bound = taps * mult
        else:
            tensors[wname] = pack(negative)
            bound = taps
        op: dict[str, Any] = {
            "type": "conv2d",
            "out_channels": o,
            "kernel_size": [kh, kw],
            "stride": [sh, sw],
            "padding": [ph, pw],
            "weight": wname,
        }
        if ch.boolean(0.2):
            op["source"] = str(len(ops))
        ops.append(op)
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        for _ in range(ch.integer(0, 2)):
            pkh, pkw = ch.integer(1, min(3, ho)), ch.integer(1, min(3, wo))
            if ch.boolean(0.7):
                pkw = min(pkh, wo)
                pkh = pkw
            ps = ch.integer(1, 3)
            pstride = [ps, ps] if ch.boolean(0.7) else [ch.integer(1, 3), ch.integer(1, 3)]
            ops.append({"type": "maxpool2d", "kernel_size": [pkh, pkw], "stride": pstride})
            ho, wo = (ho - pkh) // pstride[0] + 1, (wo - pkw) // pstride[1] + 1
        lo, hi = _thresholds(ch, rng, o, bound)
        lname, hname = name("lo"), name("hi")
        tensors[lname], tensors[hname] = lo, hi
        ops.append({"type": "threshold", "lo": lname, "hi": hname})
        kind, vshape = "bits", (ho, wo, o)
    for d in range(n_dense + 1):
        last = d == n_dense
        o = ch.integer(1, 12) if last else _channels(ch)
        k = math.prod(vshape)
        negative = _pm1_weights(rng, (o, *vshape))
        wname = name("weight")
        if kind == "u8":
            tensors[wname] = pack(negative.reshape(o, k))
            bound = k * mult
        else:
            tensors[wname] = pack(negative)
            bound = k
        ops.append({"type": "dense", "out_features": o, "weight": wname})
        if last:
            bias = name("bias") if ch.boolean() else None
            scale, shift = name("scale"), name("shift")
            if bias is not None:
                tensors[bias] = _floats(ch, rng, o)
            tensors[scale] = _floats(ch, rng, o)
            tensors[shift] = _floats(ch, rng, o)
            input_scale = 2.0 ** ch.integer(-12, 3)
            ops.append(
                {
                    "type": "scores",
                    "input_scale": input_scale,
                    "bias": bias,
                    "scale": scale,
                    "shift": shift,
                }
            )
        else:
            lo, hi = _thresholds(ch, rng, o, bound)
            lname, hname = name("lo"), name("hi")
            tensors[lname], tensors[hname] = lo, hi
            ops.append({"type": "threshold", "lo": lname, "hi": hname})
        kind, vshape = "bits", (o,)
    graph = {
        "format": bnnfile.FORMAT,
        "version": bnnfile.VERSION,
        "input": spec.to_json(),
        "preprocess": (
            {"kind": "pixels", "version": 1} if layout != "NF" and ch.boolean(0.2) else None
        ),
        "num_classes": vshape[0],
        "ops": ops,
        "provenance": {"model": "fuzz", "seed": ch.integer(0, 9)},
    }
    if pad_values:
        for i, op in enumerate(ops):
            if op["type"] == "conv2d" and i > 0 and any(op["padding"]):  # i > 0: bits input
                value = ch.pick((0, 1, -1))
                if value:
                    op["pad_value"] = value
    return graph, tensors


def random_input(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    """uint8 [n, *shape]: random pixels with the extremes 0, 127, 128, 255 mixed in."""
    x = rng.integers(0, 256, (n, *shape)).astype(np.uint8)
    if n:
        x[0] = rng.choice(np.array([0, 127, 128, 255], np.uint8))
    return x


# --------------------------------------------------------------------------------------------
# Writing files: sealed (correct checksum) whatever the content
# --------------------------------------------------------------------------------------------

_SAFETENSORS_DTYPES = {
    np.dtype(np.bool_): "BOOL",
    np.dtype(np.uint8): "U8",
    np.dtype(np.int8): "I8",
    np.dtype("<u2"): "U16",
    np.dtype("<i2"): "I16",
    np.dtype("<f2"): "F16",
    np.dtype("<u4"): "U32",
    np.dtype("<i4"): "I32",
    np.dtype("<f4"): "F32",
    np.dtype("<u8"): "U64",
    np.dtype("<i8"): "I64",
    np.dtype("<f8"): "F64",
}
_NUMPY_DTYPES = {v: k for k, v in _SAFETENSORS_DTYPES.items()}


def seal(graph: dict[str, Any] | str, tensors: dict[str, np.ndarray]) -> bytes:
    """The bytes of a ``.bnn`` file holding ``graph`` (JSON object or raw text, NaN allowed)
    and ``tensors``, with the checksum the loader expects: only validation can refuse it."""
    import safetensors.numpy

    text = graph if isinstance(graph, str) else json.dumps(graph, separators=(",", ":"))
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    metadata = {bnnfile.GRAPH_KEY: text, bnnfile.CHECKSUM_KEY: bnnfile._checksum(text, arrays)}
    return safetensors.numpy.save(arrays, metadata=metadata)


def frame(header: dict[str, Any] | str, data: bytes, *, length: int | None = None) -> bytes:
    """A safetensors file from a header (object or raw JSON text) and the data bytes."""
    text = header if isinstance(header, str) else json.dumps(header)
    raw = text.encode("utf-8", "surrogatepass")
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def parse_frame(blob: bytes) -> tuple[dict[str, Any], bytes] | None:
    """(header, data) of a safetensors file, or None when its framing is broken."""
    if len(blob) < 8:
        return None
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        return None
    try:
        header = json.loads(blob[8 : 8 + n])
    except (ValueError, RecursionError):
        return None
    return (header, blob[8 + n :]) if isinstance(header, dict) else None


def reseal(blob: bytes) -> bytes:
    """``blob`` with its checksum recomputed, when its header and tensor table can be read
    (so that a mutation of the graph or of the data is not simply caught by the checksum);
    else ``blob`` unchanged."""
    parsed = parse_frame(blob)
    if parsed is None:
        return blob
    header, data = parsed
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or not isinstance(metadata.get(bnnfile.GRAPH_KEY), str):
        return blob
    arrays = {}
    try:
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            dtype = _NUMPY_DTYPES[entry["dtype"]]
            begin, end = entry["data_offsets"]
            shape = tuple(entry["shape"])
            arrays[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape)
        metadata[bnnfile.CHECKSUM_KEY] = bnnfile._checksum(metadata[bnnfile.GRAPH_KEY], arrays)
        return frame(header, data)
    except Exception:  # any inconsistency: leave the blob to the loader
        return blob


# --------------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------------

INTERESTING: tuple[Any, ...] = (
    0,
    -1,
    1,
    2,
    3,
    7,
    63,
    64,
    65,
    255,
    256,
    2**16,
    2**16 + 1,
    2**20 + 1,
    2**24,
    2**31 - 1,
    2**31,
    2**32,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63),
    10**30,
    0.5,
    1.0,
    -0.0,
    1.5,
    2.0**-61,
    1e308,
    float("nan"),
    float("inf"),
    True,
    False,
    None,
    "",
    "NHWC",
    "uint8",
    "dense",
    "conv2d",
    "scores",
    "binarynet-bnn",
    "op0.weight",
    [],
    [1],
    [2, 2],
    [0, 0],
    [1, 2, 3],
    [65536, 65536],
    [2**40, 1],
    {},
    {"kind": "gcn-zca"},
    {"kind": "pixels", "version": 1},
)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indices) to a value inside a JSON object."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _get(obj: Any, path: tuple) -> Any:
    for p in path:
        obj = obj[p]
    return obj


def _value(ch: Chooser, rng: np.random.Generator, names: list[str]) -> Any:
    r = ch.integer(0, 9)
    if r < 6:
        return ch.pick(INTERESTING)
    if r < 8:
        return int(rng.integers(-(2**40), 2**40)) if r == 6 else int(rng.integers(-3, 70))
    return ch.pick(names) if names else "x"


def mutate_graph(ch: Chooser, rng: np.random.Generator, graph: dict, names: list[str]) -> dict:
    """One structural change anywhere in the graph JSON."""
    graph = copy.deepcopy(graph)
    paths = _paths(graph)
    path = ch.pick(paths)
    action = ch.integer(0, 6)
    if not path:
        action = 6
    if action <= 2:  # replace a value
        parent = _get(graph, path[:-1])
        parent[path[-1]] = _value(ch, rng, names)
    elif action == 3:  # delete a key or a list element
        parent = _get(graph, path[:-1])
        del parent[path[-1]]
    elif action == 4:  # add a key or an element
        target = _get(graph, path)
        if isinstance(target, dict):
            target[ch.pick(("extra", "type", "weight", "source", "version", "lo"))] = _value(
                ch, rng, names
            )
        elif isinstance(target, list):
            target.insert(ch.integer(0, len(target)), _value(ch, rng, names))
        else:
            _get(graph, path[:-1])[path[-1]] = [target, target]
    elif action == 5 and isinstance(graph.get("ops"), list) and graph["ops"]:
        ops = graph["ops"]  # shuffle, duplicate or drop ops
        i, j = ch.integer(0, len(ops) - 1), ch.integer(0, len(ops) - 1)
        r = ch.integer(0, 2)
        if r == 0:
            ops[i], ops[j] = ops[j], ops[i]
        elif r == 1:
            ops.insert(j, copy.deepcopy(ops[i]))
        else:
            del ops[i]
    else:  # numbers off by one
        for p in paths:
            v = _get(graph, p) if p else None
            if isinstance(v, int) and not isinstance(v, bool) and ch.boolean(0.3):
                _get(graph, p[:-1])[p[-1]] = v + ch.pick((-1, 1, 64, -64))
    return graph


def mutate_tensors(
    ch: Chooser, rng: np.random.Generator, tensors: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """One change to the tensors: dtype, shape, contents (padding bits, non-finite floats),
    a tensor dropped, added or renamed."""
    tensors = dict(tensors)
    names = sorted(tensors)
    name = ch.pick(names)
    a = tensors[name]
    action = ch.integer(0, 7)
    if action == 0:  # another dtype with the same bytes where possible
        dtype = ch.pick(list(_SAFETENSORS_DTYPES))
        raw = a.tobytes()
        raw += b"\0" * (-len(raw) % dtype.itemsize)
        tensors[name] = np.frombuffer(raw, dtype=dtype).copy()
    elif action == 1:  # one dimension more or less
        delta = ch.pick((-1, 1, 64))
        axis = ch.integer(0, a.ndim - 1) if a.ndim else 0
        shape = list(a.shape) or [1]
        shape[axis] = max(0, shape[axis] + delta)
        tensors[name] = np.resize(a, shape).astype(a.dtype)
    elif action == 2:  # reshaped: flattened or an extra axis
        tensors[name] = a.reshape(-1) if ch.boolean() else a.reshape(1, *a.shape)
    elif action == 3:  # contents: a padding bit, a NaN, an extreme
        b = a.copy()
        if b.size:
            flat = b.reshape(-1)
            i = ch.integer(0, flat.size - 1)
            if b.dtype == np.uint64:
                flat[i] |= np.uint64(1) << np.uint64(ch.integer(0, 63))
            elif b.dtype == np.float32:
                flat[i] = ch.pick((np.nan, np.inf, -np.inf, 3.4e38, 1e-45))
            elif b.dtype.kind in "iu":
                info = np.iinfo(b.dtype)
                flat[i] = ch.pick((info.min, info.max, 0, 1))
        tensors[name] = b
    elif action == 4:
        del tensors[name]
    elif action == 5:
        tensors[ch.pick(("extra", "preprocess.zca_mean", name + "x"))] = np.zeros(
            ch.integer(0, 4), ch.pick((np.float32, np.uint64, np.int32, np.uint8))
        )
    elif action == 6:  # renamed
        tensors[name + ch.pick(("_", " ", "é"))] = tensors.pop(name)
    else:  # empty
        tensors[name] = np.zeros((0, *a.shape[1:]), a.dtype)
    return tensors


def mutate_header(ch: Chooser, rng: np.random.Generator, blob: bytes) -> bytes:
    """A change to the safetensors framing: header length, a tensor entry's dtype, shape or
    offsets, duplicate keys, extra or missing data bytes."""
    parsed = parse_frame(blob)
    if parsed is None:
        return blob
    header, data = parsed
    names = [k for k in header if k != "__metadata__"]
    action = ch.integer(0, 6)
    if action == 0:
        return frame(header, data, length=ch.pick((0, 1, 7, len(blob), 2**63, 2**64 - 1)))
    if action == 1 and names:
        entry = header[ch.pick(names)]
        field = ch.pick(("dtype", "shape", "data_offsets"))
        entry[field] = ch.pick(
            (
                "F64",
                "I64",
                "BF16",
                "F8_E4M3",
                "Q",
                [2**40, 2**40],
                [2**64, 0],
                [-1],
                [0],
                [1, 0],
                [0, 2**63],
                [len(data), len(data) + 8],
                "[0, 8]",
                None,
            )
        )
        return frame(header, data)
    if action == 2 and names:  # the same key twice, the second entry different
        text = json.dumps(header)
        name = ch.pick(names)
        dup = json.dumps({name: {**header[name], "shape": [0], "data_offsets": [0, 0]}})[1:-1]
        return frame(text[:-1] + ", " + dup + "}", data)
    if action == 3:
        return frame(header, data + bytes(ch.integer(1, 9)))
    if action == 4:
        return frame(header, data[: max(0, len(data) - ch.integer(1, 9))])
    if action == 5:
        header["__metadata__"] = ch.pick(
            ({}, None, [], {"binarynet": 3}, {"binarynet": "[" * 100_000}, {"binarynet": "{}"})
        )
        return frame(header, data)
    return frame(" " * ch.integer(0, 9) + json.dumps(header) + " " * ch.integer(0, 9), data)


def mutate_bytes(ch: Chooser, blob: bytes) -> bytes:
    """Raw damage: truncation, flipped bits, inserted or deleted bytes."""
    if not blob:
        return blob
    action = ch.integer(0, 3)
    at = ch.integer(0, len(blob) - 1)
    if action == 0:
        return blob[:at]
    if action == 1:
        out = bytearray(blob)
        out[at] ^= 1 << ch.integer(0, 7)
        return bytes(out)
    if action == 2:
        return blob[:at] + bytes([ch.integer(0, 255)]) * ch.integer(1, 8) + blob[at:]
    return blob[:at] + blob[at + ch.integer(1, 16) :]


def mutate(ch: Chooser, graph: dict, tensors: dict[str, np.ndarray]) -> bytes:
    """A broken model file: 1 to 3 mutations at the graph, tensor, header or byte level, sealed
    with a correct checksum (except for raw byte damage, half the time)."""
    rng = np.random.default_rng(ch.integer(0, 2**32 - 1))
    for _ in range(ch.integer(1, 3)):
        level = ch.integer(0, 3)
        if level == 0:
            graph = mutate_graph(ch, rng, graph, sorted(tensors))
        elif level == 1:
            tensors = mutate_tensors(ch, rng, tensors)
    try:
        text = json.dumps(graph, separators=(",", ":"))
    except ValueError:  # pragma: no cover - json.dumps accepts everything INTERESTING holds
        text = "{}"
    blob = seal(text, tensors)
    if ch.boolean(0.3):
        blob = mutate_header(ch, rng, blob)
        if ch.boolean():
            blob = reseal(blob)
    if ch.boolean(0.3):
        blob = mutate_bytes(ch, blob)
        if ch.boolean():
            blob = reseal(blob)
    return blob


# --------------------------------------------------------------------------------------------
# The property
# --------------------------------------------------------------------------------------------


def check_file(
    path: Any,
    *,
    kernels: list[str] | None = None,
    threads: int | None = 1,
    batch: int = 3,
    seed: int = 0,
    on_loaded: Callable[[Any], None] | None = None,
) -> bool:
    """The fuzzing property for one file: :func:`binarynet.backends.engine.load` either raises
    :class:`binarynet.graph.bnnfile.BNNFileError` with a message, or returns a model whose scores
    and pre-activations equal :func:`reference`'s bit for bit with every kernel in ``kernels``
    (default: the best one). Returns whether the file loaded. Any other exception propagates."""
    from binarynet.backends import engine

    try:
        model = engine.load(path, threads=threads)
    except bnnfile.BNNFileError as exc:
        assert str(exc), "a BNNFileError without a message"
        return False
    if on_loaded is not None:
        on_loaded(model)
    graph = bnnfile.graph_to_json(model.graph)
    tensors = model._tensors
    rng = np.random.default_rng(seed)
    x = random_input(rng, model.input_shape, batch)
    expected, ys = reference(graph, tensors, x)
    for kernel in kernels or [None]:
        m = model if kernel is None else engine.load(path, threads=threads, kernel=kernel)
        scores = m.scores(x, preprocess=False)
        np.testing.assert_array_equal(scores.view(np.uint32), expected.view(np.uint32))
        pre = m.preactivations(x, preprocess=False)
        assert len(pre) == len(ys)
        for got, want in zip(pre, ys, strict=True):
            np.testing.assert_array_equal(got, want)
    return True
