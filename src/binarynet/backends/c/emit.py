"""The C back-end: a validated ``.bnn`` graph as self-contained C99 (``NAME.h`` + ``NAME.c``).

The emitter is a :class:`binarynet.graph.visitor.GraphVisitor`, grouping ops into stages by role as
the engine's planner does: one *stage* per binary layer = the layer op (``dense`` / ``conv2d``, on
uint8 pixels or packed ±1 bits), the ``maxpool2d`` ops after it, and its tail (``threshold`` →
packed bits, or ``scores`` → float32). Each stage becomes one constant row of a table that the
runtime (``runtime.c``, pasted into ``NAME.c``; its comment gives the maths) walks; weights,
thresholds and the scores' float32 affine are ``static const`` arrays (flash on a
microcontroller). ``NAME_predict`` ping-pongs the stages' outputs through the caller's arena.

What the generated code needs: a C99 compiler, ``<stdint.h>``, ``<stddef.h>``, ``<string.h>``;
no heap, no global mutable state, no floating point except the scores' four float32 operations
(each stored to a ``volatile`` so that no compiler contracts a multiply and an add into an FMA).
Bit convention as everywhere in binarynet: bit 1 = −1, padding bits zero; the ``.bnn`` file's
64-bit words are emitted as pairs of 32-bit words, low half first, as numbers (so the code does
not depend on the target's byte order).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from importlib import resources
from typing import TypeVar

import numpy as np

from binarynet.graph import bnnfile
from binarynet.graph.graph import Graph, undeployable_preprocessor
from binarynet.graph.ops import (
    Conv2d,
    Dense,
    LayerOp,
    MaxPool2d,
    Scores,
    Threshold,
)
from binarynet.graph.values import INT32_MIN, ValueInfo
from binarynet.graph.visitor import GraphVisitor

__all__ = ["CSource", "CSourceError", "Stage", "StageLayer", "check_name", "emit_c", "plan"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# fmt: off
_C_KEYWORDS = frozenset((
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "_Bool", "_Complex", "_Imaginary",
))
# fmt: on
MAX_NAME = 40
"""Longest model name: C99 guarantees 31 significant characters of an external identifier, and
``NAME_predict`` adds 8; we stay near that so that every toolchain keeps the names apart."""

_ALIGN = 8  # every arena region starts on an 8-byte boundary


class CSourceError(ValueError):
    """A model the C back-end cannot (or should not) emit, or a bad name; the message says why."""


def check_name(name: str) -> str:
    """``name`` if it can prefix C identifiers (``NAME_predict``, ``NAME_ARENA_BYTES``), else
    :class:`CSourceError` naming it."""
    if (
        not isinstance(name, str)
        or not _IDENTIFIER.match(name)
        or name in _C_KEYWORDS
        or name.startswith("__")
        or len(name) > MAX_NAME
    ):
        raise CSourceError(
            f"{name!r} is not usable as a C name: expected a C identifier (letters, digits, "
            f"'_', not starting with a digit or '__', not a C keyword), at most {MAX_NAME} "
            "characters, e.g. mnist_mlp"
        )
    return name


def default_name(graph: Graph) -> str:
    """The model's registry name as a C identifier (``mnist-mlp`` → ``mnist_mlp``), else
    ``bnn_model``."""
    model = str(graph.provenance.get("model") or "")
    candidate = re.sub(r"[^A-Za-z0-9_]", "_", model).strip("_")[:MAX_NAME]
    try:
        return check_name(candidate)
    except CSourceError:
        return "bnn_model"


@dataclass(frozen=True)
class CSource:
    """The generated files and the figures a firmware author needs.

    Attributes:
        name: the prefix of every public identifier (``NAME_predict``, ``NAME_ARENA_BYTES``).
        header: the text of ``NAME.h``.
        source: the text of ``NAME.c``.
        input_bytes: one image, uint8, in the engine's layout (flat or HWC).
        num_classes: the scores written by ``NAME_predict``.
        arena_bytes: the scratch ``NAME_predict`` needs (4-byte aligned).
        const_bytes: bytes of constant data (weights, thresholds, scores' affine, stage table)
            the model adds to flash, before the code itself.
    """

    name: str
    header: str
    source: str
    input_bytes: int
    num_classes: int
    arena_bytes: int
    const_bytes: int

    @property
    def files(self) -> dict[str, str]:
        """``{file name: text}``: ``NAME.h`` and ``NAME.c``."""
        return {f"{self.name}.h": self.header, f"{self.name}.c": self.source}


# --------------------------------------------------------------------------------------------
# C literals
# --------------------------------------------------------------------------------------------


def _rows(items: list[str], per_line: int) -> str:
    lines = (",".join(items[i : i + per_line]) for i in range(0, len(items), per_line))
    return ",\n    ".join(lines)


def _u32_array(name: str, words64: np.ndarray) -> tuple[str, int]:
    words = np.ascontiguousarray(words64, dtype=np.uint64).reshape(-1)
    halves = np.empty(2 * words.size, np.uint64)
    halves[0::2] = words & np.uint64(0xFFFFFFFF)
    halves[1::2] = words >> np.uint64(32)
    body = _rows([f"0x{int(v):08x}u" for v in halves], 8) or "0u"
    return f"static const uint32_t {name}[{max(halves.size, 1)}] = {{\n    {body}}};\n", 4 * max(
        halves.size, 1
    )


def _int32_literal(v: int) -> str:
    return "(-2147483647 - 1)" if v == INT32_MIN else str(v)


def _i32_array(name: str, values: np.ndarray) -> tuple[str, int]:
    items = [_int32_literal(int(v)) for v in np.asarray(values).reshape(-1)]
    return f"static const int32_t {name}[{len(items)}] = {{\n    {_rows(items, 10)}}};\n", 4 * len(
        items
    )


def _f32_literal(v: float) -> str:
    """A float32 value as an exact C99 hexadecimal float constant (no decimal rounding)."""
    return float(np.float32(v)).hex() + "f"


def _f32_array(name: str, values: np.ndarray) -> tuple[str, int]:
    items = [_f32_literal(float(v)) for v in np.asarray(values, np.float32).reshape(-1)]
    return f"static const float {name}[{len(items)}] = {{\n    {_rows(items, 4)}}};\n", 4 * len(
        items
    )


def _words32(c: int) -> int:
    """32-bit words of one position's packed channels (padded to 64 bits like the engine's)."""
    return 2 * math.ceil(c / 64)


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


# --------------------------------------------------------------------------------------------
# The visitor
# --------------------------------------------------------------------------------------------


@dataclass
class StageLayer:
    """A layer op as the runtime's one routine sees it: a convolution of an [H, W, C] input
    (a dense layer's kernel covers its whole input). ``weight`` is the op's packed tensor."""

    op: LayerOp
    x: ValueInfo  # the op's input
    u8_input: bool
    in_hwc: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    out_hw: tuple[int, int]
    out_c: int
    weight: np.ndarray  # uint64 [O, ...], as in the file
    offset: np.ndarray | None  # uint8 input: −zp·Σw per output
    pad: int = 0  # ±1 input: the value of a padded tap (the conv2d op's pad_value)

    @property
    def row_words(self) -> int:
        return 2 * (self.weight.size // self.out_c)

    def signs(self) -> np.ndarray:
        """The weights' signs as booleans (True = −1), ``[O, kh, kw, C]`` in this geometry."""
        signs = self.op.weight_signs(self.x, {self.op.weight: self.weight})
        return signs.reshape(self.out_c, *self.kernel, self.in_hwc[2])


@dataclass
class Stage:
    """One binary layer with its pools and its tail: a row of the runtime's stage table."""

    layer: StageLayer
    pools: list[tuple[int, int, int, int]]
    out_hw: tuple[int, int]  # after the pools
    threshold: tuple[np.ndarray, np.ndarray] | None = None
    scores: tuple[float, np.ndarray | None, np.ndarray, np.ndarray] | None = None

    @property
    def output_bytes(self) -> int:
        if self.threshold is None:
            return 0  # the scores go to the caller's buffer
        return 4 * self.out_hw[0] * self.out_hw[1] * _words32(self.layer.out_c)

    @property
    def scratch_bytes(self) -> int:
        layer = self.layer
        need = 4 * (len(self.pools) + 1) * layer.out_c  # accumulators, one row per pool level
        if layer.u8_input:
            need += 32 * layer.row_words  # the patch, zero-padded to whole weight words
        return need


@dataclass(frozen=True)
class _Pool:
    """A visited ``maxpool2d``: its window and stride (kh, kw, sh, sw)."""

    geometry: tuple[int, int, int, int]


@dataclass(frozen=True)
class _Tail:
    """A visited tail op: a threshold's (lo, hi), or the scores' (input_scale, bias, scale,
    shift)."""

    threshold: tuple[np.ndarray, np.ndarray] | None = None
    scores: tuple[float, np.ndarray | None, np.ndarray, np.ndarray] | None = None


_Part = StageLayer | _Pool | _Tail
"""What the emitter returns for one op."""
_P = TypeVar("_P", StageLayer, _Pool, _Tail)


class _CEmitter(GraphVisitor[_Part]):
    """Visits the graph's ops and groups them into :class:`Stage` rows (see the module
    docstring)."""

    def __init__(self, bnn: bnnfile.BNNFile) -> None:
        self.graph, self.values, self.tensors = bnn.graph, bnn.values, bnn.tensors

    def _visit(self, i: int, kind: type[_P]) -> _P:
        part = self.graph.ops[i].accept(self, self.values[i], self.values[i + 1])
        assert isinstance(part, kind), f"op {i}: {part!r} in place of a {kind.__name__}"
        return part

    def stages(self) -> list[Stage]:
        stages: list[Stage] = []
        for span in self.graph.stages():
            layer = self._visit(span.layer, StageLayer)
            pools = [self._visit(j, _Pool).geometry for j in span.pools]
            tail = self._visit(span.tail, _Tail)
            out = self.values[span.tail + 1]
            out_hw = (out.shape[0], out.shape[1]) if len(out.shape) == 3 else (1, 1)
            stages.append(Stage(layer, pools, out_hw, tail.threshold, tail.scores))
        return stages

    def visit_dense(self, op: Dense, x: ValueInfo, y: ValueInfo) -> _Part:
        weight = self.tensors[op.weight]
        u8 = x.kind == "u8"
        if u8 or len(x.shape) == 1:  # a flat vector: a 1×1 kernel over [1, 1, K]
            hwc = (1, 1, math.prod(x.shape))
        else:  # bits [H, W, C]: the kernel covers the whole input, channels packed per position
            hwc = (x.shape[0], x.shape[1], x.shape[2])
        kernel = (hwc[0], hwc[1])
        offset = op.u8_offset(x, self.tensors, self.graph.input.zero_point) if u8 else None
        return StageLayer(
            op, x, u8, hwc, kernel, (1, 1), (0, 0), (1, 1), op.out_features, weight, offset
        )

    def visit_conv2d(self, op: Conv2d, x: ValueInfo, y: ValueInfo) -> _Part:
        weight = self.tensors[op.weight]
        u8 = x.kind == "u8"
        offset = op.u8_offset(x, self.tensors, self.graph.input.zero_point) if u8 else None
        h, w, c = x.shape
        return StageLayer(
            op,
            x,
            u8,
            (h, w, c),
            op.kernel_size,
            op.stride,
            op.padding,
            (y.shape[0], y.shape[1]),
            op.out_channels,
            weight,
            offset,
            op.pad_value,
        )

    def visit_maxpool2d(self, op: MaxPool2d, x: ValueInfo, y: ValueInfo) -> _Part:
        return _Pool((*op.kernel_size, *op.stride))

    def visit_threshold(self, op: Threshold, x: ValueInfo, y: ValueInfo) -> _Part:
        return _Tail(threshold=(self.tensors[op.lo], self.tensors[op.hi]))

    def visit_scores(self, op: Scores, x: ValueInfo, y: ValueInfo) -> _Part:
        bias = self.tensors[op.bias] if op.bias is not None else None
        return _Tail(scores=(op.input_scale, bias, self.tensors[op.scale], self.tensors[op.shift]))


# --------------------------------------------------------------------------------------------
# The files
# --------------------------------------------------------------------------------------------


def plan(bnn: bnnfile.BNNFile) -> list[Stage]:
    """The model's stages, in order (what :func:`emit_c` turns into its table)."""
    return _CEmitter(bnn).stages()


def _runtime() -> str:
    return resources.files("binarynet.backends.c").joinpath("runtime.c").read_text("utf-8")


def _stage_row(name: str, n: int, s: Stage, zero_point: int, arrays: list[str]) -> tuple[str, int]:
    """The stage's constant arrays (appended to ``arrays``) and its ``bnr_stage`` initialiser."""
    layer, const = s.layer, 0

    def add(text_bytes: tuple[str, int]) -> None:
        nonlocal const
        arrays.append(text_bytes[0])
        const += text_bytes[1]

    add(_u32_array(f"{name}_w{n}", layer.weight))
    refs = {k: "NULL" for k in ("offset", "pools", "lo", "hi", "bias", "scale", "shift")}
    input_scale = "1.0f"
    if layer.offset is not None:
        add(_i32_array(f"{name}_offset{n}", layer.offset))
        refs["offset"] = f"{name}_offset{n}"
    if s.pools:
        body = ", ".join("{" + ", ".join(f"{v}u" for v in p) + "}" for p in s.pools)
        arrays.append(f"static const bnr_pool {name}_pools{n}[{len(s.pools)}] = {{{body}}};\n")
        const += 16 * len(s.pools)
        refs["pools"] = f"{name}_pools{n}"
    if s.threshold is not None:
        for key, values in zip(("lo", "hi"), s.threshold, strict=True):
            add(_i32_array(f"{name}_{key}{n}", values))
            refs[key] = f"{name}_{key}{n}"
    else:
        assert s.scores is not None
        scale_in, bias, scale, shift = s.scores
        input_scale = _f32_literal(scale_in)
        for key, affine in (("bias", bias), ("scale", scale), ("shift", shift)):
            if affine is not None:
                add(_f32_array(f"{name}_{key}{n}", affine))
                refs[key] = f"{name}_{key}{n}"
    (h, w, c), (kh, kw), (sh, sw), (ph, pw) = (
        layer.in_hwc,
        layer.kernel,
        layer.stride,
        layer.padding,
    )
    row = (
        f"    {{{int(layer.u8_input)}u, {zero_point}u, {len(s.pools)}u, "
        f"{h}u, {w}u, {c}u, {kh}u, {kw}u, {sh}u, {sw}u, {ph}u, {pw}u, "
        f"{layer.out_hw[0]}u, {layer.out_hw[1]}u, {layer.out_c}u, {layer.row_words}u, "
        f"{s.out_hw[0]}u, {s.out_hw[1]}u, {name}_w{n}, {refs['offset']}, {refs['pools']}, "
        f"{refs['lo']}, {refs['hi']}, {input_scale}, {refs['bias']}, {refs['scale']}, "
        f"{refs['shift']}, {layer.pad}}}"
    )
    return row, const + 100  # the row itself: 19 words, 7 pointers, a float (≤ 100 bytes)


def _describe(graph: Graph) -> str:
    p = graph.provenance
    model = p.get("model") or "model"
    kwargs = p.get("model_kwargs")
    what = f"{model} {kwargs}" if kwargs else str(model)
    return what.replace("*/", "* /")


def emit_c(bnn: bnnfile.BNNFile, name: str | None = None) -> CSource:
    """The C99 source of a validated model (:func:`binarynet.graph.bnnfile.load` or
    :func:`~binarynet.graph.bnnfile.validate`); ``name`` prefixes every public identifier (default:
    the model's registry name, ``mnist_mlp``). Raises :class:`CSourceError` for a bad name and
    for a model whose preprocessor cannot run on a microcontroller (GCN + ZCA)."""
    graph = bnn.graph
    name = check_name(name) if name is not None else default_name(graph)
    refusal = undeployable_preprocessor(graph, "a microcontroller (the C back-end)")
    if refusal is not None:
        raise CSourceError(refusal)
    stages = plan(bnn)
    spec = graph.input
    arrays: list[str] = []
    rows: list[str] = []
    const = 0
    for n, stage in enumerate(stages):
        row, size = _stage_row(name, n, stage, spec.zero_point, arrays)
        rows.append(row)
        const += size
    # The arena: stage k writes region k % 2 and reads region (k - 1) % 2 (stage 0 reads the
    # input, the last stage writes the scores), then the largest stage's scratch.
    regions = [0, 0]
    for k, stage in enumerate(stages):
        regions[k % 2] = max(regions[k % 2], _aligned(stage.output_bytes))
    scratch = max(_aligned(s.scratch_bytes) for s in stages)
    arena = regions[0] + regions[1] + scratch
    upper = name.upper()
    input_bytes = math.prod(spec.shape)
    layout = {"NF": "a flat vector", "NHW": "rows × columns", "NHWC": "height × width × channels"}
    shape = " × ".join(str(d) for d in spec.shape)
    header = f"""/* {name}.h: generated by binarynet from a .bnn model ({_describe(graph)}).
 *
 * int {name}_predict(const uint8_t *input, float *scores, void *arena);
 *   input   {upper}_INPUT_BYTES uint8 pixels, {shape} ({layout[spec.layout]}, row-major), as
 *           binarynet.backends.engine takes one image: raw pixels (the network reads
 *           (p - {spec.zero_point}) * 2^{int(math.log2(spec.scale))} on its bit planes).
 *   scores  {upper}_NUM_CLASSES float32 class scores, bit-identical to binarynet.backends.engine's
 *           Model.scores, or NULL.
 *   arena   {upper}_ARENA_BYTES bytes of scratch, 4-byte aligned (8 recommended), owned by the
 *           caller (static, stack or heap); nothing survives between calls.
 *   returns the class: the index of the first largest score.
 * Reentrant: no global mutable state, so calls with separate arenas may run concurrently.
 */
#ifndef {upper}_H
#define {upper}_H

#include <stdint.h>

/* Plain int constants: they compare without warnings with an int loop index and convert to
 * size_t where a byte count is expected (memcpy, sizeof checks, array bounds). */
#define {upper}_INPUT_BYTES {input_bytes}
#define {upper}_NUM_CLASSES {graph.num_classes}
#define {upper}_ARENA_BYTES {arena}

#ifdef __cplusplus
extern "C" {{
#endif

int {name}_predict(const uint8_t *input, float *scores, void *arena);

#ifdef __cplusplus
}}
#endif

#endif /* {upper}_H */
"""
    parts = [
        f"/* {name}.c: generated by binarynet from a .bnn model ({_describe(graph)}); see "
        f"{name}.h. */\n",
        f'#include "{name}.h"\n\n#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n\n',
        _runtime(),
        "\n",
        "\n".join(arrays),
        f"\nstatic const bnr_stage {name}_stages[{len(stages)}] = {{\n"
        + ",\n".join(rows)
        + "};\n\n",
    ]
    regions_at = ["base", f"base + {regions[0]}"]
    body = [
        f"int {name}_predict(const uint8_t *input, float *scores, void *arena) {{",
        "    uint8_t *base = (uint8_t *)arena;",
        f"    uint8_t *scratch = base + {regions[0] + regions[1]};",
        f"    float local[{graph.num_classes}];",
        "    if (scores == NULL) scores = local;",
    ]
    for k in range(len(stages)):
        src = "input" if k == 0 else regions_at[(k - 1) % 2]
        dst = "scores" if k == len(stages) - 1 else regions_at[k % 2]
        body.append(f"    bnr_stage_run(&{name}_stages[{k}], {src}, {dst}, scratch);")
        body.append(f"    BNR_STAGE_DONE({k});")
    body += [f"    return bnr_argmax(scores, {graph.num_classes}u);", "}", ""]
    parts.append("\n".join(body))
    return CSource(name, header, "".join(parts), input_bytes, graph.num_classes, arena, const)
