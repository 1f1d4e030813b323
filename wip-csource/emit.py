"""Prototype: a BNNFile → NAME.h + NAME.c (C99)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from binarynet import bnnfile
from binarynet.bnnfile import Conv2d, Dense, MaxPool2d, Scores, Threshold

RUNTIME = (Path(__file__).parent / "runtime.c").read_text()


def _words64(k: int) -> int:
    return 2 * -(-k // 64)


def _u32_array(name: str, words: np.ndarray) -> str:
    w = np.ascontiguousarray(words).reshape(-1).view("<u4")
    body = ",".join(f"0x{int(v):08x}u" for v in w)
    return f"static const uint32_t {name}[{max(len(w), 1)}] = {{{body or '0'}}};\n"


def _i32_array(name: str, values: np.ndarray) -> str:
    body = ",".join(
        f"(-{-int(v) - 1}-1)" if int(v) == -(2**31) else str(int(v)) for v in values.reshape(-1)
    )
    return f"static const int32_t {name}[{values.size}] = {{{body}}};\n"


def _f32_array(name: str, values: np.ndarray) -> str:
    body = ",".join(float(v).hex() + "f" if np.isfinite(v) else "0" for v in values.astype(np.float32).reshape(-1))
    # float.hex of a float32 value widened to double is exact; the f suffix keeps it float
    return f"static const float {name}[{values.size}] = {{{body}}};\n"


def emit(bnn: bnnfile.BNNFile, name: str) -> tuple[str, str, int]:
    graph, values, tensors = bnn.graph, bnn.values, bnn.tensors
    spec = graph.input
    ops = graph.ops
    arrays: list[str] = []
    stages: list[str] = []
    calls: list[str] = []
    value_bytes: list[int] = []  # bytes of each stage's output
    scratch = 0
    i = 0
    n = 0
    while i < len(ops):
        layer = ops[i]
        j = i + 1
        pools = []
        while isinstance(ops[j], MaxPool2d):
            pools.append(ops[j])
            j += 1
        tail = ops[j]
        x, y = values[i], values[i + 1]
        out = values[j + 1] if isinstance(tail, Threshold) else values[j + 1]
        weight = tensors[layer.weight]
        u8 = x.kind == "u8"
        if isinstance(layer, Dense):
            if u8 or len(x.shape) == 1:
                in_h, in_w, in_c = 1, 1, math.prod(x.shape)
                kh, kw = 1, 1
            else:
                in_h, in_w, in_c = x.shape
                kh, kw = in_h, in_w
            sh = sw = 1
            ph = pw = 0
            out_c = layer.out_features
            oh = ow = 1
        else:
            in_h, in_w, in_c = x.shape
            kh, kw = layer.kernel_size
            sh, sw = layer.stride
            ph, pw = layer.padding
            out_c = layer.out_channels
            oh, ow, _ = y.shape
        row_words = weight.reshape(weight.shape[0], -1).shape[1] * 2
        arrays.append(_u32_array(f"{name}_w{n}", weight))
        offset = "NULL"
        if u8:
            k = kh * kw * in_c
            negatives = bnnfile.unpack_bits(weight.reshape(out_c, -1), k).sum(axis=1)
            off = -spec.zero_point * (k - 2 * negatives.astype(np.int64))
            arrays.append(_i32_array(f"{name}_offset{n}", off))
            offset = f"{name}_offset{n}"
        pools_ref = "NULL"
        if pools:
            body = ",".join(
                f"{{{p.kernel_size[0]},{p.kernel_size[1]},{p.stride[0]},{p.stride[1]}}}" for p in pools
            )
            arrays.append(f"static const bnr_pool {name}_pools{n}[{len(pools)}] = {{{body}}};\n")
            pools_ref = f"{name}_pools{n}"
        lo = hi = bias = scale = shift = "NULL"
        input_scale = "1.0f"
        if isinstance(tail, Threshold):
            arrays.append(_i32_array(f"{name}_lo{n}", tensors[tail.lo]))
            arrays.append(_i32_array(f"{name}_hi{n}", tensors[tail.hi]))
            lo, hi = f"{name}_lo{n}", f"{name}_hi{n}"
            fo_h, fo_w = (out.shape[0], out.shape[1]) if len(out.shape) == 3 else (1, 1)
            value_bytes.append(4 * fo_h * fo_w * _words64(out_c))
        else:
            input_scale = float(tail.input_scale).hex() + "f"
            if tail.bias is not None:
                arrays.append(_f32_array(f"{name}_bias{n}", tensors[tail.bias]))
                bias = f"{name}_bias{n}"
            arrays.append(_f32_array(f"{name}_scale{n}", tensors[tail.scale]))
            arrays.append(_f32_array(f"{name}_shift{n}", tensors[tail.shift]))
            scale, shift = f"{name}_scale{n}", f"{name}_shift{n}"
            fo_h = fo_w = 1
            value_bytes.append(0)
        stages.append(
            f"    {{{int(u8)}, {spec.zero_point}, {len(pools)}, {in_h}, {in_w}, {in_c}, {kh}, {kw}, "
            f"{sh}, {sw}, {ph}, {pw}, {oh}, {ow}, {out_c}, {row_words}, {name}_w{n}, {offset}, "
            f"{pools_ref}, {lo}, {hi}, {input_scale}, {bias}, {scale}, {shift}}},\n"
        )
        need = 4 * (len(pools) + 1) * out_c
        if u8:
            need += 4 * 8 * row_words + kh * kw * in_c
        scratch = max(scratch, need)
        calls.append((fo_h, fo_w))
        n += 1
        i = j + 1
    # arena: [even outputs | odd outputs | scratch]
    even = max([b for k, b in enumerate(value_bytes) if k % 2 == 0] + [0])
    odd = max([b for k, b in enumerate(value_bytes) if k % 2 == 1] + [0])
    even, odd = (even + 7) // 8 * 8, (odd + 7) // 8 * 8
    arena = even + odd + (scratch + 7) // 8 * 8
    upper = name.upper()
    header = f"""/* {name}.h: generated by binarynet from a .bnn model. */
#ifndef {upper}_H
#define {upper}_H
#include <stdint.h>
#define {upper}_INPUT_BYTES {math.prod(spec.shape)}u
#define {upper}_NUM_CLASSES {graph.num_classes}u
#define {upper}_ARENA_BYTES {arena}u
int {name}_predict(const uint8_t *input, float *scores, void *arena);
#endif
"""
    body = [f'#include "{name}.h"\n#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n', RUNTIME]
    body += arrays
    body.append(f"static const bnr_stage {name}_stages[{n}] = {{\n" + "".join(stages) + "};\n")
    lines = [
        f"int {name}_predict(const uint8_t *input, float *scores, void *arena) {{",
        "    uint8_t *base = (uint8_t *)arena;",
        f"    float local[{graph.num_classes}];",
        "    if (scores == NULL) scores = local;",
    ]
    where = ["base", f"base + {even}"]
    for k, (fh, fw) in enumerate(calls):
        src = "input" if k == 0 else where[(k - 1) % 2]
        dst = "scores" if k == n - 1 else where[k % 2]
        lines.append(
            f"    bnr_stage_run(&{name}_stages[{k}], {src}, {dst}, base + {even + odd}, {fh}u, {fw}u);"
        )
    lines.append(f"    return bnr_argmax(scores, {graph.num_classes}u);")
    lines.append("}")
    body.append("\n".join(lines) + "\n")
    return header, "".join(body), arena
