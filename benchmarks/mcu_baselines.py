"""What the same network costs on a microcontroller without binarization: straightforward float32
and int8 C of a ``.bnn`` model, for ``benchmarks/mcu.py`` to build and count beside the binary C.

Both run exactly the model's function (so their classes and scores are checked against the engine
as the binary C is), with the same ``NAME_predict(input, scores, arena)`` interface as
:mod:`binarynet.backends.c`, so the same firmware (``examples/cortex-m``) runs them:

- **float32**: weights ±1.0f (4 bytes each), activations ±1.0f, the first layer on
  x = (p − zero_point)·scale, a float multiply-add per MAC into a float accumulator; batch norm +
  sign as v = a·y + b, output +1 if v ≥ 0 (a = ±1/scale, b = ∓threshold ± ½ from the graph's
  integer thresholds, exact since every sum here is an integer multiple of the input scale
  below 2²⁴); the scores' float32 affine as the engine computes it.
- **int8**: weights and activations int8 ±1 (1 byte each), the first layer on (p − zero_point)
  as int16, int32 accumulators, the thresholds as integer comparisons (what a requantising int8
  runtime such as TFLite Micro does with a BN folded into it), the same float32 scores.

Both keep each layer's whole output map (float or int32 accumulators, then float or int8
activations) in the arena, as a layer-by-layer interpreter does. Models whose thresholds are not
an up-set, a down-set or a constant (not produced by training) are refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from binarynet.backends.c.emit import Stage, plan
from binarynet.graph import bnnfile

KINDS = ("float32", "int8")

_RUNTIME = r"""
typedef struct { uint32_t kh, kw, sh, sw; } bl_pool;
typedef struct {
    uint8_t u8_input, zero_point; uint16_t npools;
    uint32_t in_h, in_w, in_c, kh, kw, sh, sw, ph, pw, out_h, out_w, out_c, final_h, final_w;
    const W_T *weight;           /* [out_c][kh][kw][in_c], ±1 */
    const bl_pool *pools;
    const THR_T *a, *b;          /* activation: float a·y + b ≥ 0, or int8 lo ≤ y ≤ hi */
    float input_scale;           /* uint8 input: x = (p − zp)·input_scale (float32 kind) */
    float score_scale;
    const float *bias, *scale, *shift; /* the scores stage */
} bl_stage;

/* The layer over the whole output map: acc[out_h][out_w][out_c]. */
static void bl_layer(const bl_stage *s, const void *in, ACC_T *acc) {
    uint32_t r, c, o, i, j, k;
    for (r = 0; r < s->out_h; ++r) {
        for (c = 0; c < s->out_w; ++c) {
            ACC_T *y = acc + ((size_t)r * s->out_w + c) * s->out_c;
            for (o = 0; o < s->out_c; ++o) {
                const W_T *w = s->weight + (size_t)o * s->kh * s->kw * s->in_c;
                ACC_T sum = 0;
                for (i = 0; i < s->kh; ++i) {
                    const int32_t hi_ = (int32_t)(r * s->sh + i) - (int32_t)s->ph;
                    if (hi_ < 0 || hi_ >= (int32_t)s->in_h) continue;
                    for (j = 0; j < s->kw; ++j) {
                        const int32_t wi = (int32_t)(c * s->sw + j) - (int32_t)s->pw;
                        const W_T *wt = w + (i * s->kw + j) * s->in_c;
                        size_t at;
                        if (wi < 0 || wi >= (int32_t)s->in_w) continue;
                        at = ((size_t)hi_ * s->in_w + (uint32_t)wi) * s->in_c;
                        if (s->u8_input) {
                            const uint8_t *x = (const uint8_t *)in + at;
                            for (k = 0; k < s->in_c; ++k) sum += U8_TERM(x[k], s) * wt[k];
                        } else {
                            const A_T *x = (const A_T *)in + at;
                            for (k = 0; k < s->in_c; ++k) sum += x[k] * wt[k];
                        }
                    }
                }
                y[o] = sum;
            }
        }
    }
}

/* Max-pool the map in place: [h][w][C] → [h'][w'][C]. */
static void bl_pool_run(const bl_pool *p, ACC_T *acc, uint32_t *h, uint32_t *w, uint32_t ch) {
    const uint32_t oh = (*h - p->kh) / p->sh + 1, ow = (*w - p->kw) / p->sw + 1;
    uint32_t r, c, o, i, j;
    for (r = 0; r < oh; ++r) {
        for (c = 0; c < ow; ++c) {
            for (o = 0; o < ch; ++o) {
                ACC_T m = acc[((size_t)(r * p->sh) * *w + c * p->sw) * ch + o];
                for (i = 0; i < p->kh; ++i) {
                    for (j = 0; j < p->kw; ++j) {
                        ACC_T v = acc[((size_t)(r * p->sh + i) * *w + c * p->sw + j) * ch + o];
                        if (v > m) m = v;
                    }
                }
                acc[((size_t)r * ow + c) * ch + o] = m; /* never ahead of what is still read */
            }
        }
    }
    *h = oh;
    *w = ow;
}

