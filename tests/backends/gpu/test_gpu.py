"""Tests of the GPU binary GEMM (binarynet.backends.gpu, Triton kernels).

Every kernel is compared bit for bit with a NumPy oracle and with the CPU reference kernels
(``binarynet._kernels``, ``kernel="reference"``). Where to run follows the machine:

- with a CUDA device (and ``TRITON_INTERPRET`` unset), on the GPU, compiled;
- without one, on CPU tensors under Triton's interpreter (NumPy): the ``gpu`` fixture loads the
  kernels with ``TRITON_INTERPRET=1`` — ``binarynet.backends.gpu.kernels(interpret=True)`` sets it
  before the kernels are defined, which is when Triton reads it — and restores the variable after
  this module. The interpreter is slow, so every case is tiny (M, N ≤ 40, K ≤ 200).

Without triton every test here but the first two skips (``pip install "binarynet[gpu]"``).
``test_kernels_compile_for_cuda`` compiles the kernels for sm_90 with the ptxas inside the
triton wheel (no GPU needed) in a subprocess.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: sys.modules[name] is None
        return False


HAVE_TRITON = _installed("triton")
I32_MIN, I32_MAX = np.iinfo(np.int32).min, np.iinfo(np.int32).max


def _subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "src"), env.get("PYTHONPATH", "")) if p
    )
    return env


# --------------------------------------------------------------------------------------------
# Without triton


def test_imports_without_torch_or_triton():
    """``import binarynet.backends.gpu`` imports neither torch nor triton."""
    code = textwrap.dedent(
        """
        import sys
        import binarynet.backends.gpu as g
        import binarynet.backends.gpu.bgemm
        import binarynet.backends.gpu.dense
        assert "torch" not in sys.modules and "triton" not in sys.modules, sorted(sys.modules)
        print("ok")
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_subprocess_env()
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("ok")


