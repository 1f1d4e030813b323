"""Hostile inputs to the engine and to the compiled kernels: a clear error or a correct answer.

- :class:`binarynet.backends.engine.Model`: wrong dtypes (``TypeError`` naming uint8), wrong rank or
  layout (``ValueError`` listing the accepted shapes), non-contiguous, reversed, broadcast,
  read-only and memory-mapped arrays (the right answer), empty batches (empty results of the
  right shapes), every batch size against every thread count and chunk size (the same scores
  as the reference interpreter of ``fuzz/bnn_models.py``), concurrent calls.
- ``binarynet._kernels``: hypothesis draws arrays of any dtype, rank, shape, memory layout and
  alignment and integer arguments of any size for every function; each call either raises
  ``ValueError`` / ``TypeError`` or returns what the NumPy oracle (and every other kernel
  variant) returns. Run under AddressSanitizer + UBSan by ``tools/sanitize.sh``.

The models are built without torch (``fuzz/bnn_models.py``).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from binarynet import _kernels as K
from binarynet.backends import engine
from binarynet.backends.engine import model as engine_model

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "fuzz"))
import bnn_models as bm  # noqa: E402

EXAMPLES = int(os.environ.get("BINARYNET_FUZZ_EXAMPLES", "100"))
KERNELS = engine.available_kernels()
fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(autouse=True)
def _quiet_float_overflow():
    with np.errstate(over="ignore", invalid="ignore"):
        yield


def _find_model(layout: str, first: str, tmp: Path, name: str) -> tuple[Path, dict, dict]:
    """A random valid model with the given input layout and first layer type."""
    for seed in range(10_000):
        graph, tensors = bm.random_model(bm.RngChooser(np.random.default_rng(seed)))
        kinds = [op["type"] for op in graph["ops"]]
        if (
            graph["input"]["layout"] == layout
            and kinds[0] == first
            and graph["preprocess"] is None
            and (first != "conv2d" or "maxpool2d" in kinds)
            and (layout == "NF" or min(graph["input"]["shape"][:2]) >= 3)
        ):
            path = tmp / f"{name}.bnn"
            path.write_bytes(bm.seal(graph, tensors))
            return path, graph, tensors
    raise AssertionError(f"no {layout} model with a first {first} layer")  # pragma: no cover


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict, dict]]:
    tmp = tmp_path_factory.mktemp("engine-inputs")
    return {
        "mlp": _find_model("NF", "dense", tmp, "mlp"),
        "grey": _find_model("NHW", "dense", tmp, "grey"),
        "conv": _find_model("NHWC", "conv2d", tmp, "conv"),
        "dense-on-image": _find_model("NHWC", "dense", tmp, "dense-on-image"),
    }


def _expected(graph: dict, tensors: dict, x: np.ndarray) -> np.ndarray:
    return bm.reference(graph, tensors, np.ascontiguousarray(x))[0]


def _same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))


# --------------------------------------------------------------------------------------------
# The engine's inputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype", [np.float32, np.float64, np.int8, np.int16, np.uint16, np.int64, bool, object]
)
def test_wrong_dtype_is_a_type_error(models, dtype) -> None:
    model = engine.load(models["conv"][0])
    x = np.zeros((2, *model.input_shape), dtype=dtype)
    with pytest.raises(TypeError, match=r"expected uint8 pixels, got dtype"):
        model.scores(x)
    with pytest.raises(TypeError, match="uint8"):
        model.predict(x)


@pytest.mark.parametrize(
    "x", [[[0] * 4], (1, 2), b"\x00" * 16, memoryview(b"\x00" * 16), 3, None, "images"]
)
def test_non_arrays_are_type_errors(models, x) -> None:
    model = engine.load(models["mlp"][0])
    with pytest.raises(TypeError, match="expected a NumPy uint8 array"):
        model.scores(x)


def test_wrong_rank_and_layout_are_value_errors(models) -> None:
    conv = engine.load(models["conv"][0])
    h, w, c = conv.input_shape
    shapes = [
        (),  # a scalar
        (h, w, c),  # one image without its batch axis
        (2, c, h, w) if (c, h, w) != (h, w, c) else (2, h + 1, w, c),  # NCHW
        (2, h, w),
        (2, h, w, c, 1),
        (2, h * w * c),  # flattened: only for a model whose first layer is dense
        (2, h, w, c + 1),
    ]
    for shape in shapes:
        with pytest.raises(ValueError, match=r"expected images of shape \['N', .*NHWC"):
            conv.scores(np.zeros(shape, np.uint8))
    mlp = engine.load(models["mlp"][0])
    (f,) = mlp.input_shape
    for shape in [(f,), (2, f + 1), (2, 1, f), (0,)]:
        with pytest.raises(ValueError, match=r"expected images of shape \['N', \d+\] \(NF"):
            mlp.scores(np.zeros(shape, np.uint8))


def test_flattened_images_for_a_dense_first_layer(models) -> None:
    for name in ("grey", "dense-on-image"):
        path, graph, tensors = models[name]
        model = engine.load(path)
        x = bm.random_input(np.random.default_rng(1), model.input_shape, 5)
        expected = _expected(graph, tensors, x)
        _same(model.scores(x), expected)
        _same(model.scores(x.reshape(5, -1)), expected)


def _layouts(x: np.ndarray) -> dict[str, np.ndarray]:
    """The same images in other memory layouts."""
    n = len(x)
    big = np.zeros((2 * n, *x.shape[1:], 2), np.uint8)
    big[::2, ..., 1] = x
    readonly = x.copy()
    readonly.flags.writeable = False
    reversed_ = x[::-1].copy()[::-1]
    return {
        "fortran": np.asfortranarray(x),
        "strided": big[::2, ..., 1],  # every other image, every other byte
        "reversed": reversed_,  # negative strides
        "read-only": readonly,
        "transposed-back": np.ascontiguousarray(np.moveaxis(x, 0, -1)).transpose(
            (x.ndim - 1, *range(x.ndim - 1))
        ),
    }


@pytest.mark.parametrize("name", ["mlp", "grey", "conv", "dense-on-image"])
def test_memory_layouts_give_the_same_answer(models, name, tmp_path) -> None:
    path, graph, tensors = models[name]
    model = engine.load(path)
    x = bm.random_input(np.random.default_rng(2), model.input_shape, 4)
    expected = _expected(graph, tensors, x)
    for layout, view in _layouts(x).items():
        assert np.array_equal(view, x), layout
        _same(model.scores(view), expected)
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")  # a read-only np.memmap
    _same(model.scores(mapped), expected)
    one = np.broadcast_to(x[:1], x.shape)  # zero stride along the batch, read-only
    _same(model.scores(one), np.repeat(expected[:1], len(x), axis=0))
    assert np.array_equal(x, np.load(tmp_path / "x.npy")), "the input must not be modified"


@pytest.mark.parametrize("name", ["mlp", "grey", "conv", "dense-on-image"])
def test_empty_batches(models, name) -> None:
    path, graph, _ = models[name]
    model = engine.load(path)
    x = np.zeros((0, *model.input_shape), np.uint8)
    scores = model.scores(x)
    assert scores.shape == (0, model.num_classes) and scores.dtype == np.float32
    predicted = model.predict(x)
    assert predicted.shape == (0,) and predicted.dtype == np.int64
    pre = model.preactivations(x)
    layers = [op for op in graph["ops"] if op["type"] in ("dense", "conv2d")]
    assert len(pre) == len(layers)
    assert all(p.shape[0] == 0 and p.dtype == np.int32 for p in pre)


@pytest.mark.parametrize("name", ["mlp", "conv"])
def test_every_batch_size_with_every_thread_count_and_chunk_size(models, name, monkeypatch):
    """Batch sizes that do not divide the thread count or the chunk size: the same answer."""
    path, graph, tensors = models[name]
    x = bm.random_input(np.random.default_rng(3), engine.load(path).input_shape, 11)
    expected = _expected(graph, tensors, x)
    for threads in (None, 1, 2, 3, 4, 7):
        for kernel in KERNELS:
            model = engine.load(path, threads=threads, kernel=kernel)
            for n in (1, 2, 3, 5, 7, 11):
                _same(model.scores(x[:n]), expected[:n])
    per_example = engine.load(path)._chunk_bytes
    for chunk in (1, 2, 3, 4):  # examples per chunk
        monkeypatch.setattr(engine_model, "BATCH_BYTES", chunk * per_example)
        model = engine.load(path, threads=2)
        _same(model.scores(x), expected)
        pre = model.preactivations(x)
        for got, want in zip(pre, bm.reference(graph, tensors, x)[1], strict=True):
            np.testing.assert_array_equal(got, want)


def test_concurrent_calls_on_one_model(models) -> None:
    path, graph, tensors = models["conv"]
    model = engine.load(path, threads=2)
    x = bm.random_input(np.random.default_rng(4), model.input_shape, 9)
    expected = _expected(graph, tensors, x)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for _ in range(5):
                _same(model.scores(x[:n]), expected[:n])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in (1, 4, 9, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


@pytest.mark.parametrize("threads", [0, -1, True, 1.5, "2", 1025, 10**30])
def test_bad_thread_counts(models, threads) -> None:
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        engine.load(models["mlp"][0], threads=threads)


@fuzz_settings
@given(data=st.data())
def test_random_models_batches_and_threads(tmp_path_factory, data) -> None:
    graph, tensors = bm.random_model(bm.HypothesisChooser(data), max_side=7, pad_values=True)
    path = tmp_path_factory.mktemp("random") / "m.bnn"
    path.write_bytes(bm.seal(graph, tensors))
    model = engine.load(
        path,
        threads=data.draw(st.sampled_from([None, 1, 2, 3, 5])),
        kernel=data.draw(st.sampled_from(KERNELS)),
    )
    n = data.draw(st.integers(0, 9))
    x = bm.random_input(np.random.default_rng(n), model.input_shape, n)
    if data.draw(st.booleans()):
        x = np.asfortranarray(x)
    _same(model.scores(x), _expected(graph, tensors, x))


# --------------------------------------------------------------------------------------------
# The compiled kernels' arguments
# --------------------------------------------------------------------------------------------


def test_misaligned_arrays_are_refused() -> None:
    """A view at an odd byte offset was read as uint64 (undefined behaviour, found by UBSan)."""
    buf = np.zeros(8 * 4 + 1, np.uint8)
    a = np.frombuffer(buf.data, dtype=np.uint64, offset=1, count=4).reshape(2, 2)
    assert not a.flags.aligned and a.flags.c_contiguous
    with pytest.raises(ValueError, match=r"bgemm: a must be aligned to 8 bytes"):
        K.bgemm(a, np.zeros((3, 2), np.uint64), 100)
    lo = np.frombuffer(buf.data, dtype=np.int32, offset=1, count=3)
    with pytest.raises(ValueError, match=r"lo must be aligned to 4 bytes"):
        K.bgemm_threshold(np.zeros((2, 2), np.uint64), np.zeros((3, 2), np.uint64), 100, lo, lo)


@pytest.mark.parametrize("value", [2**63, 2**64, -(2**63) - 1, 10**30])
def test_huge_stride_and_padding_ints_are_value_errors(value) -> None:
    """Ints beyond 64 bits raised RuntimeError (std::bad_cast) from the pair parser."""
    x = np.zeros((1, 5, 5, 1), np.uint64)
    w = np.zeros((2, 3, 3, 1), np.uint64)
    for stride, padding in [(value, 1), (1, value), ((1, value), 1), (1, (value, 0))]:
        with pytest.raises(ValueError, match="values must be in"):
            K.bconv2d(x, w, 10, stride, padding)
    with pytest.raises(ValueError, match="values must be in"):
        K.im2col_u8(np.zeros((1, 5, 5, 1), np.uint8), 3, 3, value, 1, 0)


#
# Each strategy draws a *valid* call (sizes around the word and tile boundaries, empty
# operands, padding bits zero) in any memory layout, then, half the time, breaks one thing:
# an array's dtype, rank or length, a padding bit, a scalar set to an edge value. The call must
# then raise ValueError / TypeError, or (when the change kept it valid) return what the NumPy
# oracle returns; every kernel variant and thread count must agree.

SIDES = (0, 1, 2, 3, 7, 8, 9, 25)
KS = (1, 2, 31, 63, 64, 65, 100, 128, 129, 200)
EDGES = (-(2**63), -(2**31), -1, 0, 1, 2**31 - 1, 2**31, 2**32 + 1, 2**63 - 1, 2**64)
OTHER_DTYPES = (np.int64, np.int32, np.uint32, np.uint8, np.int8, np.float32, np.float64, bool)


def _pm1_packed(rng: np.random.Generator, lead: tuple[int, ...], k: int, extra: int):
    """(±1 int64 [*lead, k], packed uint64 [*lead, words(k) + extra] with zero padding)."""
    v = np.where(rng.random((*lead, k)) < 0.5, -1, 1)
    packed = np.zeros((*lead, bm.words(k) + extra), np.uint64)
    packed[..., : bm.words(k)] = bm.pack(v < 0)
    return v, packed


@st.composite
def _layout(draw, a: np.ndarray) -> np.ndarray:
    """``a``'s values in another memory layout (only C-contiguous ones may be accepted)."""
    kind = draw(st.sampled_from(["c", "c", "c", "misaligned", "read-only", "fortran", "strided"]))
    if kind == "misaligned":
        buf = np.zeros(a.nbytes + 1, np.uint8)
        m = np.frombuffer(buf.data, dtype=a.dtype, offset=1, count=a.size).reshape(a.shape)
        m[...] = a
        return m
    if kind == "read-only":
        a = a.copy()
        a.flags.writeable = False
        return a
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "strided" and a.ndim:
        return np.repeat(a, 2, axis=-1)[..., ::2]
    return a