static void bl_stage_run(const bl_stage *s, const void *in, void *out, ACC_T *acc) {
    uint32_t h = s->out_h, w = s->out_w, p, n, o;
    bl_layer(s, in, acc);
    for (p = 0; p < s->npools; ++p) bl_pool_run(&s->pools[p], acc, &h, &w, s->out_c);
    n = h * w;
    if (s->scale == NULL) {
        A_T *a = (A_T *)out;
        for (p = 0; p < n; ++p) {
            const ACC_T *y = acc + (size_t)p * s->out_c;
            for (o = 0; o < s->out_c; ++o) a[p * s->out_c + o] = ACTIVATE(y[o], s, o);
        }
    } else {
        float *scores = (float *)out;
        for (o = 0; o < s->out_c; ++o) {
            volatile float v = SCORE_IN(acc[o]) * s->score_scale;
            if (s->bias != NULL) v = v + s->bias[o];
            v = v * s->scale[o];
            v = v + s->shift[o];
            scores[o] = v;
        }
    }
}

static int bl_argmax(const float *scores, uint32_t n) {
    uint32_t i, best = 0;
    for (i = 1; i < n; ++i) {
        if (scores[i] > scores[best]) best = i;
    }
    return (int)best;
}
"""

_KIND_MACROS = {
    "float32": r"""typedef float W_T;
typedef float A_T;
typedef float ACC_T;
typedef float THR_T;
#define U8_TERM(p, s) ((float)((int32_t)(p) - (int32_t)(s)->zero_point) * (s)->input_scale)
#define ACTIVATE(y, s, o) (((s)->a[o] * (y) + (s)->b[o]) >= 0.0f ? 1.0f : -1.0f)
#define SCORE_IN(y) (y)
""",
    "int8": r"""typedef int8_t W_T;