def test_clear_error_without_triton():
    """With triton unimportable, every entry point raises GpuUnavailableError naming it."""
    pytest.importorskip("torch")
    code = textwrap.dedent(
        """
        import sys
        sys.modules["triton"] = None  # makes `import triton` fail as if it were not installed
        import torch
        import binarynet.backends.gpu as g
        assert not g.triton_available() and not g.gpu_available()
        words = torch.zeros((1, 2), dtype=torch.int32)
        calls = [
            lambda: g.bgemm(words, words, 1),
            lambda: g.bgemm_threshold(words, words, 1, [0], [0]),
            lambda: g.pack_signs_gpu(torch.ones(1, 3)),
            lambda: g.kernels(),
            lambda: g.GpuKernels("cpu"),
        ]
        for call in calls:
            try:
                call()
            except g.GpuUnavailableError as e:
                assert "triton" in str(e) and "binarynet[gpu]" in str(e), str(e)
            else:
                raise AssertionError("no error")
        print("ok")
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_subprocess_env()
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("ok")


# --------------------------------------------------------------------------------------------
# Fixtures and oracle

needs_triton = pytest.mark.skipif(
    not HAVE_TRITON, reason="triton is not installed (pip install 'binarynet[gpu]')"
)


@pytest.fixture(scope="module")
def ck():
    """The CPU kernels (binarynet._kernels), the reference."""
    return pytest.importorskip("binarynet._kernels")


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def gpu(torch):
    """binarynet.backends.gpu with its kernels loaded: compiled on a CUDA machine, else
    interpreted."""
    if not HAVE_TRITON:
        pytest.skip("triton is not installed (pip install 'binarynet[gpu]')")
    import binarynet.backends.gpu as g

    saved = os.environ.get("TRITON_INTERPRET")
    use_gpu = torch.cuda.is_available() and saved in (None, "", "0")
    g.kernels(interpret=not use_gpu)
    yield g
    if saved is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = saved


@pytest.fixture(scope="module")
def dev(gpu, torch):
    return torch.device("cpu" if gpu.kernels().INTERPRET else "cuda")


def rng_for(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def random_pm1(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.where(rng.random(shape) < 0.5, -1, 1).astype(np.int8)


def pack_np(pm1: np.ndarray) -> np.ndarray:
    """±1 [R, K] → uint64 [R, ceil(K/64)] (bit 1 = −1), independent of both packers."""
    rows, k = pm1.shape
    bits = np.zeros((rows, 64 * ((k + 63) // 64)), dtype=np.uint8)
    bits[:, :k] = pm1 < 0
    return np.packbits(bits, axis=-1, bitorder="little").view("<u8").reshape(rows, -1)


def threshold_np(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """uint64 packed: bit 1 where x is outside [lo, hi]."""
    outside = ~((lo <= x) & (x <= hi))
    return pack_np(np.where(outside, -1, 1).astype(np.int8))


GEMM_SHAPES = [  # (M, N, K): K around and off multiples of 32 and 64, batch 1
    (1, 1, 1),
    (1, 40, 200),
    (40, 1, 63),
    (7, 33, 64),
    (5, 9, 31),
    (3, 40, 96),
    (13, 17, 129),
    (40, 40, 200),
]


# --------------------------------------------------------------------------------------------
# Binary GEMM


@needs_triton
def test_mode_follows_the_machine(gpu, torch):
    mod = gpu.kernels()
    if not torch.cuda.is_available():
        assert mod.INTERPRET and os.environ.get("TRITON_INTERPRET") == "1"
    elif os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        assert not mod.INTERPRET
    with pytest.raises(gpu.GpuUnavailableError, match="cannot run"):
        gpu.kernels(interpret=not mod.INTERPRET)


@needs_triton
@pytest.mark.parametrize("shape", GEMM_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_bgemm(gpu, ck, torch, dev, shape):
    M, N, k = shape
    rng = rng_for("bgemm", shape)
    a, w = random_pm1(rng, (M, k)), random_pm1(rng, (N, k))
    pa, pw = ck.pack_signs(a), ck.pack_signs(w)
    oracle = a.astype(np.int64) @ w.astype(np.int64).T
    reference = ck.bgemm(pa, pw, k, kernel="reference")
    np.testing.assert_array_equal(reference, oracle)

    out = gpu.bgemm(gpu.as_words(pa, dev), gpu.as_words(pw, dev), k)
    assert out.dtype == torch.int32 and out.shape == (M, N) and out.device.type == dev.type
    np.testing.assert_array_equal(out.cpu().numpy(), reference)

    # Operands packed on the device from float tensors give the same words and products.
    ga = gpu.pack_signs_gpu(torch.from_numpy(a.astype(np.float32)).to(dev))
    gw = gpu.pack_signs_gpu(torch.from_numpy(w.astype(np.float32)).to(dev))
    np.testing.assert_array_equal(gpu.to_uint64(ga), pa)
    np.testing.assert_array_equal(gpu.to_uint64(gw), pw)
    np.testing.assert_array_equal(gpu.bgemm(ga, gw, k).cpu().numpy(), reference)


@needs_triton
def test_bgemm_strides_extra_words_and_input_kinds(gpu, ck, torch, dev):
    M, N, k = 11, 21, 70  # 3 int32 words of data, 4 in the uint64 layout
    rng = rng_for("strides")
    a, w = random_pm1(rng, (M, k)), random_pm1(rng, (N, k))
    pa, pw = ck.pack_signs(a), ck.pack_signs(w)
    reference = ck.bgemm(pa, pw, k, kernel="reference")

    # Column-major storage of a (w stays row-major): only the strides differ.
    a_words = gpu.as_words(pa, dev)
    a_colmajor = a_words.t().contiguous().t()
    assert a_colmajor.stride() == (1, M)
    out = gpu.bgemm(a_colmajor, gpu.as_words(pw, dev), k)
    np.testing.assert_array_equal(out.cpu().numpy(), reference)

    # Extra zero words past the data change nothing.
    pad = torch.zeros((M, 4), dtype=torch.int32, device=dev)
    padw = torch.zeros((N, 4), dtype=torch.int32, device=dev)
    wide_a = torch.cat([a_words, pad], dim=1)
    wide_w = torch.cat([gpu.as_words(pw, dev), padw], dim=1)
    np.testing.assert_array_equal(gpu.bgemm(wide_a, wide_w, k).cpu().numpy(), reference)

    # int64 tensors (the uint64 bits) are viewed as int32 words.
    a64 = torch.from_numpy(pa.view(np.int64)).to(dev)
    w64 = torch.from_numpy(pw.view(np.int64)).to(dev)
    np.testing.assert_array_equal(gpu.bgemm(a64, w64, k).cpu().numpy(), reference)

    # Smaller tiles than the default (several programs along M and N) agree.
    small = gpu.bgemm(a_words, gpu.as_words(pw, dev), k, block_m=16, block_n=16)
    np.testing.assert_array_equal(small.cpu().numpy(), reference)


THRESHOLD_SHAPES = [(1, 1, 1), (5, 31, 200), (9, 32, 64), (3, 33, 130), (40, 40, 95), (1, 40, 7)]


@needs_triton
@pytest.mark.parametrize("shape", THRESHOLD_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_bgemm_threshold(gpu, ck, torch, dev, shape):
    """Random intervals mixed with ties at both ends, lo > hi and the full int32 range."""
    M, N, k = shape
    rng = rng_for("threshold", shape)
    a, w = random_pm1(rng, (M, k)), random_pm1(rng, (N, k))
    pa, pw = ck.pack_signs(a), ck.pack_signs(w)
    x = a.astype(np.int64) @ w.astype(np.int64).T
    m0 = int(rng.integers(M))
    kind = rng.integers(6, size=N)
    lo = rng.integers(-k - 2, k + 3, size=N)
    hi = lo + rng.integers(0, 2 * k + 2, size=N)
    lo = np.where(kind == 1, x[m0], lo)  # tie at lo: x == lo is inside (+1)
    hi = np.where(kind == 1, x[m0] + rng.integers(0, 3, size=N), hi)
    hi = np.where(kind == 2, x[m0], hi)  # tie at hi
    lo = np.where(kind == 2, x[m0] - rng.integers(0, 3, size=N), lo)
    lo, hi = np.where(kind == 3, x[m0] + 1, lo), np.where(kind == 3, x[m0], hi)  # lo > hi
    lo, hi = np.where(kind == 4, I32_MIN, lo), np.where(kind == 4, I32_MAX, hi)  # everything
    lo, hi = np.where(kind == 5, x[m0] + 1, lo), np.where(kind == 5, I32_MAX, hi)  # x < lo
    lo, hi = lo.astype(np.int32), hi.astype(np.int32)

    expected = threshold_np(x, lo, hi)
    reference = ck.bgemm_threshold(pa, pw, k, lo, hi, kernel="reference")
    np.testing.assert_array_equal(reference, expected)

    out = gpu.bgemm_threshold(gpu.as_words(pa, dev), gpu.as_words(pw, dev), k, lo, hi)
    assert out.dtype == torch.int32 and out.shape == (M, 2 * ((N + 63) // 64))
    np.testing.assert_array_equal(gpu.to_uint64(out), reference)
    # lo / hi given as tensors on the device work the same.
    out_t = gpu.bgemm_threshold(
        gpu.as_words(pa, dev),
        gpu.as_words(pw, dev),
        k,
        torch.from_numpy(lo).to(dev),
        torch.from_numpy(hi).to(dev),
    )
    np.testing.assert_array_equal(gpu.to_uint64(out_t), reference)


@needs_triton
def test_bgemm_threshold_extremes_and_padding(gpu, ck, dev):
    M, N, k = 3, 40, 50
    rng = rng_for("extremes")
    pa, pw = ck.pack_signs(random_pm1(rng, (M, k))), ck.pack_signs(random_pm1(rng, (N, k)))
    a, w = gpu.as_words(pa, dev), gpu.as_words(pw, dev)
    real = (1 << N) - 1
    empty = gpu.bgemm_threshold(a, w, k, np.ones(N, np.int32), np.zeros(N, np.int32))
    assert (gpu.to_uint64(empty) == np.uint64(real)).all()  # lo > hi: all −1, padding 0
    full = gpu.bgemm_threshold(
        a, w, k, np.full(N, I32_MIN, np.int32), np.full(N, I32_MAX, np.int32)
    )
    assert (gpu.to_uint64(full) == 0).all()
    # A tile wider than N with only part of the words in range.
    narrow = gpu.bgemm_threshold(a, w, k, np.ones(N, np.int32), np.zeros(N, np.int32), block_n=128)
    assert (gpu.to_uint64(narrow) == np.uint64(real)).all()


# --------------------------------------------------------------------------------------------
# Packing


@needs_triton
@pytest.mark.parametrize("shape", [(1, 1), (3, 31), (5, 64), (2, 65), (40, 200), (17, 300)])
def test_pack_signs_round_trip(gpu, ck, torch, dev, shape):
    R, k = shape
    rng = rng_for("pack", shape)
    x = rng.standard_normal(shape).astype(np.float32)
    specials = np.array([0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, -1e-45, 1e-45], np.float32)
    flat = x.reshape(-1)
    flat[: min(flat.size, specials.size)] = specials[: flat.size]
    expected = ck.pack_signs(x)
    np.testing.assert_array_equal(expected, pack_np(np.where(x < 0, -1, 1).astype(np.int8)))

    packed = gpu.pack_signs_gpu(torch.from_numpy(x).to(dev))
    assert packed.dtype == torch.int32 and packed.shape == (R, 2 * ((k + 63) // 64))
    np.testing.assert_array_equal(gpu.to_uint64(packed), expected)
    back = ck.unpack_signs(gpu.to_uint64(packed), k)
    np.testing.assert_array_equal(back, np.where(x < 0, -1, 1))

    # Other dtypes: half precision (where ±1e-45 rounds to ±0) and ±1 int8; a transposed view.
    half = torch.from_numpy(x).to(dev).to(torch.float16)
    half_expected = ck.pack_signs(half.float().cpu().numpy())
    np.testing.assert_array_equal(gpu.to_uint64(gpu.pack_signs_gpu(half)), half_expected)
    signs = torch.from_numpy(np.where(x < 0, -1, 1).astype(np.int8)).to(dev)
    np.testing.assert_array_equal(gpu.to_uint64(gpu.pack_signs_gpu(signs)), expected)
    xt = torch.from_numpy(np.ascontiguousarray(x.T)).to(dev).t()
    np.testing.assert_array_equal(gpu.to_uint64(gpu.pack_signs_gpu(xt)), expected)


@needs_triton
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 40, 200), (17, 9, 63)])
def test_bitplanes(gpu, ck, torch, dev, shape):
    """pack_bitplanes_gpu and bitplane_gemm (the first layer, Algorithm 5) against the CPU."""
    M, N, k = shape
    rng = rng_for("bitplane", shape)
    x = rng.integers(0, 256, size=(M, k), dtype=np.uint8)
    x.reshape(-1)[:2] = (0, 255)[: x.size]
    w = random_pm1(rng, (N, k))
    pw = ck.pack_signs(w)

    planes = gpu.pack_bitplanes_gpu(torch.from_numpy(x).to(dev))
    assert planes.shape == (M, 8, 2 * ((k + 63) // 64))
    np.testing.assert_array_equal(gpu.to_uint64(planes), ck.pack_bitplanes(x))

    oracle = x.astype(np.int64) @ w.astype(np.int64).T
    reference = ck.bitplane_gemm(x, pw, k, kernel="reference")
    np.testing.assert_array_equal(reference, oracle)
    out = gpu.bitplane_gemm(planes, gpu.as_words(pw, dev), k)
    np.testing.assert_array_equal(out.cpu().numpy(), reference)
    out_u8 = gpu.bitplane_gemm(torch.from_numpy(x).to(dev), gpu.as_words(pw, dev), k)
    np.testing.assert_array_equal(out_u8.cpu().numpy(), reference)


@needs_triton
def test_threshold_bits_gpu(gpu, torch, dev):
    rng = rng_for("threshold_bits")
    y = rng.integers(-300, 300, size=(6, 37)).astype(np.int32)
    lo = rng.integers(-300, 100, size=37).astype(np.int32)
    hi = (lo + rng.integers(-20, 400, size=37)).astype(np.int32)
    lo[0], hi[0] = y[0, 0], y[0, 0]  # tie on both ends
    out = gpu.threshold_bits_gpu(torch.from_numpy(y).to(dev), lo, hi)
    np.testing.assert_array_equal(gpu.to_uint64(out), threshold_np(y, lo, hi))


# --------------------------------------------------------------------------------------------
# Baseline, backend, errors


@needs_triton
def test_naive_float_gemm(gpu, torch, dev):
    rng = rng_for("naive")
    a = torch.from_numpy(rng.standard_normal((9, 33)).astype(np.float32)).to(dev)
    b = torch.from_numpy(rng.standard_normal((33, 21)).astype(np.float32)).to(dev)
    c = gpu.naive_float_gemm(a, b)
    assert c.dtype == torch.float32 and c.shape == (9, 21)
    torch.testing.assert_close(c.cpu(), (a.double() @ b.double()).float().cpu())
    # ±1 products are integers: exact.
    s = torch.from_numpy(random_pm1(rng, (9, 33)).astype(np.float32)).to(dev)
    t = torch.from_numpy(random_pm1(rng, (33, 21)).astype(np.float32)).to(dev)
    assert torch.equal(gpu.naive_float_gemm(s, t).cpu(), (s @ t).cpu())
    # half-precision inputs are multiplied and summed in float32
    h = gpu.naive_float_gemm(s.half(), t.half())
    assert torch.equal(h.cpu(), (s @ t).cpu())


@needs_triton
def test_gpu_backend_matches_cpu_backend(gpu, ck, torch, dev):
    M, N, k = 4, 40, 150
    rng = rng_for("backend")
    pa, pw = ck.pack_signs(random_pm1(rng, (M, k))), ck.pack_signs(random_pm1(rng, (N, k)))
    x = rng.integers(0, 256, size=(M, k), dtype=np.uint8)
    lo = rng.integers(-20, 5, size=N).astype(np.int32)
    hi = (lo + 15).astype(np.int32)
    backend = gpu.GpuKernels(str(dev))
    out = backend.bgemm(pa, pw, k)
    assert isinstance(out, np.ndarray) and out.dtype == np.int32
    np.testing.assert_array_equal(out, ck.bgemm(pa, pw, k, kernel="reference"))
    bits = backend.bgemm_threshold(pa, pw, k, lo, hi)
    assert bits.dtype == np.uint64
    np.testing.assert_array_equal(bits, ck.bgemm_threshold(pa, pw, k, lo, hi, kernel="reference"))
    np.testing.assert_array_equal(
        backend.bitplane_gemm(x, pw, k), ck.bitplane_gemm(x, pw, k, kernel="reference")
    )
    assert len(backend._weights) == 1  # the weights went to the device once


@needs_triton
def test_argument_errors(gpu, torch, dev):
    words = torch.zeros((3, 2), dtype=torch.int32, device=dev)
    with pytest.raises(ValueError, match="fewer than k"):
        gpu.bgemm(words, words, 65)
    with pytest.raises(ValueError, match="words per row"):
        gpu.bgemm(words, torch.zeros((3, 4), dtype=torch.int32, device=dev), 10)
    with pytest.raises(ValueError, match="3 entries"):
        gpu.bgemm_threshold(words, words, 10, [0, 0], [1, 1])
    with pytest.raises(TypeError, match="integers"):
        gpu.bgemm_threshold(words, words, 10, [0.5] * 3, [1.0] * 3)
    with pytest.raises(ValueError, match="multiple of 64"):
        gpu.bgemm_threshold(words, words, 10, [0] * 3, [1] * 3, block_n=32)
    with pytest.raises(TypeError, match="32- or 64-bit"):
        gpu.bgemm(torch.zeros((3, 2), dtype=torch.int16, device=dev), words, 10)
    with pytest.raises(ValueError, match=r"\[M, k=5\]"):
        gpu.bitplane_gemm(torch.zeros((2, 4), dtype=torch.uint8, device=dev), words, 5)
    with pytest.raises(ValueError, match="even last axis"):
        gpu.to_uint64(torch.zeros((2, 3), dtype=torch.int32))
    assert gpu.bgemm(words[:0], words, 10).shape == (0, 3)
    assert gpu.bgemm_threshold(words, words[:0], 10, [], []).shape == (3, 0)
    assert gpu.pack_signs_gpu(torch.zeros((0, 5), device=dev)).shape == (0, 2)


# --------------------------------------------------------------------------------------------
# Compiled code, without a GPU


@needs_triton
def test_kernels_compile_for_cuda():
    """Every kernel compiles to sm_90 SASS with the hardware POPC, without spilling."""
    code = textwrap.dedent(
        """
        import json, os
        os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
        try:
            from binarynet.backends.gpu.compile_check import compile_all
            rows = compile_all(90)
        except ImportError as e:  # a Triton without these compiler entry points
            print(json.dumps({"skip": str(e)}))
        else:
            print(json.dumps(rows))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_subprocess_env()
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads(run.stdout.strip().splitlines()[-1])
    if isinstance(rows, dict):
        pytest.skip(f"this Triton cannot compile ahead of time: {rows['skip']}")
    assert len(rows) == 8
    for row in rows:
        if "stack" in row:  # cuobjdump is in the triton wheel
            assert row["stack"] == 0, row
            if "gemm" in row["kernel"] and "float" not in row["kernel"]:
                assert row["popc_instructions"] > 0, row