@st.composite
def _broken(draw, arrays: list[np.ndarray], scalars: list[int]):
    """Half the time, one thing changed: (arrays, scalars, what)."""
    arrays, scalars = list(arrays), list(scalars)
    what = draw(st.sampled_from(["none"] * 5 + ["dtype", "rank", "length", "bit", "scalar"]))
    i = draw(st.integers(0, len(arrays) - 1))
    a = arrays[i]
    if what == "dtype":
        arrays[i] = a.astype(draw(st.sampled_from(OTHER_DTYPES)))
    elif what == "rank":
        arrays[i] = a.reshape(-1) if draw(st.booleans()) else a[None]
    elif what == "length" and a.ndim:
        axis = draw(st.integers(0, a.ndim - 1))
        arrays[i] = np.ascontiguousarray(np.delete(a, 0, axis=axis) if a.shape[axis] else a)
    elif what == "bit" and a.size and a.dtype == np.uint64:
        b = a.copy()
        b.reshape(-1)[draw(st.integers(0, a.size - 1))] |= np.uint64(1) << np.uint64(
            draw(st.integers(0, 63))
        )
        arrays[i] = b
    elif what == "scalar" and scalars:
        scalars[draw(st.integers(0, len(scalars) - 1))] = draw(st.sampled_from(EDGES))
    arrays = [draw(_layout(a)) for a in arrays]
    return arrays, scalars, what


