"""Tests of binarynet.backends.engine and the .bnn file: bit-exactness against torch, input
handling, file validation, and that neither the engine nor ``binarynet eval`` ever imports torch.

Exactness: every model below is exported, loaded with each compiled kernel variant, and must give
the torch model's scores bit for bit (so the same predictions), and every binary layer's integer
pre-activation must equal the torch layer's output (2⁻⁷·s for the first layer). Models are the
MNIST MLP and the CIFAR-10 ConvNet (small widths, K not a multiple of 64), and an odd ConvNet
(odd image size, 65/70 channels, stride, non-square kernel and pool, biases), with standard and
shift-based batch norm, each freshly initialised, trained a few steps, and "stressed": batch-norm
statistics set so that f(y) == 0 exactly for reachable y (ties), with γ < 0, γ = 0 and thresholds
outside the reachable range.
"""

from __future__ import annotations

import contextlib
import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
import torch

from binarynet.backends import engine
from binarynet.backends.engine import model as engine_model
from binarynet.data import mnist_sample
from binarynet.graph import bnnfile
from binarynet.graph.bnnfile import BNNFileError
from binarynet.graph.values import unpack_bits

KERNELS = engine.available_kernels()
SLOW_KERNELS = {"reference", "portable"}  # they get fewer images
REAL_MNIST = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mnist"


from torch_cases import CASES, get_case, mnist_test_images  # noqa: E402

