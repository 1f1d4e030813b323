"""Tests of the compiled kernels (binarynet._kernels).

Every case runs through every kernel this CPU has (``available_kernels()``: reference, portable,
and avx2-table / avx2 / avx512 / amx-tiles / amx, or neon / neon-dotprod, where supported)
against a NumPy oracle on ±1 integer arrays; torch is only used for one cross-check of the
convolution oracle.
"""

from __future__ import annotations

import os
import threading
import zlib

import numpy as np
import pytest

K = pytest.importorskip("binarynet._kernels")

KERNELS = K.available_kernels()
I32_MIN, I32_MAX = np.iinfo(np.int32).min, np.iinfo(np.int32).max


# --------------------------------------------------------------------------------------------
# NumPy oracle


def rng_for(*key: object) -> np.random.Generator:
    """A generator seeded from the test's parameters (stable across runs, unlike hash())."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def random_pm1(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.where(rng.random(shape) < 0.5, -1, 1).astype(np.int8)


def pack_np(pm1: np.ndarray, words: int | None = None) -> np.ndarray:
    """±1 array [..., K] -> uint64 [..., words] (bit 1 = -1), independent of the C++ packer."""
    *lead, k = pm1.shape
    words = words if words is not None else (k + 63) // 64
    bits = np.zeros((*lead, words * 64), dtype=np.uint8)
    bits[..., :k] = pm1 < 0
    return np.packbits(bits, axis=-1, bitorder="little").view("<u8").reshape(*lead, words)


def bits_np(packed: np.ndarray, k: int) -> np.ndarray:
    """uint64 [..., W] -> bool [..., k] of the set bits."""
    as_bytes = np.ascontiguousarray(packed).view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., :k].astype(bool)


def threshold_np(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """bool: True where the output is -1 (bit 1)."""
    return ~((lo <= x) & (x <= hi))


def conv_np(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], padding: tuple[int, int]):
    """NHWC ±1 x [B, H, W, C], w [Co, kh, kw, C] -> int64 [B, Ho, Wo, Co], zero padding."""
    B, H, W, C = x.shape
    Co, kh, kw, _ = w.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = np.zeros((B, H + 2 * ph, W + 2 * pw, C), dtype=np.int64)
    xp[:, ph : ph + H, pw : pw + W] = x
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    out = np.zeros((B, Ho, Wo, Co), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, ky : ky + sh * (Ho - 1) + 1 : sh, kx : kx + sw * (Wo - 1) + 1 : sw]
            out += patch @ w[:, ky, kx, :].astype(np.int64).T
    return out


def pack_nhwc(x: np.ndarray) -> np.ndarray:
    return pack_np(x)


# --------------------------------------------------------------------------------------------
# Module surface


def test_available_and_default_kernels(monkeypatch):
    assert KERNELS[:2] == ["reference", "portable"]
    assert set(KERNELS) <= {
        "reference",
        "portable",
        "avx2-table",
        "avx2",
        "avx512",
        "amx-tiles",
        "amx",
        "neon",
        "neon-dotprod",
    }
    monkeypatch.delenv("BINARYNET_KERNEL", raising=False)
    assert K.default_kernel() == KERNELS[-1]
    monkeypatch.setenv("BINARYNET_KERNEL", "portable")
    assert K.default_kernel() == "portable"
    monkeypatch.setenv("BINARYNET_KERNEL", "no-such-kernel")
    with pytest.raises(ValueError, match=r"BINARYNET_KERNEL.*no-such-kernel"):
        K.default_kernel()
    a = pack_np(random_pm1(rng_for("env"), (2, 10)))
    with pytest.raises(ValueError, match="no-such-kernel"):
        K.bgemm(a, a, 10)
    assert K.bgemm(a, a, 10, kernel="reference").shape == (2, 2)


def test_num_threads_setting():
    old = K.get_num_threads()
    assert old >= 1
    try:
        K.set_num_threads(3)
        assert K.get_num_threads() == 3
    finally:
        K.set_num_threads(old)
    with pytest.raises(ValueError, match=r"set_num_threads: n must be in 1..1024, got 0"):
        K.set_num_threads(0)


# --------------------------------------------------------------------------------------------
# Packing


@pytest.mark.parametrize("k", [1, 63, 64, 65, 127, 200])
@pytest.mark.parametrize("dtype", [np.float32, np.int8])
def test_pack_unpack_round_trip(k, dtype):
    rng = rng_for("pack", k)
    x = (
        rng.normal(size=(5, k)).astype(dtype)
        if dtype == np.float32
        else rng.integers(-3, 4, (5, k)).astype(np.int8)
    )
    x[0, : min(k, 3)] = 0  # sign(0) = +1
    packed = K.pack_signs(x)
    assert packed.dtype == np.uint64 and packed.shape == (5, (k + 63) // 64)
    expected = np.where(x < 0, -1, 1).astype(np.int8)
    np.testing.assert_array_equal(packed, pack_np(expected))
    # padding bits (positions >= k) are zero
    assert not bits_np(packed, packed.shape[1] * 64)[:, k:].any()
    np.testing.assert_array_equal(K.unpack_signs(packed, k), expected)
    # unpacking fewer than all the bits is allowed
    np.testing.assert_array_equal(K.unpack_signs(packed, k - 1), expected[:, : k - 1])


@pytest.mark.parametrize("k", [1, 63, 64, 65, 200])
def test_pack_bitplanes(k):
    rng = rng_for("planes", k)
    x = rng.integers(0, 256, (4, k)).astype(np.uint8)
    x[1] = 0
    x[2] = 255
    planes = K.pack_bitplanes(x)
    assert planes.shape == (4, 8, (k + 63) // 64) and planes.dtype == np.uint64
    for n in range(8):
        expected = np.where((x >> n) & 1, -1, 1)
        np.testing.assert_array_equal(planes[:, n], pack_np(expected))
    assert not planes[1].any()
    assert not bits_np(planes, planes.shape[-1] * 64)[..., k:].any()


# --------------------------------------------------------------------------------------------
# GEMM

MN = [(1, 1), (3, 17), (17, 65), (64, 3), (65, 64), (1, 65)]
# Around the word boundaries, and past 24 words (1536 bits), where the avx2 kernel counts with
# carry-save adders in blocks of 8 words: 25 words (3 blocks + 1), 63 (7 + 7), 64, 65 (8 + 1).
KS = [1, 63, 64, 65, 127, 200, 1537, 4031, 4096, 4097]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("k", KS)
def test_bgemm(kernel, k):
    for m, n in MN:
        if k >= 4000 and kernel == "reference" and m * n > 64 * 64:
            continue
        rng = rng_for("bgemm", m, n, k)
        a, w = random_pm1(rng, (m, k)), random_pm1(rng, (n, k))
        out = K.bgemm(pack_np(a), pack_np(w), k, kernel=kernel)
        assert out.dtype == np.int32 and out.shape == (m, n)
        np.testing.assert_array_equal(out, a.astype(np.int64) @ w.astype(np.int64).T)


@pytest.mark.parametrize("kernel", KERNELS)
def test_bgemm_extra_zero_words(kernel):
    # k may be less than 64 * W by more than one word: the extra words are zero padding.
    rng = rng_for("extra")
    a, w = random_pm1(rng, (9, 70)), random_pm1(rng, (11, 70))
    out = K.bgemm(pack_np(a, words=4), pack_np(w, words=4), 70, kernel=kernel)
    np.testing.assert_array_equal(out, a.astype(np.int64) @ w.astype(np.int64).T)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("k", [1, 65, 200, 600, 1537, 4096])
def test_bgemm_with_prepared_weights(kernel, k):
    # BinaryWeights: the batch-1 path (1 to 3 rows) streams the panel copy of w, larger batches
    # the rows; both must give the plain results, with partial panels and column blocks.
    for m in (1, 2, 3, 4, 9):
        for n in (1, 10, 65, 130):
            rng = rng_for("prepared", m, n, k)
            a, w = random_pm1(rng, (m, k)), random_pm1(rng, (n, k))
            weights = K.BinaryWeights(pack_np(w), k)
            assert (weights.n, weights.k) == (n, k)
            ref = a.astype(np.int64) @ w.astype(np.int64).T
            for threads in (1, 2):
                out = K.bgemm(pack_np(a), weights, k, kernel=kernel, threads=threads)
                np.testing.assert_array_equal(out, ref)
            lo, hi = threshold_cases(ref, rng)
            bits = K.bgemm_threshold(pack_np(a), weights, k, lo, hi, kernel=kernel)
            np.testing.assert_array_equal(
                bits, K.bgemm_threshold(pack_np(a), pack_np(w), k, lo, hi, kernel="reference")
            )


def threshold_cases(x: np.ndarray, rng: np.random.Generator):
    """Per-column [lo, hi] hitting ties exactly, one-sided, empty and full ranges."""
    m, n = x.shape
    lo = np.empty(n, np.int64)
    hi = np.empty(n, np.int64)
    for j in range(n):
        v = x[rng.integers(m), j]  # a value that occurs in the column: x == lo / x == hi ties
        kind = j % 6
        lo[j], hi[j] = {
            0: (v, I32_MAX),  # gamma > 0: +1 iff x >= tau (tie at lo)
            1: (I32_MIN, v),  # gamma < 0: +1 iff x <= tau (tie at hi)
            2: (I32_MIN, I32_MAX),  # constant +1
            3: (v + 1, v),  # lo > hi: constant -1
            4: (v, v),  # both ties
            5: (v - 2, v + 2),
        }[kind]
    return lo.astype(np.int32), hi.astype(np.int32)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("k", [1, 65, 200, 4096])
def test_bgemm_threshold(kernel, k):
    for m, n in [(1, 1), (3, 17), (17, 65), (65, 64), (2, 130)]:
        rng = rng_for("thr", m, n, k)
        a, w = random_pm1(rng, (m, k)), random_pm1(rng, (n, k))
        x = a.astype(np.int64) @ w.astype(np.int64).T
        lo, hi = threshold_cases(x, rng)
        out = K.bgemm_threshold(pack_np(a), pack_np(w), k, lo, hi, kernel=kernel)
        assert out.dtype == np.uint64 and out.shape == (m, (n + 63) // 64)
        all_bits = bits_np(out, out.shape[1] * 64)
        np.testing.assert_array_equal(all_bits[:, :n], threshold_np(x, lo, hi))
        assert not all_bits[:, n:].any(), "padding bits of the output must be zero"


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("k", [1, 63, 64, 65, 200, 4096])
def test_bitplane_gemm(kernel, k):
    for m, n in [(1, 1), (3, 17), (17, 65), (64, 3)]:
        rng = rng_for("bp", m, n, k)
        x = rng.integers(0, 256, (m, k)).astype(np.uint8)
        x[0] = 255  # extremes
        if m > 1:
            x[1] = 0
        w = random_pm1(rng, (n, k))
        out = K.bitplane_gemm(x, pack_np(w), k, kernel=kernel)
        assert out.dtype == np.int32 and out.shape == (m, n)
        np.testing.assert_array_equal(out, x.astype(np.int64) @ w.astype(np.int64).T)


# The popcount kernels sum per-byte counts (each ≤ 8) in byte lanes before widening them: the
# table kernels (portable, avx2-table, the avx2 rows path) for 31 words, the avx2 carry-save
# counters for 31 blocks of 8 words (their weight-8 carries); NEON in 16-bit lanes for 4095 words.
# At K = 64 · words, with every bit of a ⊕ w set, each counter reaches its limit exactly.
COUNTER_LIMIT_WORDS = [31, 32, 24 + 7, 248, 249, 248 + 8 + 7, 4095, 4096]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("words", COUNTER_LIMIT_WORDS)
def test_bgemm_counter_limits(kernel, words):
    # Rows of a: the complement of a row of w (every bit of a ⊕ w set: dot = -k), a copy of it
    # (dot = k), random. Through the packed-panel path (9 rows), the unpacked-row path (1 row) and
    # the prepacked-W path (1 to 3 rows), as values and as threshold bits (x at ±k: ties).
    k = 64 * words - (words % 3)  # also a partial last word
    rng = rng_for("limits", words)
    w = random_pm1(rng, (11, k))
    a = random_pm1(rng, (9, k))
    a[0::3] = -w[: len(a[0::3])]
    a[1::3] = w[: len(a[1::3])]
    ref = a.astype(np.int64) @ w.astype(np.int64).T
    assert ref.min() == -k and ref.max() == k
    weights = K.BinaryWeights(pack_np(w), k)
    lo, hi = threshold_cases(ref, rng)
    for m in (9, 1, 2, 3):
        for wt in (pack_np(w), weights):
            out = K.bgemm(pack_np(a[:m]), wt, k, kernel=kernel)
            np.testing.assert_array_equal(out, ref[:m])
            bits = K.bgemm_threshold(pack_np(a[:m]), wt, k, lo, hi, kernel=kernel)
            np.testing.assert_array_equal(bits_np(bits, 11), threshold_np(ref[:m], lo, hi))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("words", [31, 32, 248, 249])
def test_bitplane_gemm_counter_limits(kernel, words):
    # The AND-popcount path at its limit: pixels 255 (every bit plane all ones) against w = -1
    # (every weight bit set), so every plane's popcount is k.
    k = 64 * words - 1
    x = np.full((9, k), 255, np.uint8)
    x[1::2] = np.random.default_rng(words).integers(0, 256, (4, k), dtype=np.uint8)
    w = np.ones((3, k), np.int8)
    w[0] = -1
    w[2, ::2] = -1
    ref = x.astype(np.int64) @ w.astype(np.int64).T
    np.testing.assert_array_equal(K.bitplane_gemm(x, pack_np(w), k, kernel=kernel), ref)


U8_MN = [(1, 1), (3, 17), (7, 33), (17, 65), (64, 3), (25, 130)]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("k", [252, 256, 257, 260, 512, 513, 784, 1031])
def test_u8gemm_accumulator_limits(kernel, k):
    # The avx2 byte GEMM adds VPMADDUBSW pair sums (|·| ≤ 510) in int16 lanes for 64 groups of
    # 4 k (|sum| ≤ 32640) before widening them: pixels 255 against all-+1 and all--1 weights put
    # every int16 lane at ±510 per group, so a chunk of 64 groups lands exactly at ±32640; k
    # around 256 (one chunk) and 512 (two), and not a multiple of 4 (zero-padded groups).
    x = np.full((6, k), 255, np.uint8)
    x[3] = 254
    x[4] = np.random.default_rng(k).integers(0, 256, k, dtype=np.uint8)
    x[5] = 0
    w = np.ones((18, k), np.int8)
    w[1::2] = -1
    w[16] = np.where(np.arange(k) % 2, 1, -1)
    ref = x.astype(np.int64) @ w.astype(np.int64).T
    assert ref.max() == 255 * k and ref.min() == -255 * k
    weights = K.U8Weights(pack_np(w), k)
    for m in (6, 1, 3):
        np.testing.assert_array_equal(K.u8gemm(x[:m], weights, kernel=kernel), ref[:m])
    lo, hi = threshold_cases(ref, rng_for("u8limits", k))
    bits = K.u8gemm_threshold(x, weights, lo, hi, kernel=kernel)
    np.testing.assert_array_equal(bits_np(bits, 18), threshold_np(ref, lo, hi))


def u8_operands(rng: np.random.Generator, m: int, n: int, k: int):
    """uint8 x [m, k] with the extremes 255 and 0 in its first rows, ±1 w [n, k]."""
    x = rng.integers(0, 256, (m, k)).astype(np.uint8)
    x[0] = 255
    if m > 1:
        x[1] = 0
    return x, random_pm1(rng, (n, k))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("k", [1, 3, 4, 27, 63, 64, 65, 200, 784])
def test_u8gemm(kernel, k):
    # The byte GEMM: k not a multiple of 4 (rows copied per task), partial blocks of 16 outputs,
    # row counts around the micro-tiles (6 and 4 rows).
    for m, n in U8_MN:
        rng = rng_for("u8", m, n, k)
        x, w = u8_operands(rng, m, n, k)
        weights = K.U8Weights(pack_np(w), k)
        assert (weights.n, weights.k) == (n, k)
        out = K.u8gemm(x, weights, kernel=kernel)
        assert out.dtype == np.int32 and out.shape == (m, n)
        ref = x.astype(np.int64) @ w.astype(np.int64).T
        np.testing.assert_array_equal(out, ref)
        np.testing.assert_array_equal(K.bitplane_gemm(x, pack_np(w), k, kernel=kernel), out)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("k", [1, 27, 65, 784])
def test_u8gemm_and_bitplane_gemm_threshold(kernel, k):
    for m, n in U8_MN:
        rng = rng_for("u8thr", m, n, k)
        x, w = u8_operands(rng, m, n, k)
        ref = x.astype(np.int64) @ w.astype(np.int64).T
        lo, hi = threshold_cases(ref, rng)
        outs = {
            "u8gemm_threshold": K.u8gemm_threshold(
                x, K.U8Weights(pack_np(w), k), lo, hi, kernel=kernel
            ),
            "bitplane_gemm_threshold": K.bitplane_gemm_threshold(
                x, pack_np(w), k, lo, hi, kernel=kernel
            ),
        }
        for name, out in outs.items():
            assert out.dtype == np.uint64 and out.shape == (m, (n + 63) // 64), name
            all_bits = bits_np(out, out.shape[1] * 64)
            np.testing.assert_array_equal(all_bits[:, :n], threshold_np(ref, lo, hi), name)
            assert not all_bits[:, n:].any(), f"{name}: padding bits of the output must be zero"


@pytest.mark.parametrize("kernel", KERNELS)
def test_threshold_bits(kernel):
    rng = rng_for("threshold_bits")
    for m, n in [(1, 1), (5, 64), (7, 130), (300, 3)]:
        y = rng.integers(-20, 20, (m, n)).astype(np.int32)
        lo, hi = threshold_cases(y, rng)
        out = K.threshold_bits(y, lo, hi, kernel=kernel, threads=2)
        assert out.dtype == np.uint64 and out.shape == (m, (n + 63) // 64)
        all_bits = bits_np(out, out.shape[1] * 64)
        np.testing.assert_array_equal(all_bits[:, :n], threshold_np(y, lo, hi))
        assert not all_bits[:, n:].any()


AMX_KERNELS = [k for k in KERNELS if k.startswith("amx")]


@pytest.mark.skipif(
    not AMX_KERNELS, reason="no AMX-INT8 tiles here (CPU, OS permission or compiler)"
)
@pytest.mark.parametrize("kernel", AMX_KERNELS or ["amx"])
def test_amx_tile_edges(kernel):
    # The AMX kernels work in tiles of 16 rows × 16 columns × 64 k, 2 × 2 tiles at a time, from
    # 32 rows per task (fewer: VPOPCNTDQ): partial tiles on every side, 1 and 2 threads, int32
    # and threshold sinks, the byte GEMM with k around its 64-byte steps (k < 48: VNNI instead).
    for m, n, k in [(32, 32, 64), (33, 17, 100), (47, 40, 640), (100, 8, 1), (64, 100, 129)]:
        rng = rng_for("amx", m, n, k)
        a, w = random_pm1(rng, (m, k)), random_pm1(rng, (n, k))
        ref = a.astype(np.int64) @ w.astype(np.int64).T
        lo, hi = threshold_cases(ref, rng)
        for threads in (1, 2):
            out = K.bgemm(pack_np(a), pack_np(w), k, kernel=kernel, threads=threads)
            np.testing.assert_array_equal(out, ref)
            bits = K.bgemm_threshold(pack_np(a), pack_np(w), k, lo, hi, kernel=kernel)
            np.testing.assert_array_equal(bits_np(bits, n), threshold_np(ref, lo, hi))
        for ku in (3, 48, 64, 65, 784):
            x, wu = u8_operands(rng, m, n, ku)
            weights = K.U8Weights(pack_np(wu), ku)
            ref8 = x.astype(np.int64) @ wu.astype(np.int64).T
            np.testing.assert_array_equal(K.u8gemm(x, weights, kernel=kernel, threads=2), ref8)
            lo8, hi8 = threshold_cases(ref8, rng)
            bits8 = K.u8gemm_threshold(x, weights, lo8, hi8, kernel=kernel)
            np.testing.assert_array_equal(bits_np(bits8, n), threshold_np(ref8, lo8, hi8))


# --------------------------------------------------------------------------------------------
# Convolution

CONV_CASES = [
    # B, H, W, C, Co, kh, kw, stride, padding
    (1, 5, 7, 3, 4, 3, 3, (1, 1), (1, 1)),
    (2, 5, 7, 70, 65, 3, 3, (2, 2), (2, 2)),
    (1, 6, 6, 64, 9, 5, 5, (1, 1), (2, 2)),
    (1, 5, 7, 130, 8, 1, 1, (2, 2), (0, 0)),
    (3, 4, 4, 3, 17, 3, 3, (1, 1), (0, 0)),
    (1, 7, 5, 70, 3, 5, 3, (2, 1), (1, 2)),
    (2, 9, 9, 33, 70, 3, 3, (1, 1), (1, 1)),
    (1, 5, 7, 3, 5, 3, 3, (1, 2), (3, 1)),  # padding wider than the kernel reach
]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[:7])))
def test_bconv2d(kernel, case):
    B, H, W, C, Co, kh, kw, stride, padding = case
    rng = rng_for("conv", case)
    x, w = random_pm1(rng, (B, H, W, C)), random_pm1(rng, (Co, kh, kw, C))
    out = K.bconv2d(pack_nhwc(x), pack_nhwc(w), C, stride, padding, kernel=kernel, threads=2)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, conv_np(x, w, stride, padding))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("case", CONV_CASES[:4], ids=lambda c: "x".join(map(str, c[:7])))
def test_bconv2d_threshold(kernel, case):
    B, H, W, C, Co, kh, kw, stride, padding = case
    rng = rng_for("convthr", case)
    x, w = random_pm1(rng, (B, H, W, C)), random_pm1(rng, (Co, kh, kw, C))
    ref = conv_np(x, w, stride, padding)
    lo, hi = threshold_cases(ref.reshape(-1, Co), rng)
    out = K.bconv2d_threshold(pack_nhwc(x), pack_nhwc(w), C, stride, padding, lo, hi, kernel=kernel)
    assert out.shape == (*ref.shape[:3], (Co + 63) // 64)
    all_bits = bits_np(out, out.shape[-1] * 64)
    np.testing.assert_array_equal(all_bits[..., :Co], threshold_np(ref, lo, hi))
    assert not all_bits[..., Co:].any()


def test_conv_oracle_matches_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for case in CONV_CASES:
        B, H, W, C, Co, kh, kw, stride, padding = case
        rng = rng_for("torch", case)
        x, w = random_pm1(rng, (B, H, W, C)), random_pm1(rng, (Co, kh, kw, C))
        tx = torch.tensor(x, dtype=torch.float32).permute(0, 3, 1, 2)
        tw = torch.tensor(w, dtype=torch.float32).permute(0, 3, 1, 2)
        ref = F.conv2d(tx, tw, stride=stride, padding=padding).permute(0, 2, 3, 1)
        out = K.bconv2d(pack_nhwc(x), pack_nhwc(w), C, stride, padding)
        np.testing.assert_array_equal(out, ref.numpy().astype(np.int64))
        np.testing.assert_array_equal(conv_np(x, w, stride, padding), out)


def im2col_np(x, kh, kw, stride, padding, pad_value):
    B, H, W, C = x.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = np.full((B, H + 2 * ph, W + 2 * pw, C), pad_value, dtype=np.uint8)
    xp[:, ph : ph + H, pw : pw + W] = x
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    cols = [
        xp[:, ky : ky + sh * (Ho - 1) + 1 : sh, kx : kx + sw * (Wo - 1) + 1 : sw]
        for ky in range(kh)
        for kx in range(kw)
    ]
    return np.concatenate(cols, axis=-1)


@pytest.mark.parametrize("kernel", KERNELS)
def test_first_layer_conv_is_im2col_then_bitplane_gemm(kernel):
    for B, H, W, C, Co, k, stride, padding, pad_value in [
        (1, 5, 7, 3, 4, 3, (1, 1), (1, 1), 0),
        (2, 8, 6, 3, 65, 5, (2, 2), (2, 2), 0),
        (1, 5, 5, 1, 8, 3, (2, 1), (0, 1), 128),
    ]:
        rng = rng_for("first", B, H, W, C, Co, k)
        x = rng.integers(0, 256, (B, H, W, C)).astype(np.uint8)
        w = random_pm1(rng, (Co, k, k, C))
        cols = K.im2col_u8(x, k, k, stride, padding, pad_value)
        np.testing.assert_array_equal(cols, im2col_np(x, k, k, stride, padding, pad_value))
        Ho, Wo = cols.shape[1:3]
        flat = cols.reshape(-1, k * k * C)
        out = K.bitplane_gemm(flat, pack_np(w.reshape(Co, -1)), k * k * C, kernel=kernel)
        ref = flat.astype(np.int64) @ w.reshape(Co, -1).astype(np.int64).T
        np.testing.assert_array_equal(out, ref)
        if pad_value == 0:  # zero padding: equals the convolution of the uint8 image
            np.testing.assert_array_equal(
                out.reshape(B, Ho, Wo, Co), conv_np(x.astype(np.int64), w, stride, padding)
            )


U8_CONV_CASES = [
    # B, H, W, C, Co, kh, kw, stride, padding, pad_value
    (2, 8, 8, 3, 128, 3, 3, (1, 1), (1, 1), 128),  # the ConvNet's first layer, small
    (1, 5, 7, 3, 4, 3, 3, (1, 1), (1, 1), 0),
    (2, 8, 6, 3, 65, 5, 5, (2, 2), (2, 2), 7),
    (1, 5, 5, 1, 8, 3, 3, (2, 1), (0, 1), 128),
    (1, 7, 9, 2, 20, 3, 2, (2, 1), (1, 0), 5),  # non-square kernel
    (3, 5, 5, 4, 17, 1, 1, (1, 1), (0, 0), 0),  # 1x1: k = 4, rows read in whole groups
    (1, 5, 7, 3, 5, 3, 3, (1, 2), (3, 1), 255),  # padding wider than the kernel reach
    (1, 20, 21, 3, 33, 3, 3, (1, 1), (1, 1), 128),  # > 1 task of rows with 2 threads
]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("case", U8_CONV_CASES, ids=lambda c: "x".join(map(str, c[:7])))
def test_u8conv2d(kernel, case):
    B, H, W, C, Co, kh, kw, stride, padding, pad_value = case
    rng = rng_for("u8conv", case)
    x = rng.integers(0, 256, (B, H, W, C)).astype(np.uint8)
    x[0, 0] = 255
    w = random_pm1(rng, (Co, kh, kw, C))
    weights = K.U8Weights(pack_np(w.reshape(Co, -1)), kh * kw * C)
    cols = im2col_np(x, kh, kw, stride, padding, pad_value)
    ref = cols.astype(np.int64) @ w.reshape(Co, -1).astype(np.int64).T
    for threads in (1, 2):
        out = K.u8conv2d(
            x, weights, kh, kw, stride, padding, pad_value, kernel=kernel, threads=threads
        )
        assert out.dtype == np.int32 and out.shape == ref.shape
        np.testing.assert_array_equal(out, ref)
    if pad_value == 0:  # zero padding: the convolution of the uint8 image
        np.testing.assert_array_equal(out, conv_np(x.astype(np.int64), w, stride, padding))
    lo, hi = threshold_cases(ref.reshape(-1, Co), rng)
    bits = K.u8conv2d_threshold(
        x, weights, kh, kw, stride, padding, pad_value, lo, hi, kernel=kernel
    )
    assert bits.dtype == np.uint64 and bits.shape == (*ref.shape[:3], (Co + 63) // 64)
    all_bits = bits_np(bits, bits.shape[-1] * 64)
    np.testing.assert_array_equal(all_bits[..., :Co], threshold_np(ref, lo, hi))
    assert not all_bits[..., Co:].any()


# --------------------------------------------------------------------------------------------
# Pooling


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("k,stride", [(2, 2), (3, 2), (3, 3), (1, 1)])
def test_maxpool2d_int32(kernel, k, stride):
    rng = rng_for("pool", k, stride)
    x = rng.integers(-50, 50, (2, 7, 5, 6)).astype(np.int32)
    x[0, 0, 0, 0] = I32_MIN  # the reference's starting value, and the other extreme
    x[1, 2, 3, 4] = I32_MAX
    out = K.maxpool2d_int32(x, k, stride, kernel=kernel, threads=2)
    Ho, Wo = (7 - k) // stride + 1, (5 - k) // stride + 1
    ref = np.full((2, Ho, Wo, 6), I32_MIN, np.int64)
    for ky in range(k):
        for kx in range(k):
            ref = np.maximum(
                ref,
                x[
                    :,
                    ky : ky + stride * (Ho - 1) + 1 : stride,
                    kx : kx + stride * (Wo - 1) + 1 : stride,
                ],
            )
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("channels", [3, 64, 70])
def test_maxpool_bits_commutes_with_threshold(kernel, channels):
    """max-pool then threshold == threshold then AND/OR-pool of the bits (the exporter's forms)."""
    rng = rng_for("poolbits", channels)
    B, H, W = 2, 6, 5
    x = rng.integers(-4, 5, (B, H, W, channels)).astype(np.int32)  # small range: many ties
    tau = rng.integers(-3, 4, channels).astype(np.int32)
    kind = np.arange(channels) % 4  # 0: gamma > 0, 1: gamma < 0, 2: constant +1, 3: constant -1
    lo = np.where(kind == 0, tau, np.where(kind == 3, 1, I32_MIN)).astype(np.int32)
    hi = np.where(kind == 1, tau, np.where(kind == 3, 0, I32_MAX)).astype(np.int32)
    increasing = kind != 1
    and_mask = pack_np(np.where(increasing, -1, 1)[None, :])[0]  # bit 1 -> AND
    bits = pack_np(np.where(threshold_np(x, lo, hi), -1, 1))
    for k, stride in [(2, 2), (3, 2)]:
        pooled = K.maxpool2d_int32(x, k, stride, kernel=kernel)
        expected = pack_np(np.where(threshold_np(pooled, lo, hi), -1, 1))
        out = K.maxpool2d_bits(bits, k, stride, and_mask, kernel=kernel, threads=3)
        np.testing.assert_array_equal(out, expected)


# --------------------------------------------------------------------------------------------
# Threads


@pytest.mark.parametrize("kernel", KERNELS)
def test_threads_give_identical_results(kernel):
    rng = rng_for("threads")
    a, w = pack_np(random_pm1(rng, (70, 300))), pack_np(random_pm1(rng, (130, 300)))
    x8 = rng.integers(0, 256, (9, 300)).astype(np.uint8)
    xc, wc = pack_nhwc(random_pm1(rng, (2, 9, 7, 70))), pack_nhwc(random_pm1(rng, (65, 3, 3, 70)))
    lo = np.full(130, -10, np.int32)
    hi = np.full(130, 20, np.int32)
    u8w = K.U8Weights(w, 300)
    bw = K.BinaryWeights(w, 300)
    img = rng.integers(0, 256, (2, 30, 30, 3)).astype(np.uint8)
    u8c = K.U8Weights(pack_np(random_pm1(rng, (40, 27))), 27)
    results = []
    for t in (1, 2, 3):
        results.append(
            (
                K.bgemm(a, w, 300, kernel=kernel, threads=t),
                K.bgemm(a[:1], w, 300, kernel=kernel, threads=t),
                K.bgemm_threshold(a, w, 300, lo, hi, kernel=kernel, threads=t),
                K.bitplane_gemm(x8, w, 300, kernel=kernel, threads=t),
                K.bconv2d(xc, wc, 70, 1, 1, kernel=kernel, threads=t),
                K.u8gemm(x8, u8w, kernel=kernel, threads=t),
                K.u8gemm(x8[:1], u8w, kernel=kernel, threads=t),
                K.u8gemm_threshold(x8, u8w, lo, hi, kernel=kernel, threads=t),
                K.bitplane_gemm_threshold(x8, w, 300, lo, hi, kernel=kernel, threads=t),
                K.u8conv2d(img, u8c, 3, 3, 1, 1, 128, kernel=kernel, threads=t),
                K.bgemm_threshold(a[:1], bw, 300, lo, hi, kernel=kernel, threads=t),
            )
        )
    for other in results[1:]:
        for r0, r in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(r0, r)


def test_concurrent_calls_from_python_threads():
    # The GIL is released during compute; overlapping calls must not disturb each other.
    rng = rng_for("concurrent")
    a, w = random_pm1(rng, (40, 500)), random_pm1(rng, (90, 500))
    pa, pw = pack_np(a), pack_np(w)
    ref = a.astype(np.int64) @ w.astype(np.int64).T
    errors = []

    def worker():
        try:
            for _ in range(20):
                np.testing.assert_array_equal(K.bgemm(pa, pw, 500, threads=2), ref)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_thread_pool_survives_fork():
    # The parent's workers do not exist in a forked child: the child must build its own pool
    # instead of waiting for them forever.
    rng = rng_for("fork")
    a, w = pack_np(random_pm1(rng, (40, 300))), pack_np(random_pm1(rng, (70, 300)))
    expected = K.bgemm(a, w, 300, threads=2)  # the parent's pool now has a worker
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: compute with two threads, send the bytes back, exit at once
        try:
            os.write(write_end, K.bgemm(a, w, 300, threads=2).tobytes())
        finally:
            os._exit(0)
    os.close(write_end)
    data = b""
    with os.fdopen(read_end, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0
    np.testing.assert_array_equal(np.frombuffer(data, np.int32).reshape(expected.shape), expected)


# --------------------------------------------------------------------------------------------
# Argument checking


def test_bad_arguments_raise_value_error():
    a = np.zeros((4, 2), np.uint64)
    w = np.zeros((3, 2), np.uint64)
    lo = np.zeros(3, np.int32)
    with pytest.raises(ValueError, match=r"bgemm: a must have dtype uint64, got int64"):
        K.bgemm(a.astype(np.int64), w, 100)
    with pytest.raises(ValueError, match=r"bgemm: w must be 2-D, got shape \(3,\)"):
        K.bgemm(a, np.zeros(3, np.uint64), 100)
    with pytest.raises(ValueError, match=r"w.shape\[1\]=3 must equal a.shape\[1\]=2"):
        K.bgemm(a, np.zeros((3, 3), np.uint64), 100)
    with pytest.raises(ValueError, match=r"k must be in 1..128 \(64 \* a.shape\[1\]\), got 129"):
        K.bgemm(a, w, 129)
    with pytest.raises(ValueError, match=r"k must be in 1..128 .*, got 0"):
        K.bgemm(a, w, 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.bgemm(np.zeros((2, 4), np.uint64).T, w, 100)
    bad = a.copy()
    bad[2, 1] = np.uint64(1) << np.uint64(40)  # bit 104 >= k = 100
    with pytest.raises(ValueError, match=r"a row 2 has nonzero padding bits at positions >= k=100"):
        K.bgemm(bad, w, 100)
    with pytest.raises(ValueError, match="unknown kernel 'fast'"):
        K.bgemm(a, w, 100, kernel="fast")
    for name in ("avx2-table", "avx2", "avx512", "amx-tiles", "amx"):
        if name not in KERNELS:
            with pytest.raises(ValueError, match=f"kernel '{name}' is not supported by this CPU"):
                K.bgemm(a, w, 100, kernel=name)
    with pytest.raises(ValueError, match=r"threads must be 0 .* got -1"):
        K.bgemm(a, w, 100, threads=-1)
    with pytest.raises(
        ValueError, match=r"lo must have shape \(3,\) \(one per row of w\), got \(4,\)"
    ):
        K.bgemm_threshold(a, w, 100, np.zeros(4, np.int32), lo)
    with pytest.raises(ValueError, match="hi must have dtype int32, got float32"):
        K.bgemm_threshold(a, w, 100, lo, lo.astype(np.float32))
    with pytest.raises(ValueError, match=r"bitplane_gemm: k=100 must equal x.shape\[1\]=99"):
        K.bitplane_gemm(np.zeros((2, 99), np.uint8), w, 100)
    with pytest.raises(ValueError, match="bitplane_gemm: x must have dtype uint8, got int8"):
        K.bitplane_gemm(np.zeros((2, 100), np.int8), w, 100)
    with pytest.raises(
        ValueError, match="pack_signs: x must have dtype float32 or int8, got float64"
    ):
        K.pack_signs(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"unpack_signs: k must be in 0..128 .*, got 200"):
        K.unpack_signs(a, 200)


def test_bad_prepared_weight_arguments():
    w = np.zeros((3, 2), np.uint64)
    bad = w.copy()
    bad[2, 1] = np.uint64(1) << np.uint64(50)
    with pytest.raises(ValueError, match=r"BinaryWeights: w row 2 has nonzero padding bits"):
        K.BinaryWeights(bad, 100)
    with pytest.raises(ValueError, match=r"BinaryWeights: k must be in 1..128 .*, got 0"):
        K.BinaryWeights(w, 0)
    weights = K.BinaryWeights(w, 100)
    assert repr(weights) == "BinaryWeights(n=3, k=100)" and weights.nbytes == 8 * 2 * 8
    a = np.zeros((4, 2), np.uint64)
    with pytest.raises(ValueError, match=r"bgemm: k=99 must equal w.k=100"):
        K.bgemm(a, weights, 99)
    with pytest.raises(ValueError, match=r"bgemm: a.shape\[1\]=3 must equal the words per row"):
        K.bgemm(np.zeros((4, 3), np.uint64), weights, 100)
    with pytest.raises(ValueError, match=r"bgemm_threshold: lo must have shape \(3,\)"):
        K.bgemm_threshold(a, weights, 100, np.zeros(2, np.int32), np.zeros(3, np.int32))
    with pytest.raises(TypeError):
        K.bgemm(a, "weights", 100)


def test_bad_u8_arguments():
    w = np.zeros((3, 2), np.uint64)
    with pytest.raises(ValueError, match=r"U8Weights: k must be in 1..128 .*, got 129"):
        K.U8Weights(w, 129)
    bad = w.copy()
    bad[1, 1] = np.uint64(1) << np.uint64(40)
    with pytest.raises(ValueError, match=r"U8Weights: w row 1 has nonzero padding bits"):
        K.U8Weights(bad, 100)
    with pytest.raises(ValueError, match="U8Weights: w must have dtype uint64, got int64"):
        K.U8Weights(w.astype(np.int64), 100)
    weights = K.U8Weights(w, 100)
    assert repr(weights) == "U8Weights(n=3, k=100)" and weights.nbytes > 0
    with pytest.raises(ValueError, match=r"u8gemm: x.shape\[1\]=99 must equal w.k=100"):
        K.u8gemm(np.zeros((2, 99), np.uint8), weights)
    with pytest.raises(ValueError, match="u8gemm: x must have dtype uint8, got int8"):
        K.u8gemm(np.zeros((2, 100), np.int8), weights)
    with pytest.raises(TypeError):
        K.u8gemm(np.zeros((2, 100), np.uint8), w)  # packed bits, not U8Weights
    with pytest.raises(ValueError, match=r"u8gemm_threshold: lo must have shape \(3,\)"):
        K.u8gemm_threshold(
            np.zeros((2, 100), np.uint8), weights, np.zeros(4, np.int32), np.zeros(3, np.int32)
        )
    with pytest.raises(ValueError, match=r"bitplane_gemm_threshold: hi must have dtype int32"):
        K.bitplane_gemm_threshold(
            np.zeros((2, 100), np.uint8), w, 100, np.zeros(3, np.int32), np.zeros(3, np.float32)
        )
    conv_w = K.U8Weights(np.zeros((4, 1), np.uint64), 27)
    x = np.zeros((1, 5, 5, 3), np.uint8)
    with pytest.raises(ValueError, match=r"u8conv2d: kh \* kw \* x.shape\[3\] = 3 \* 3 \* 2"):
        K.u8conv2d(np.zeros((1, 5, 5, 2), np.uint8), conv_w, 3, 3, 1, 1, 0)
    with pytest.raises(ValueError, match=r"u8conv2d: pad_value must be in 0..255, got -1"):
        K.u8conv2d(x, conv_w, 3, 3, 1, 1, -1)
    with pytest.raises(ValueError, match=r"kernel \(3, 3\) is larger than the padded input"):
        K.u8conv2d(np.zeros((1, 2, 2, 3), np.uint8), conv_w, 3, 3, 1, 0, 0)
    with pytest.raises(ValueError, match=r"u8conv2d_threshold: lo must have shape \(4,\)"):
        K.u8conv2d_threshold(x, conv_w, 3, 3, 1, 1, 0, np.zeros(3, np.int32), np.zeros(4, np.int32))
    with pytest.raises(ValueError, match=r"threshold_bits: lo must have shape \(3,\)"):
        K.threshold_bits(np.zeros((2, 3), np.int32), np.zeros(2, np.int32), np.zeros(3, np.int32))


def test_bad_conv_and_pool_arguments():
    x = np.zeros((1, 5, 5, 2), np.uint64)
    w = np.zeros((4, 3, 3, 2), np.uint64)
    with pytest.raises(ValueError, match=r"w.shape\[3\]=1 must equal x.shape\[3\]=2"):
        K.bconv2d(x, np.zeros((4, 3, 3, 1), np.uint64), 100, 1, 1)
    with pytest.raises(ValueError, match=r"c must be in 1..128 \(64 \* x.shape\[3\]\), got 129"):
        K.bconv2d(x, w, 129, 1, 1)
    with pytest.raises(ValueError, match=r"stride values must be in 1..1048576, got \(0, 1\)"):
        K.bconv2d(x, w, 100, (0, 1), 1)
    with pytest.raises(ValueError, match="padding must be an int or a pair of ints, got 'same'"):
        K.bconv2d(x, w, 100, 1, "same")
    with pytest.raises(
        ValueError, match=r"kernel \(3, 3\) is larger than the padded input \(2, 2\)"
    ):
        K.bconv2d(np.zeros((1, 2, 2, 2), np.uint64), w, 100, 1, 0)
    bad = x.copy()
    bad[0, 1, 2, 1] = np.uint64(1) << np.uint64(63)
    with pytest.raises(ValueError, match=r"x pixel 7 .* nonzero padding bits at channels >= c=100"):
        K.bconv2d(bad, w, 100, 1, 1)
    with pytest.raises(ValueError, match=r"bconv2d_threshold: lo must have shape \(4,\)"):
        K.bconv2d_threshold(x, w, 100, 1, 1, np.zeros(3, np.int32), np.zeros(4, np.int32))
    with pytest.raises(ValueError, match=r"im2col_u8: pad_value must be in 0..255, got 256"):
        K.im2col_u8(np.zeros((1, 4, 4, 3), np.uint8), 3, 3, 1, 1, 256)
    with pytest.raises(ValueError, match="im2col_u8: kh must be >= 1, got 0"):
        K.im2col_u8(np.zeros((1, 4, 4, 3), np.uint8), 0, 3, 1, 1, 0)
    with pytest.raises(ValueError, match=r"maxpool2d_int32: k=6 is larger than the input"):
        K.maxpool2d_int32(np.zeros((1, 5, 5, 2), np.int32), 6, 1)
    with pytest.raises(ValueError, match="maxpool2d_int32: stride must be >= 1, got 0"):
        K.maxpool2d_int32(np.zeros((1, 5, 5, 2), np.int32), 2, 0)
    with pytest.raises(ValueError, match=r"and_mask must have shape \(2,\)"):
        K.maxpool2d_bits(x, 2, 2, np.zeros(3, np.uint64))
    with pytest.raises(ValueError, match="maxpool2d_bits: x must have dtype uint64, got int32"):
        K.maxpool2d_bits(x.astype(np.int32), 2, 2, np.zeros(2, np.uint64))


def _every_op_call():
    """One valid call of every op binding, as (name, call(kernel, threads))."""
    z = np.zeros
    w2 = z((3, 2), np.uint64)
    lo3 = z(3, np.int32)
    x8 = z((2, 100), np.uint8)
    u8w = K.U8Weights(w2, 100)
    img = z((1, 5, 5, 1), np.uint8)
    conv_u8w = K.U8Weights(z((3, 1), np.uint64), 9)
    xc, wc = z((1, 5, 5, 1), np.uint64), z((3, 3, 3, 1), np.uint64)
    f32 = [z(4, np.float32) for _ in range(5)]
    return [
        ("pack_signs", lambda **o: K.pack_signs(z((2, 70), np.float32), **o)),
        ("unpack_signs", lambda **o: K.unpack_signs(w2, 100, **o)),
        ("pack_bitplanes", lambda **o: K.pack_bitplanes(x8, **o)),
        ("bgemm", lambda **o: K.bgemm(w2, w2, 100, **o)),
        ("bgemm", lambda **o: K.bgemm(w2, K.BinaryWeights(w2, 100), 100, **o)),
        ("bgemm_threshold", lambda **o: K.bgemm_threshold(w2, w2, 100, lo3, lo3, **o)),
        ("bitplane_gemm", lambda **o: K.bitplane_gemm(x8, w2, 100, **o)),
        (
            "bitplane_gemm_threshold",
            lambda **o: K.bitplane_gemm_threshold(x8, w2, 100, lo3, lo3, **o),
        ),
        ("u8gemm", lambda **o: K.u8gemm(x8, u8w, **o)),
        ("u8gemm_threshold", lambda **o: K.u8gemm_threshold(x8, u8w, lo3, lo3, **o)),
        ("u8conv2d", lambda **o: K.u8conv2d(img, conv_u8w, 3, 3, 1, 1, 0, **o)),
        (
            "u8conv2d_threshold",
            lambda **o: K.u8conv2d_threshold(img, conv_u8w, 3, 3, 1, 1, 0, lo3, lo3, **o),
        ),
        ("im2col_u8", lambda **o: K.im2col_u8(img, 3, 3, 1, 1, 0, **o)),
        ("bconv2d", lambda **o: K.bconv2d(xc, wc, 10, 1, 1, **o)),
        ("bconv2d_threshold", lambda **o: K.bconv2d_threshold(xc, wc, 10, 1, 1, lo3, lo3, **o)),
        ("threshold_bits", lambda **o: K.threshold_bits(z((2, 3), np.int32), lo3, lo3, **o)),
        ("maxpool2d_int32", lambda **o: K.maxpool2d_int32(z((1, 4, 4, 2), np.int32), 2, 2, **o)),
        (
            "maxpool2d_bits",
            lambda **o: K.maxpool2d_bits(xc, 2, 2, z(1, np.uint64), **o),
        ),
        (
            "shift_adamax_step",
            lambda **o: K.shift_adamax_step(
                *f32[:4], one_minus_beta1=0.125, beta2=0.999, eps=1e-8, step=0.5, **o
            ),
        ),
        ("sign_values", lambda **o: K.sign_values(f32[4], z(4, np.float32), **o)),
    ]


def test_every_op_takes_kernel_and_threads():
    """The same keyword arguments, checked the same way, on every op binding."""
    for name, call in _every_op_call():
        for kernel in ("auto", *KERNELS):
            for threads in (0, 1, 3):
                call(kernel=kernel, threads=threads)
        with pytest.raises(ValueError, match=f"^{name}: kernel: unknown kernel 'fast'"):
            call(kernel="fast")
        with pytest.raises(ValueError, match=f"^{name}: threads must be 0 .* got -1"):
            call(threads=-1)
        with pytest.raises(ValueError, match=f"^{name}: threads must be 0 .* got 1025"):
            call(kernel="reference", threads=1025)


@pytest.mark.parametrize("kernel", KERNELS)
def test_empty_operands(kernel):
    z = np.zeros
    assert K.bgemm(z((0, 2), np.uint64), z((3, 2), np.uint64), 100, kernel=kernel).shape == (0, 3)
    assert K.bgemm(z((4, 2), np.uint64), z((0, 2), np.uint64), 100, kernel=kernel).shape == (4, 0)
    lo = z(0, np.int32)
    out = K.bgemm_threshold(z((4, 2), np.uint64), z((0, 2), np.uint64), 100, lo, lo, kernel=kernel)
    assert out.shape == (4, 0)
    x8 = z((0, 100), np.uint8)
    assert K.bitplane_gemm(x8, z((3, 2), np.uint64), 100, kernel=kernel).shape == (0, 3)
    x = z((0, 5, 5, 1), np.uint64)
    assert K.bconv2d(x, z((4, 3, 3, 1), np.uint64), 10, 1, 1, kernel=kernel).shape == (0, 5, 5, 4)
    prepared = K.BinaryWeights(z((3, 2), np.uint64), 100)
    assert K.bgemm(z((0, 2), np.uint64), prepared, 100, kernel=kernel).shape == (0, 3)
    empty_w = K.BinaryWeights(z((0, 2), np.uint64), 100)
    assert K.bgemm(z((1, 2), np.uint64), empty_w, 100, kernel=kernel).shape == (1, 0)
    weights = K.U8Weights(z((3, 2), np.uint64), 100)
    assert K.u8gemm(x8, weights, kernel=kernel).shape == (0, 3)
    lo3 = z(3, np.int32)
    assert K.u8gemm_threshold(x8, weights, lo3, lo3, kernel=kernel).shape == (0, 1)
    assert K.bitplane_gemm_threshold(x8, z((3, 2), np.uint64), 100, lo3, lo3).shape == (0, 1)
    none = K.U8Weights(z((0, 2), np.uint64), 100)
    assert K.u8gemm(z((2, 100), np.uint8), none, kernel=kernel).shape == (2, 0)
    conv_w = K.U8Weights(z((4, 1), np.uint64), 9)
    img = z((0, 5, 5, 1), np.uint8)
    assert K.u8conv2d(img, conv_w, 3, 3, 1, 1, 0, kernel=kernel).shape == (0, 5, 5, 4)


def test_read_only_inputs_are_accepted():
    rng = rng_for("ro")
    a = pack_np(random_pm1(rng, (5, 80)))
    a.setflags(write=False)
    np.testing.assert_array_equal(K.bgemm(a, a, 80), K.bgemm(a.copy(), a.copy(), 80))