def _call(fn, *args, **kwargs):
    """The result, or None for a clean refusal (ValueError or TypeError with a message)."""
    try:
        result = fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        assert str(exc)
        event(f"{fn.__name__}: refused")
        return None
    event(f"{fn.__name__}: computed")
    return result


def _must_refuse(what: str, args: tuple) -> bool:
    """A call whose only fault is the memory layout of an array: the kernels read C-contiguous,
    aligned memory, so a non-contiguous or misaligned array must be refused (accepting it would
    read the wrong bytes, or be undefined behaviour)."""
    return what == "none" and any(
        isinstance(a, np.ndarray) and a.size and not (a.flags.c_contiguous and a.flags.aligned)
        for a in args
    )


def _call_checked(what, fn, *args):
    out = _call(fn, *args)
    if _must_refuse(what, args):
        assert out is None, "a non-contiguous array was accepted"
    return out


def _agree(fn, what, *args, **kwargs):
    """The reference kernel's result, after checking that every kernel variant and thread
    count returns the same (or refuses the same), and that a non-contiguous array is refused."""
    results = [_call(fn, *args, **kwargs, kernel=k, threads=t) for k in KERNELS for t in (1, 3)]
    for r in results[1:]:
        assert (r is None) == (results[0] is None)
        if r is not None:
            np.testing.assert_array_equal(r, results[0])
    if _must_refuse(what, args):
        assert results[0] is None, "a non-contiguous array was accepted"
    return results[0]