# --------------------------------------------------------------------------------------------
# Exactness
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("name", CASES)
def test_engine_is_bit_exact(name: str, kernel: str) -> None:
    case = get_case(name)
    x, expected, outputs = case.x, case.scores, case.layer_outputs
    if kernel in SLOW_KERNELS:  # fewer images (and the four extremes at the end)
        keep = np.r_[0 : 500 if name.startswith("mlp") else 24, len(x) - 4 : len(x)]
        x, expected, outputs = x[keep], expected[keep], [out[keep] for out in outputs]
    model = engine.load(case.path, kernel=kernel)
    # Scores (the fused path) bit for bit, hence the same predictions (first index on ties).
    scores = model.scores(x)
    assert scores.dtype == np.float32
    assert np.array_equal(scores, expected)
    predicted = model.predict(x)
    assert predicted.dtype == np.int64
    assert np.array_equal(predicted, expected.argmax(1))
    # Every pre-threshold integer (the unfused path) equals the torch layer's output:
    # torch = fl(fl(y·input_scale) + bias), i.e. 2⁻⁷·s for the first layer and y elsewhere.
    pre = model.preactivations(x)
    assert len(pre) == len(outputs)
    for i, (y, out, (scale, bias)) in enumerate(zip(pre, outputs, case.layer_scales, strict=True)):
        assert y.dtype == np.int32 and y.shape == out.shape, (i, y.shape, out.shape)
        value = y.astype(np.float32) * np.float32(scale)
        if bias is not None:
            value = value + bias
        assert np.array_equal(value, out), f"layer {i}: {np.sum(value != out)} values differ"
    # Batch 1 gives the same, for a few single images, and so do batches of 2 and 3 (batches
    # below 4 take the kernels' batch-1 paths: prepared panels, u8 weight masks).
    for j in (0, len(x) // 2, len(x) - 1):
        assert np.array_equal(model.scores(x[j : j + 1]), expected[j : j + 1])
    for n in (2, 3):
        assert np.array_equal(model.scores(x[-n:]), expected[-n:])
        for y_small, y_full in zip(model.preactivations(x[-n:]), pre, strict=True):
            assert np.array_equal(y_small, y_full[-n:])


@pytest.mark.parametrize("name", [c for c in CASES if "stressed" in c])
def test_stressed_models_have_every_kind_of_threshold(name: str) -> None:
    """The stressed models exercise up-sets (γ > 0), down-sets (γ < 0), and constant channels
    of both signs; the ConvNets pool both with AND and with OR."""
    model = engine.load(get_case(name).path)
    kinds = set()
    for stage in model._stages:
        if not isinstance(stage, engine_model._ThresholdStage):
            continue
        lo, hi, bound = stage.lo.astype(np.int64), stage.hi.astype(np.int64), stage.y.bound
        kinds |= {"never"} if np.any(lo > hi) else set()
        kinds |= {"always"} if np.any((lo <= -bound) & (hi >= bound)) else set()
        kinds |= {"up"} if np.any((lo > -bound) & (lo <= bound) & (hi >= bound)) else set()
        kinds |= {"down"} if np.any((hi < bound) & (hi >= -bound) & (lo <= -bound)) else set()
        if stage.pools:
            assert stage.and_mask is not None
            rules = unpack_bits(stage.and_mask, stage.y.shape[-1])
            assert rules.any() and not rules.all(), "expected AND and OR channels"
    assert kinds == {"never", "always", "up", "down"}


def test_real_mnist_predictions_match_torch_and_learn_something() -> None:
    """The trained MLP on the MNIST test images: engine predictions equal torch's, and a few
    steps of training already beat chance (the exported model is not a constant)."""
    case = get_case("mlp-trained-shift")
    images, labels = mnist_test_images()
    predicted = engine.load(case.path).predict(images)
    assert np.array_equal(predicted, case.scores[: len(images)].argmax(1))
    assert np.mean(predicted == labels) > 0.3
    assert len(np.unique(predicted)) > 3


def test_chunked_batches_and_threads_give_identical_results(monkeypatch) -> None:
    case = get_case("cifar-stressed-shift")
    monkeypatch.setattr(engine_model, "BATCH_BYTES", 1)  # one image per chunk
    model = engine.load(case.path, threads=1)
    assert model.threads == 1
    assert np.array_equal(model.scores(case.x), case.scores)
    model.threads = 2
    pre = model.preactivations(case.x[:5])
    assert [p.shape[0] for p in pre] == [5] * len(pre)
    assert np.array_equal(model.scores(case.x), case.scores)


# --------------------------------------------------------------------------------------------
# Inputs and API
# --------------------------------------------------------------------------------------------


def test_inputs_are_validated() -> None:
    mlp = engine.load(get_case("mlp-fresh-std").path)
    x = get_case("mlp-fresh-std").x[:20]
    expected = mlp.scores(x)
    # [N, 784] is accepted for an MLP; non-contiguous arrays are copied.
    assert np.array_equal(mlp.scores(x.reshape(20, 784)), expected)
    fortran = np.asfortranarray(x)
    assert not fortran.flags.c_contiguous
    assert np.array_equal(mlp.scores(fortran), expected)
    strided = np.repeat(x, 2, axis=0)[::2]
    assert np.array_equal(mlp.scores(strided), expected)
    with pytest.raises(TypeError, match="uint8"):
        mlp.predict(x.astype(np.float32))
    with pytest.raises(TypeError, match="NumPy uint8 array"):
        mlp.predict(x.tolist())
    with pytest.raises(ValueError, match=r"\['N', 28, 28\] or \['N', 784\].*\[20, 28, 27\]"):
        mlp.predict(x[:, :, :27])
    with pytest.raises(ValueError, match="got \\[28, 28\\]"):
        mlp.predict(x[0])  # a single image needs its batch axis
    # Empty batches give empty results of the right shapes.
    empty = np.zeros((0, 28, 28), np.uint8)
    assert mlp.predict(empty).shape == (0,) and mlp.predict(empty).dtype == np.int64
    assert mlp.scores(empty).shape == (0, 10)
    assert [p.shape for p in mlp.preactivations(empty)] == [(0, 96), (0, 96), (0, 10)]
    # A ConvNet takes NHWC only.
    conv = engine.load(get_case("cifar-fresh-std").path)
    with pytest.raises(ValueError, match=r"\['N', 32, 32, 3\] \(NHWC"):
        conv.predict(np.zeros((2, 3, 32, 32), np.uint8))


def test_kernel_and_threads_arguments() -> None:
    path = get_case("mlp-fresh-std").path
    with pytest.raises(ValueError, match="unknown kernel 'sse9'"):
        engine.load(path, kernel="sse9")
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        engine.load(path, threads=0)
    model = engine.load(path)
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        model.threads = -1


def test_info_and_repr() -> None:
    case = get_case("odd-trained-std")
    model = engine.load(case.path)
    info = model.info
    assert info["format"] == "binarynet-bnn v1"
    assert info["input"] == {
        "layout": "NHWC",
        "shape": [15, 13, 3],
        "dtype": "uint8",
        "zero_point": 128,
        "scale": 2.0**-7,
    }
    assert info["num_classes"] == 7 and info["binary_layers"] == 5
    assert info["ops"][0] == "conv2d u8[15×13×3] → int32[15×13×70]"
    assert info["ops"][1] == "maxpool2d int32[15×13×70] → int32[7×6×70]"
    assert "dense bits[3×2×65] → int32[33]" in info["ops"]
    assert info["ops"][-1] == "scores int32[7] → float32[7]"
    assert info["provenance"]["model"] == "odd-trained-std"
    assert info["file_bytes"] == case.path.stat().st_size
    text = repr(model)
    assert "odd-trained-std" in text and "NHWC [15, 13, 3]" in text and "7 classes" in text


def test_and_mask_classifies_intervals() -> None:
    lo = np.array([5, -(2**31), -(2**31), 2**31 - 1, -3, -200], np.int32)
    hi = np.array([2**31 - 1, 7, 2**31 - 1, -(2**31), 3, 200], np.int32)
    # up-set → AND (1), down-set → OR (0), constants → AND; the last covers [−100, 100].
    mask = engine_model._and_mask(lo[[0, 1, 2, 3, 5]], hi[[0, 1, 2, 3, 5]], 100)
    assert mask is not None and int(mask[0]) == 0b11101
    assert engine_model._and_mask(lo, hi, 100) is None  # [−3, 3] is neither


# --------------------------------------------------------------------------------------------
# The file: validation
# --------------------------------------------------------------------------------------------


@pytest.fixture
def small(tmp_path: Path):
    """A function returning a fresh (graph JSON, tensors, path) of a valid small MLP file, to
    be broken and written to ``path``."""
    bnn = bnnfile.load(get_case("mlp-fresh-std").path)

    def fresh() -> tuple[dict, dict[str, np.ndarray], Path]:
        graph = json.loads(json.dumps(bnnfile.graph_to_json(bnn.graph)))
        return graph, {k: v.copy() for k, v in bnn.tensors.items()}, tmp_path / "bad.bnn"

    return fresh


def _write(path: Path, graph: dict, tensors: dict[str, np.ndarray]) -> Path:
    bnnfile.save(path, graph, tensors, validate=False)
    return path


def _load_error(path: Path, match: str) -> None:
    with pytest.raises(BNNFileError, match=match):
        engine.load(path)


def test_valid_file_round_trips(small) -> None:
    graph, tensors, path = small()
    _write(path, graph, tensors)
    bnn = bnnfile.load(path)
    assert bnnfile.graph_to_json(bnn.graph) == graph
    assert all(np.array_equal(bnn.tensors[k], v) for k, v in tensors.items())
    assert bnn.tensors["op0.weight"].dtype == np.uint64
    assert bnn.tensors["op1.lo"].dtype == np.int32


def test_truncated_file(small) -> None:
    graph, tensors, path = small()
    data = _write(path, graph, tensors).read_bytes()
    for n in (0, 5, len(data) // 3, len(data) - 1):
        path.write_bytes(data[:n])
        _load_error(path, "truncated")


def test_flipped_bytes_are_detected(small) -> None:
    graph, tensors, path = small()
    data = _write(path, graph, tensors).read_bytes()
    # A byte of the JSON structure.
    path.write_bytes(data[:8] + b"[" + data[9:])
    _load_error(path, "corrupt safetensors header")
    # A byte of the graph that leaves it valid JSON: only the checksum can tell.
    at = data.index(b"binarynet_version") + len(b'binarynet_version\\":\\"')
    flipped = bytearray(data)
    flipped[at] ^= 0x01  # "0.1.0" → "1.1.0"
    path.write_bytes(bytes(flipped))
    _load_error(path, "checksum mismatch")
    # A byte of a weight.
    flipped = bytearray(data)
    flipped[-1] ^= 0x10
    path.write_bytes(bytes(flipped))
    _load_error(path, "checksum mismatch")
    # An absurd header length.
    path.write_bytes(struct.pack("<Q", 1 << 60) + data[8:])
    _load_error(path, "header length")


def test_random_corruption_never_crashes(small) -> None:
    """Any flipped byte gives a BNNFileError (or, in the header's padding, a valid file)."""
    graph, tensors, path = small()
    data = _write(path, graph, tensors).read_bytes()
    rng = np.random.default_rng(0)
    for at in rng.integers(0, len(data), 150):
        flipped = bytearray(data)
        flipped[at] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(flipped))
        with contextlib.suppress(BNNFileError):
            engine.load(path)


def test_wrong_dtype(small) -> None:
    graph, tensors, path = small()
    tensors["op0.weight"] = tensors["op0.weight"].view(np.int32)[:, ::2].copy()
    _load_error(_write(path, graph, tensors), "'op0.weight' has dtype I32, expected U64")
    graph2, tensors2, _ = small()
    tensors2["op1.lo"] = tensors2["op1.lo"].astype(np.float32)
    _load_error(_write(path, graph2, tensors2), "'op1.lo' has dtype F32, expected I32")
    tensors3 = {**tensors2, "op1.lo": np.zeros(96, np.int64)}
    _load_error(_write(path, graph2, tensors3), "dtype 'I64'")


def test_shape_disagrees_with_graph(small) -> None:
    graph, tensors, path = small()
    tensors["op2.weight"] = tensors["op2.weight"][:-1]
    _load_error(_write(path, graph, tensors), r"op 2 \(dense.*shape \[95, 2\], expected \[96, 2\]")
    graph, tensors, _ = small()
    graph["ops"][4]["out_features"] = 11
    _load_error(_write(path, graph, tensors), r"shape \[10, 2\], expected \[11, 2\]")
    graph, tensors, _ = small()
    graph["num_classes"] = 12
    _load_error(_write(path, graph, tensors), "produces 10 scores but num_classes is 12")
    graph, tensors, _ = small()
    graph["ops"][2] = {
        "type": "conv2d",
        "out_channels": 96,
        "kernel_size": [1, 1],
        "stride": [1, 1],
        "padding": [0, 0],
        "weight": "op2.weight",
    }
    _load_error(_write(path, graph, tensors), r"takes uint8 or bits \[H, W, C\] input")
    graph, tensors, _ = small()
    graph["input"]["shape"] = [28, 40]
    _load_error(_write(path, graph, tensors), r"'op0.weight' has shape \[96, 13\], expected")


def test_unknown_op_version_and_format(small) -> None:
    graph, tensors, path = small()
    graph["ops"][1]["type"] = "softmax"
    _load_error(_write(path, graph, tensors), "op 1: unknown op type 'softmax'")
    graph, tensors, _ = small()
    graph["version"] = 2
    _load_error(_write(path, graph, tensors), "unsupported .bnn version 2")
    graph, tensors, _ = small()
    graph["format"] = "onnx"
    _load_error(_write(path, graph, tensors), "not a binarynet model: format 'onnx'")
    graph, tensors, _ = small()
    graph["ops"][0]["dilation"] = [2, 2]
    _load_error(_write(path, graph, tensors), r"unknown fields \['dilation'\]")
    path.write_bytes(safetensors.numpy.save({"w": np.zeros(3, np.float32)}))
    _load_error(path, "not a binarynet model file")
    with pytest.raises(FileNotFoundError, match="model file not found"):
        engine.load(path.with_name("missing.bnn"))


def test_graph_structure_errors(small) -> None:
    graph, tensors, path = small()
    graph["ops"][3] = dict(graph["ops"][1])
    _load_error(_write(path, graph, tensors), "'op1.lo' is already used by another op")
    graph, tensors, _ = small()
    tensors["extra"] = np.zeros(4, np.float32)
    _load_error(_write(path, graph, tensors), r"not used by any op: \['extra'\]")
    graph, tensors, _ = small()
    del graph["ops"][-1]
    _load_error(_write(path, graph, tensors), "ends with int32")
    graph, tensors, _ = small()
    graph["ops"][1] = {"type": "maxpool2d", "kernel_size": [2, 2], "stride": [2, 2]}
    _load_error(_write(path, graph, tensors), r"maxpool2d\): takes int32 \[H, W, C\]")
    graph, tensors, _ = small()
    graph["ops"][0]["out_features"] = True
    _load_error(_write(path, graph, tensors), "'out_features' must be an integer")
    graph, tensors, _ = small()
    graph["ops"][5]["input_scale"] = 0.3
    _load_error(_write(path, graph, tensors), "'input_scale' must be a power of two")


def test_absurd_sizes_are_refused_before_allocation(small) -> None:
    graph, tensors, path = small()
    graph["input"]["shape"] = [65536, 65536]
    _load_error(_write(path, graph, tensors), "too large")
    graph, tensors, _ = small()
    graph["input"]["shape"] = [10**9]
    graph["input"]["layout"] = "NF"
    _load_error(_write(path, graph, tensors), "dimension outside 1..65536")
    # A first layer over 256·256·3 pixels: |s| could reach 2⁵·... > 2²⁴, not exact in torch.
    graph, tensors, _ = small()
    graph["input"].update(shape=[256, 256, 3], layout="NHWC")
    tensors["op0.weight"] = np.zeros((96, 3072), np.uint64)
    _load_error(_write(path, graph, tensors), "would not be exact")


def test_tensor_values_are_checked(small) -> None:
    graph, tensors, path = small()
    weight = tensors["op0.weight"].copy()
    weight[3, -1] |= np.uint64(1) << np.uint64(63)  # past the 784 real bits
    _load_error(_write(path, graph, {**tensors, "op0.weight": weight}), "nonzero padding bits")
    scale = tensors["op5.scale"].copy()
    scale[2] = np.inf
    _load_error(_write(path, graph, {**tensors, "op5.scale": scale}), "'op5.scale' is not finite")
    graph["preprocess"] = {"kind": "bogus"}
    _load_error(_write(path, graph, tensors), "preprocess: unknown preprocessor kind 'bogus'")


# --------------------------------------------------------------------------------------------
# Torch-free
# --------------------------------------------------------------------------------------------

BLOCK_TORCH = """
import sys

class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
        return None

sys.meta_path.insert(0, _NoTorch())
"""


def _run_without_torch(code: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + code, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_engine_runs_without_torch(tmp_path: Path) -> None:
    case = get_case("cifar-trained-shift")
    np.save(tmp_path / "x.npy", case.x)
    code = """
import numpy as np
from binarynet.backends import engine
model = engine.load(sys.argv[1])
np.save(sys.argv[3], model.scores(np.load(sys.argv[2])))
assert not [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
try:
    import torch
except ImportError:
    print("torch blocked")
"""
    result = _run_without_torch(code, str(case.path), str(tmp_path / "x.npy"), str(tmp_path / "s"))
    assert "torch blocked" in result.stdout
    assert np.array_equal(np.load(tmp_path / "s.npy"), case.scores)


def test_eval_command_runs_without_torch() -> None:
    case = get_case("mlp-trained-std")
    sample = mnist_sample().test
    with torch.no_grad():
        torch_pred = case.model(torch.from_numpy(sample.images)).argmax(1).numpy()
    errors = int((torch_pred != sample.labels).sum())
    code = "from binarynet.cli import main\nsys.exit(main(sys.argv[1:]))"
    result = _run_without_torch(code, "eval", str(case.path), "--threads", "1")
    line = re.search(r"mnist-sample test error: ([\d.]+)% \((\d+) / (\d+)\)", result.stdout)
    assert line, result.stdout
    assert (int(line[2]), int(line[3])) == (errors, len(sample))


def test_eval_command_errors(capsys) -> None:
    from binarynet.cli import main

    path = str(get_case("cifar-fresh-std").path)
    assert main(["eval", path, "--dataset", "cifar10"]) == 2
    assert "needs a data directory" in capsys.readouterr().err
    assert main(["eval", path]) == 2  # MNIST images into a 32×32×3 model
    assert "takes images of shape [32, 32, 3], but mnist-sample's are [28, 28]" in (
        capsys.readouterr().err
    )


def test_file_metadata_is_plain_json() -> None:
    """The graph sits in the safetensors metadata as JSON: readable with any safetensors tool."""
    from safetensors import safe_open

    with safe_open(get_case("mlp-fresh-std").path, framework="numpy") as f:
        metadata = f.metadata()
        keys = sorted(f.keys())
    graph = json.loads(metadata["binarynet"])
    assert graph["format"] == "binarynet-bnn" and graph["version"] == 1
    assert [op["type"] for op in graph["ops"]] == [
        "dense",
        "threshold",
        "dense",
        "threshold",
        "dense",
        "scores",
    ]
    names = "op0.weight op1.lo op1.hi op2.weight op3.lo op3.hi op4.weight op5.scale op5.shift"
    assert keys == sorted(names.split())
    assert re.fullmatch(r"[0-9a-f]{64}", metadata["binarynet.sha256"])