typedef int8_t A_T;
typedef int32_t ACC_T;
typedef int32_t THR_T;
#define U8_TERM(p, s) ((int16_t)((int16_t)(p) - (int16_t)(s)->zero_point))
#define ACTIVATE(y, s, o) ((A_T)(((s)->a[o] <= (y) && (y) <= (s)->b[o]) ? 1 : -1))
#define SCORE_IN(y) ((float)(y))
""",
}


def _array(ctype: str, name: str, values: np.ndarray, fmt: Callable[[Any], str] = str) -> str:
    items = [fmt(v) for v in np.asarray(values).reshape(-1).tolist()]
    lines = (",".join(items[i : i + 24]) for i in range(0, len(items), 24))
    return (
        f"static const {ctype} {name}[{max(len(items), 1)}] = {{\n  " + ",\n  ".join(lines) + "};\n"
    )


def _f32(v: float) -> str:
    return float(np.float32(v)).hex() + "f"


def _int(v: int) -> str:
    return "(-2147483647 - 1)" if v == -(2**31) else str(int(v))


def _float_threshold(lo: np.ndarray, hi: np.ndarray, bound: int, scale: float) -> tuple:
    """(a, b) with a·(y·scale) + b ≥ 0 ⟺ lo ≤ y ≤ hi, for up-sets, down-sets and constants."""
    a, b = np.zeros(lo.size, np.float64), np.zeros(lo.size, np.float64)
    for o, (low, high) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
        up, down = high >= bound, low <= -bound
        if up and down:
            a[o], b[o] = 0.0, 1.0
        elif low > high or low > bound or high < -bound:
            a[o], b[o] = 0.0, -1.0
        elif up:
            a[o], b[o] = 1.0 / scale, -low + 0.5
        elif down:
            a[o], b[o] = -1.0 / scale, high + 0.5
        else:
            raise ValueError("the float32 baseline takes thresholds from batch norm only")
    return a, b


def emit_baseline(bnn: bnnfile.BNNFile, kind: str, name: str) -> tuple[str, str, int, int]:
    """``(NAME.h, NAME.c, constant bytes, arena bytes)`` of the float32 or int8 baseline."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    stages: list[Stage] = plan(bnn)
    spec = bnn.graph.input
    elem = 4 if kind == "float32" else 1
    acc_elem = 4
    arrays, rows = [], []
    const = 0
    out_bytes, acc_bytes = [], 0
    values = bnn.values
    layer_index = [i for i, op in enumerate(bnn.graph.ops) if op.role.value == "layer"]
    for n, s in enumerate(stages):
        layer = s.layer
        signs = layer.signs()
        weights = np.where(signs, -1, 1)
        if kind == "float32":
            arrays.append(_array("float", f"w{n}", weights, lambda v: f"{v}.0f"))
        else:
            arrays.append(_array("int8_t", f"w{n}", weights))
        const += elem * weights.size
        pools = "NULL"
        if s.pools:
            body = ", ".join("{" + ", ".join(f"{v}u" for v in p) + "}" for p in s.pools)
            arrays.append(f"static const bl_pool pools{n}[{len(s.pools)}] = {{{body}}};\n")
            pools = f"pools{n}"
        a = b = bias = scale = shift = "NULL"
        score_scale = "1.0f"
        in_scale = spec.scale if layer.u8_input and kind == "float32" else 1.0
        if s.threshold is not None:
            lo, hi = s.threshold
            if kind == "float32":
                bound = values[layer_index[n] + 1].bound
                fa, fb = _float_threshold(lo, hi, bound, in_scale)
                arrays.append(_array("float", f"a{n}", fa, _f32))
                arrays.append(_array("float", f"b{n}", fb, _f32))
            else:
                arrays.append(_array("int32_t", f"a{n}", lo, _int))
                arrays.append(_array("int32_t", f"b{n}", hi, _int))
            a, b = f"a{n}", f"b{n}"
            const += 8 * layer.out_c
            out_bytes.append(elem * s.out_hw[0] * s.out_hw[1] * layer.out_c)
        else:
            assert s.scores is not None
            sc, bi, sca, shi = s.scores
            if layer.u8_input and kind == "float32":
                raise ValueError("the float32 baseline needs a binary last layer")
            score_scale = _f32(sc)
            for key, v in (("bias", bi), ("scale", sca), ("shift", shi)):
                if v is not None:
                    arrays.append(_array("float", f"{key}{n}", v, _f32))
                    const += 4 * layer.out_c
            bias = f"bias{n}" if bi is not None else "NULL"
            scale, shift = f"scale{n}", f"shift{n}"
            out_bytes.append(0)
        acc_bytes = max(acc_bytes, acc_elem * layer.out_hw[0] * layer.out_hw[1] * layer.out_c)
        (h, w, c), (kh, kw), (sh, sw), (ph, pw) = (
            layer.in_hwc,
            layer.kernel,
            layer.stride,
            layer.padding,
        )
        rows.append(
            f"  {{{int(layer.u8_input)}u, {spec.zero_point}u, {len(s.pools)}u, {h}u, {w}u, {c}u, "
            f"{kh}u, {kw}u, {sh}u, {sw}u, {ph}u, {pw}u, {layer.out_hw[0]}u, {layer.out_hw[1]}u, "
            f"{layer.out_c}u, {s.out_hw[0]}u, {s.out_hw[1]}u, w{n}, {pools}, {a}, {b}, "
            f"{_f32(in_scale)}, {score_scale}, {bias}, {scale}, {shift}}}"
        )
    regions = [0, 0]
    for k, nbytes in enumerate(out_bytes):
        regions[k % 2] = max(regions[k % 2], -(-nbytes // 8) * 8)
    arena = regions[0] + regions[1] + acc_bytes
    upper = name.upper()
    header = (
        f"#ifndef {upper}_H\n#define {upper}_H\n#include <stdint.h>\n"
        f"#define {upper}_INPUT_BYTES {math.prod(spec.shape)}u\n"
        f"#define {upper}_NUM_CLASSES {bnn.graph.num_classes}u\n"
        f"#define {upper}_ARENA_BYTES {arena}u\n"
        f"int {name}_predict(const uint8_t *input, float *scores, void *arena);\n#endif\n"
    )
    calls = []
    at = ["base", f"base + {regions[0]}"]
    for k in range(len(stages)):
        src = "input" if k == 0 else at[(k - 1) % 2]
        dst = "scores" if k == len(stages) - 1 else at[k % 2]
        calls.append(f"    bl_stage_run(&stages[{k}], {src}, {dst}, acc);")
    source = "".join(
        [
            f'#include "{name}.h"\n#include <stddef.h>\n#include <stdint.h>\n',
            _KIND_MACROS[kind],
            _RUNTIME,
            *arrays,
            f"static const bl_stage stages[{len(stages)}] = {{\n" + ",\n".join(rows) + "};\n",
            f"int {name}_predict(const uint8_t *input, float *scores, void *arena) {{\n",
            "    uint8_t *base = (uint8_t *)arena;\n",
            f"    ACC_T *acc = (ACC_T *)(base + {regions[0] + regions[1]});\n",
            f"    float local[{bnn.graph.num_classes}];\n",
            "    if (scores == NULL) scores = local;\n",
            "\n".join(calls),
            f"\n    return bl_argmax(scores, {bnn.graph.num_classes}u);\n}}\n",
        ]
    )
    return header, source, const, arena