def _threshold_bits(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return bm.pack(~((lo.astype(np.int64) <= y) & (y <= hi.astype(np.int64))))


@fuzz_settings
@given(st.data(), st.sampled_from(SIDES), st.sampled_from(SIDES), st.sampled_from(KS))
def test_gemm_arguments(data, m, n, k) -> None:
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    extra = data.draw(st.sampled_from([0, 0, 1]))
    av, a = _pm1_packed(rng, (m,), k, extra)
    wv, w = _pm1_packed(rng, (n,), k, extra)
    y = av @ wv.T
    lo = rng.integers(-k - 2, k + 3, n).astype(np.int32)
    hi = np.where(rng.random(n) < 0.3, 2**31 - 1, lo + rng.integers(-1, k, n)).astype(np.int32)
    x8 = rng.integers(0, 256, (m, k)).astype(np.uint8)
    (a, w, lo, hi, x8), (kk,), what = data.draw(_broken([a, w, lo, hi, x8], [k]))
    out = _agree(K.bgemm, what, a, w, kk)
    if out is not None and what in ("none", "length"):
        np.testing.assert_array_equal(out, bm.unpack(a, kk) @ bm.unpack(w, kk).T)
        if what == "none":
            np.testing.assert_array_equal(out, y)
    out = _agree(K.bgemm_threshold, what, a, w, kk, lo, hi)
    if out is not None and what == "none":
        np.testing.assert_array_equal(out, _threshold_bits(y, lo, hi))
    out = _agree(K.bitplane_gemm, what, x8, w, kk)
    s = x8.astype(np.int64) @ wv.T if what == "none" else None
    if out is not None and s is not None:
        np.testing.assert_array_equal(out, s)
    if hasattr(K, "bitplane_gemm_threshold"):
        out = _agree(K.bitplane_gemm_threshold, what, x8, w, kk, lo, hi)
        if out is not None and s is not None:
            np.testing.assert_array_equal(out, _threshold_bits(s, lo, hi))
    if hasattr(K, "threshold_bits"):
        y32 = np.ascontiguousarray(y, dtype=np.int32) if what == "none" else a
        out = _call_checked(what, K.threshold_bits, y32, lo, hi)
        if out is not None and what == "none":
            np.testing.assert_array_equal(out, _threshold_bits(y, lo, hi))
    if hasattr(K, "U8Weights"):  # the byte GEMM of the first layer, weights prepared once
        prepared = _call_checked(what, K.U8Weights, w, kk)
        if prepared is None:
            return
        assert (prepared.n, prepared.k) == (w.shape[0], kk)
        out = _agree(K.u8gemm, what, x8, prepared)
        if out is not None and s is not None:
            np.testing.assert_array_equal(out, s)
        out = _agree(K.u8gemm_threshold, what, x8, prepared, lo, hi)
        if out is not None and s is not None:
            np.testing.assert_array_equal(out, _threshold_bits(s, lo, hi))


@fuzz_settings
@given(
    st.data(),
    st.sampled_from((0, 1, 2)),
    st.integers(1, 6),
    st.integers(1, 6),
    st.sampled_from((1, 3, 63, 64, 65, 130)),
    st.sampled_from((1, 2, 8, 9, 65)),
)
def test_conv_arguments(data, b, h, w_, c, o) -> None:
    rng = np.random.default_rng(b + 7 * h + 49 * w_ + c * 343 + o)
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    padding = (data.draw(st.sampled_from((0, 1, 2, 5))), data.draw(st.sampled_from((0, 1, 2))))
    extra = data.draw(st.sampled_from([0, 0, 1]))
    xv, x = _pm1_packed(rng, (b, h, w_), c, extra)
    wv, w = _pm1_packed(rng, (o, kh, kw), c, extra)
    lo = rng.integers(-kh * kw * c, kh * kw * c, o).astype(np.int32)
    hi = np.full(o, 2**31 - 1, np.int32)
    (x, w, lo, hi), (cc, sh, pw), what = data.draw(
        _broken([x, w, lo, hi], [c, stride[0], padding[1]])
    )
    stride2, padding2 = (sh, stride[1]), (padding[0], pw)
    fits = h + 2 * padding[0] >= kh and w_ + 2 * padding[1] >= kw
    out = _agree(K.bconv2d, what, x, w, cc, stride2, padding2)
    y = None
    if what == "none" and not _must_refuse(what, (x, w)):
        assert (out is not None) == fits
        if fits:
            y = bm._correlate(xv, wv, list(stride), list(padding))
            np.testing.assert_array_equal(out, y)
    out = _agree(K.bconv2d_threshold, what, x, w, cc, stride2, padding2, lo, hi)
    if out is not None and y is not None:
        np.testing.assert_array_equal(out, _threshold_bits(y, lo, hi))


def _im2col(x: np.ndarray, kh, kw, stride, padding, pad_value) -> np.ndarray:
    b, h, w, c = x.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = np.full((b, h + 2 * ph, w + 2 * pw, c), pad_value, np.uint8)
    xp[:, ph : ph + h, pw : pw + w] = x
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    taps = [
        xp[:, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]
    return np.concatenate(taps, axis=-1)


def _pool_bits(x: np.ndarray, k: int, s: int, and_mask: np.ndarray) -> np.ndarray:
    b, h, w, c = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    both = np.full((b, ho, wo, c), np.uint64(2**64 - 1))
    either = np.zeros((b, ho, wo, c), np.uint64)
    for i in range(k):
        for j in range(k):
            win = x[:, i : i + s * (ho - 1) + 1 : s, j : j + s * (wo - 1) + 1 : s]
            both &= win
            either |= win
    return (both & and_mask) | (either & ~and_mask)


@fuzz_settings
@given(
    st.data(),
    st.sampled_from((0, 1, 2)),
    st.integers(1, 7),
    st.integers(1, 7),
    st.sampled_from((1, 2, 3, 8, 65)),
)
def test_im2col_and_pool_arguments(data, b, h, w, c) -> None:
    rng = np.random.default_rng(b + 10 * h + 100 * w + 1000 * c)
    k = data.draw(st.integers(1, 4))
    s = data.draw(st.integers(1, 3))
    padding = (data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3)))
    pad_value = data.draw(st.sampled_from((0, 128, 255)))
    x8 = rng.integers(0, 256, (b, h, w, c)).astype(np.uint8)
    x32 = rng.integers(-(2**31), 2**31, (b, h, w, c)).astype(np.int32)
    x64 = rng.integers(0, 2**63, (b, h, w, c), dtype=np.uint64)
    mask = rng.integers(0, 2**63, c, dtype=np.uint64)
    (x8, x32, x64, mask), (kk, ss, pv), what = data.draw(
        _broken([x8, x32, x64, mask], [k, s, pad_value])
    )
    out = _call_checked(what, K.im2col_u8, x8, kk, k, ss, padding, pv)
    cols = None
    if out is not None and what == "none":
        cols = _im2col(x8, k, k, (s, s), padding, pad_value)
        np.testing.assert_array_equal(out, cols)
    if hasattr(K, "U8Weights"):  # the direct uint8 convolution of the first layer
        o = data.draw(st.sampled_from((1, 5, 64, 65)))
        wv, w = _pm1_packed(rng, (o,), k * k * c, 0)
        prepared = K.U8Weights(w, k * k * c)
        lo = rng.integers(-5000, 5000, o).astype(np.int32)
        hi = np.full(o, 2**31 - 1, np.int32)
        out = _agree(K.u8conv2d, what, x8, prepared, kk, k, ss, padding, pv)
        if out is not None and cols is not None:
            np.testing.assert_array_equal(out, cols.astype(np.int64) @ wv.T)
        out = _agree(K.u8conv2d_threshold, what, x8, prepared, kk, k, ss, padding, pv, lo, hi)
        if out is not None and cols is not None:
            y = cols.astype(np.int64) @ wv.T
            np.testing.assert_array_equal(out, _threshold_bits(y, lo, hi))
    out = _call_checked(what, K.maxpool2d_int32, x32, kk, ss)
    if out is not None and what == "none":
        np.testing.assert_array_equal(out, bm._maxpool(x32.astype(np.int64), [k, k], [s, s]))
    out = _call_checked(what, K.maxpool2d_bits, x64, kk, ss, mask)
    if out is not None and what == "none":
        np.testing.assert_array_equal(out, _pool_bits(x64, k, s, mask))


