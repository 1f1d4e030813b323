"""Property-based fuzzing of the ``.bnn`` loader and the engine behind it (hypothesis).

A model file is untrusted input to a C++ engine. The property, for any bytes at all: loading
either raises :class:`binarynet.graph.bnnfile.BNNFileError` (a ``ValueError``) with a message, or
gives a model whose scores and integer pre-activations equal an independent NumPy interpreter of the
format (``fuzz/bnn_models.py``) bit for bit — never another exception, a crash, a hang or a
wrong answer. The inputs:

- random *valid* models (MLPs and ConvNets of every shape the format allows, thresholds of
  every kind), run with every kernel variant;
- those models broken at the graph, tensor, safetensors-header or byte level, *re-sealed with
  a correct checksum* so that the damage reaches the graph validation and the engine;
- every truncation and every byte of a file with a bit flipped;
- absurd dimensions, refused before anything of their size is allocated (checked under an
  address-space limit);
- regressions for what this fuzzing found (deep JSON nesting, non-string op types and dtypes,
  huge uint8 convolution patches).

``BINARYNET_FUZZ_EXAMPLES`` scales the number of hypothesis examples (default 100 per test);
``fuzz/fuzz_bnn.py`` is the coverage-guided (atheris) counterpart.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from binarynet.backends import engine
from binarynet.graph import bnnfile
from binarynet.graph.bnnfile import BNNFileError

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "fuzz"))
import bnn_models as bm  # noqa: E402

EXAMPLES = int(os.environ.get("BINARYNET_FUZZ_EXAMPLES", "100"))
KERNELS = engine.available_kernels()
UNDER_ASAN = "asan" in os.environ.get("LD_PRELOAD", "")

fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(autouse=True)
def _quiet_float_overflow():
    # Extreme (finite) batch-norm scales overflow to ±inf in float32, as in torch: not an error.
    with np.errstate(over="ignore", invalid="ignore"):
        yield


def _write(blob: bytes) -> Path:
    fd, name = tempfile.mkstemp(suffix=".bnn", prefix="fuzz-")
    with os.fdopen(fd, "wb") as f:
        f.write(blob)
    return Path(name)


def _check(blob: bytes, **kwargs) -> bool:
    path = _write(blob)
    try:
        return bm.check_file(path, **kwargs)
    finally:
        path.unlink()


def _small_model(seed: int = 3) -> tuple[dict, dict[str, np.ndarray]]:
    """A small valid ConvNet (conv, pool, dense, scores), the same every run."""
    for s in range(seed, seed + 1000):
        graph, tensors = bm.random_model(bm.RngChooser(np.random.default_rng(s)))
        kinds = [op["type"] for op in graph["ops"]]
        if "conv2d" in kinds and "maxpool2d" in kinds and len(kinds) <= 8:
            return graph, tensors
    raise AssertionError("no small ConvNet among the seeds")  # pragma: no cover


def _refused(blob: bytes, match: str | None = None) -> str:
    path = _write(blob)
    try:
        with pytest.raises(BNNFileError, match=match) as info:
            engine.load(path)
    finally:
        path.unlink()
    assert str(path) in str(info.value), "the error must name the file"
    return str(info.value)


# --------------------------------------------------------------------------------------------
# Valid models: the engine equals the reference interpreter
# --------------------------------------------------------------------------------------------


@fuzz_settings
@given(st.data())
def test_random_valid_models_match_the_reference(data) -> None:
    graph, tensors = bm.random_model(bm.HypothesisChooser(data), pad_values=True)
    blob = bm.seal(graph, tensors)
    assert _check(blob, kernels=KERNELS, batch=data.draw(st.integers(1, 5)), seed=len(blob))
    # save()'s own validation agrees with load()'s.
    path = _write(b"")
    try:
        bnnfile.save(path, graph, tensors)
        assert bnnfile.load(path).graph == bnnfile.graph_from_json(graph)
    finally:
        path.unlink()


def test_reference_interpreter_agrees_with_torch_semantics_on_a_hand_computed_case() -> None:
    """The oracle itself, on a case small enough to check by hand: 2 uint8 features, one dense
    layer of 2 outputs (weights +1,−1 and −1,−1), threshold, dense to 1 score."""
    zp = 128
    graph = {
        "format": "binarynet-bnn",
        "version": 1,
        "input": {"layout": "NF", "shape": [2], "dtype": "uint8", "zero_point": zp, "scale": 1},
        "preprocess": None,
        "num_classes": 1,
        "ops": [
            {"type": "dense", "out_features": 2, "weight": "w0"},
            {"type": "threshold", "lo": "lo", "hi": "hi"},
            {"type": "dense", "out_features": 1, "weight": "w2"},
            {"type": "scores", "input_scale": 1.0, "bias": None, "scale": "s", "shift": "t"},
        ],
        "provenance": {},
    }
    tensors = {
        "w0": bm.pack(np.array([[False, True], [True, True]])),
        "lo": np.array([0, -(2**31)], np.int32),
        "hi": np.array([2**31 - 1, -1], np.int32),
        "w2": bm.pack(np.array([[False, True]])),
        "s": np.array([0.5], np.float32),
        "t": np.array([0.25], np.float32),
    }
    x = np.array([[200, 100], [0, 255]], np.uint8)  # x̃ = (72, −28), (−128, 127)
    scores, ys = bm.reference(graph, tensors, x)
    # layer 0: y = (72 + 28, −72 + 28) = (100, −44); (−128 − 127, 128 − 127) = (−255, 1)
    np.testing.assert_array_equal(ys[0], [[100, -44], [-255, 1]])
    # threshold: ch0 +1 iff y ≥ 0, ch1 +1 iff y ≤ −1 → (+1, +1), (−1, −1); layer 2: a0 − a1
    np.testing.assert_array_equal(ys[1], [[0], [0]])
    np.testing.assert_array_equal(scores, [[0.25], [0.25]])
    assert _check(bm.seal(graph, tensors), kernels=KERNELS)


# --------------------------------------------------------------------------------------------
# Broken models: refused with a BNNFileError, or loaded and right
# --------------------------------------------------------------------------------------------


@settings(fuzz_settings, max_examples=EXAMPLES * 4)
@given(st.data())
def test_mutated_models_are_refused_or_run_correctly(data) -> None:
    graph, tensors = bm.random_model(bm.HypothesisChooser(data), max_side=6, max_stages=3)
    blob = bm.mutate(bm.HypothesisChooser(data), graph, tensors)
    loaded = _check(blob)
    event("loaded" if loaded else "refused")


@fuzz_settings
@given(st.data())
def test_header_mutations_are_refused_or_run_correctly(data) -> None:
    graph, tensors = _small_model()
    ch = bm.HypothesisChooser(data)
    blob = bm.mutate_header(ch, np.random.default_rng(0), bm.seal(graph, tensors))
    if data.draw(st.booleans()):
        blob = bm.reseal(blob)
    event("loaded" if _check(blob) else "refused")


def test_every_truncation_is_refused() -> None:
    graph, tensors = _small_model()
    blob = bm.seal(graph, tensors)
    path = _write(b"")
    try:
        for n in range(len(blob)):
            path.write_bytes(blob[:n])
            with pytest.raises(BNNFileError, match="truncated") as info:
                engine.load(path)
            assert str(path) in str(info.value)
    finally:
        path.unlink()


def test_every_flipped_byte_is_refused_or_harmless() -> None:
    """One bit flipped in each byte of the file in turn (which bit varies with the position):
    refused, or (only where the flip leaves the same content) the same model."""
    graph, tensors = _small_model()
    blob = bm.seal(graph, tensors)
    path = _write(blob)
    original = engine.load(path)
    loaded = 0
    try:
        for at in range(len(blob)):
            flipped = bytearray(blob)
            flipped[at] ^= 1 << (at % 8)
            path.write_bytes(bytes(flipped))
            try:
                model = engine.load(path)
            except BNNFileError as exc:
                assert str(path) in str(exc)
                continue
            loaded += 1
            assert model.graph == original.graph
            assert model._tensors.keys() == original._tensors.keys()
            for name, array in model._tensors.items():
                np.testing.assert_array_equal(array, original._tensors[name])
    finally:
        path.unlink()
    assert loaded < len(blob) // 100  # the checksum catches (nearly) everything


@fuzz_settings
@given(st.data())
def test_raw_damage_with_a_resealed_checksum(data) -> None:
    graph, tensors = _small_model(seed=data.draw(st.integers(0, 50)))
    blob = bm.seal(graph, tensors)
    ch = bm.HypothesisChooser(data)
    for _ in range(data.draw(st.integers(1, 3))):
        blob = bm.mutate_bytes(ch, blob)
    event("loaded" if _check(bm.reseal(blob)) else "refused")


@settings(fuzz_settings, max_examples=EXAMPLES * 2)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_are_refused(blob: bytes) -> None:
    _refused(blob)


@fuzz_settings
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=20,
    )
)
def test_arbitrary_json_graphs_are_refused(graph) -> None:
    graph_text = json.dumps(graph)
    _refused(bm.seal(graph_text, {"w": np.zeros(2, np.uint64)}))


# --------------------------------------------------------------------------------------------
# Absurd dimensions: refused quickly, before anything of their size is allocated
# --------------------------------------------------------------------------------------------


def _absurd_files() -> dict[str, bytes]:
    graph, tensors = _small_model()
    files: dict[str, bytes] = {}

    def variant(name: str, edit) -> None:
        g = json.loads(json.dumps(graph))
        t = dict(tensors)
        edit(g, t)
        files[name] = bm.seal(g, t)

    big = 2**40
    variant("input-dims", lambda g, t: g["input"].update(shape=[big, big, 3]))
    variant("input-bytes", lambda g, t: g["input"].update(shape=[65536, 65536, 3]))
    variant("out-channels", lambda g, t: g["ops"][0].update(out_channels=2**24 - 1))
    variant("kernel", lambda g, t: g["ops"][0].update(kernel_size=[65536, 65536]))
    variant("padding", lambda g, t: g["ops"][0].update(padding=[65536, 65536]))
    variant("stride", lambda g, t: g["ops"][0].update(stride=[2**62, 1]))
    variant("num-classes", lambda g, t: g.update(num_classes=2**62))
    variant("many-ops", lambda g, t: g.update(ops=g["ops"] * 2000))
    # A 1.6 KB file whose first convolution would need 16 GB of uint8 patches per image.
    h, k = 2048, 64
    variant(
        "im2col",
        lambda g, t: (
            g["input"].update(shape=[h, h, 1]),
            g.update(
                num_classes=1,
                ops=[
                    {
                        "type": "conv2d",
                        "out_channels": 1,
                        "kernel_size": [k, k],
                        "stride": [1, 1],
                        "padding": [0, 0],
                        "weight": "w",
                    },
                    {"type": "maxpool2d", "kernel_size": [h - k + 1] * 2, "stride": [1, 1]},
                    {"type": "threshold", "lo": "lo", "hi": "hi"},
                    {"type": "dense", "out_features": 1, "weight": "w2"},
                    {"type": "scores", "input_scale": 1, "bias": None, "scale": "s", "shift": "b"},
                ],
            ),
            t.clear(),
            t.update(
                w=np.zeros((1, k * k // 64), np.uint64),
                lo=np.zeros(1, np.int32),
                hi=np.zeros(1, np.int32),
                w2=np.zeros((1, 1, 1, 1), np.uint64),
                s=np.ones(1, np.float32),
                b=np.zeros(1, np.float32),
            ),
        ),
    )
    # The safetensors table claiming huge tensors (the data has a few bytes).
    header = {
        "__metadata__": {"binarynet": json.dumps(graph), "binarynet.sha256": "0" * 64},
        "w": {"dtype": "U64", "shape": [2**31, 2**31], "data_offsets": [0, 2**65]},
    }
    files["tensor-table"] = bm.frame(header, bytes(16))
    files["header-length"] = struct.pack("<Q", 2**63) + b"{}"
    files["header-64MiB"] = struct.pack("<Q", (64 << 20) + 1) + b"{}"
    return files


@pytest.mark.skipif(UNDER_ASAN, reason="AddressSanitizer reserves terabytes of address space")
def test_absurd_dimensions_are_refused_without_allocating(tmp_path: Path) -> None:
    """Each file is loaded in a child process whose address space is capped 768 MiB above what
    it uses at the start: a header or graph that made the loader allocate what it claims would
    end in MemoryError, which fails the test."""
    names = []
    for name, blob in _absurd_files().items():
        (tmp_path / f"{name}.bnn").write_bytes(blob)
        names.append(name)
    script = textwrap.dedent(
        """
        import resource, sys, time
        import numpy as np
        from binarynet.backends import engine
        from binarynet.graph.bnnfile import BNNFileError
        engine.load  # imported: the kernels and safetensors are loaded before the cap
        vm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")][0]
        cap = vm * 1024 + (768 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        for path in sys.argv[1:]:
            t = time.perf_counter()
            try:
                engine.load(path)
                print(path, "LOADED")
            except BNNFileError as e:
                print(path, "refused %.3f" % (time.perf_counter() - t), str(e)[:160])
        """
    )
    result = subprocess.run(
        [
            sys.executable,
            *(["-S"] if sys.flags.no_site else []),  # as this process (tools/sanitize.sh)
            "-c",
            script,
            *(str(tmp_path / f"{n}.bnn") for n in names),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(names), result.stdout
    for line in lines:
        _, verdict, seconds, _ = line.split(" ", 3)
        assert verdict == "refused", line
        assert float(seconds) < 5.0, f"too slow to refuse: {line}"


# --------------------------------------------------------------------------------------------
# Regressions: what the fuzzing found
# --------------------------------------------------------------------------------------------


def test_deeply_nested_json_is_a_bnn_file_error() -> None:
    """JSON nested beyond the recursion limit made json.loads raise RecursionError."""
    deep = "[" * 100_000 + "]" * 100_000
    _refused(bm.frame({"__metadata__": {"binarynet": deep}}, b""), "corrupt graph JSON")
    _refused(bm.frame('{"a":' + deep + "}", b""), "corrupt safetensors header")


def test_unhashable_op_type_and_dtype_are_bnn_file_errors() -> None:
    """A list or an object where a string was expected made ``in dict`` raise TypeError."""
    graph, tensors = _small_model()
    g = json.loads(json.dumps(graph))
    g["ops"][0]["type"] = ["dense"]
    _refused(bm.seal(g, tensors), r"op 0: unknown op type \['dense'\]")
    blob = bm.seal(graph, tensors)
    header, data = bm.parse_frame(blob)
    name = next(k for k in header if k != "__metadata__")
    header[name]["dtype"] = {"U64": 1}
    _refused(bm.frame(header, data), "has dtype")


def test_duplicate_tensor_names_read_the_same_in_python_and_rust() -> None:
    """The loader validates the tensor table it parses in Python, then takes the arrays from
    the safetensors (Rust) parser: both must read a duplicated key the same way, else the
    validated shapes would not be the shapes the engine gets."""
    graph, tensors = _small_model()
    blob = bm.seal(graph, tensors)
    header, data = bm.parse_frame(blob)
    name = next(k for k in header if k != "__metadata__")
    text = json.dumps(header)
    first = json.dumps({name: {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}})[1:-1]
    path = _write(bm.frame("{" + first + ", " + text[1:], data))  # a bogus entry first
    try:
        assert bm.check_file(path)  # the later entry wins in both: the file is the original
    finally:
        path.unlink()


def test_huge_uint8_convolution_patches_are_refused() -> None:
    """A 1.6 KB file that validated, then made the engine allocate 16 GB of im2col patches
    for a single 2048×2048 image (MemoryError at best)."""
    _refused(_absurd_files()["im2col"], r"uint8 input patches \(im2col")


def test_wide_padding_is_not_quadratic() -> None:
    """A bits convolution with a huge padding: the kernels' padding correction looked up each
    output row among all distinct tap ranges, O(Ho²) (2.4 s at the format's limit, minutes at
    the kernels')."""
    from binarynet import _kernels

    x = np.zeros((1, 1, 1, 1), np.uint64)
    w = np.zeros((1, 1, 1, 1), np.uint64)
    t = time.perf_counter()
    out = _kernels.bconv2d(x, w, 1, 1, (65536, 0), kernel=KERNELS[-1], threads=1)
    assert out.shape == (1, 131073, 1, 1) and out.sum() == 1
    assert time.perf_counter() - t < 1.0 * (5 if UNDER_ASAN else 1)


def test_a_preprocessor_that_cannot_take_the_input_is_refused() -> None:
    """A flat-feature model with the (image-only) ``pixels`` preprocessor loaded, then every
    ``scores()`` failed inside the preprocessor."""
    for seed in range(1000):
        graph, tensors = bm.random_model(bm.RngChooser(np.random.default_rng(seed)))
        if graph["input"]["layout"] == "NF":
            break
    graph["preprocess"] = {"kind": "pixels", "version": 1}
    _refused(bm.seal(graph, tensors), r"preprocess: it cannot take the model's input \[\d+\]")