@fuzz_settings
@given(st.data(), st.sampled_from(SIDES), st.sampled_from((0, *KS)))
def test_packing_arguments(data, r, k) -> None:
    rng = np.random.default_rng(r * 1000 + k)
    xf = rng.normal(size=(r, k)).astype(np.float32)
    xf[rng.random((r, k)) < 0.1] = 0.0
    xi = rng.integers(-3, 4, (r, k)).astype(np.int8)
    x8 = rng.integers(0, 256, (r, k)).astype(np.uint8)
    _, packed = _pm1_packed(rng, (r,), max(k, 1), 0)
    (xf, xi, x8, packed), (kk,), what = data.draw(_broken([xf, xi, x8, packed], [k]))
    for x in (xf, xi):
        out = _call_checked(what, K.pack_signs, x)
        if out is not None and what == "none":
            np.testing.assert_array_equal(out, bm.pack(x < 0))
    out = _call_checked(what, K.pack_bitplanes, x8)
    if out is not None and what == "none":
        for p in range(8):
            np.testing.assert_array_equal(out[:, p], bm.pack(((x8 >> p) & 1).astype(bool)))
    out = _call_checked(what, K.unpack_signs, packed, kk)
    if out is not None and what == "none":
        np.testing.assert_array_equal(out, bm.unpack(packed, k))
