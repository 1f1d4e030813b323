"""FINN's own compiler (finn-plus, no Vivado) on the QONNX export for FINN: its default steps
make one dataflow partition of hardware layers only (every binary layer an MVAU in XNOR mode),
and FINN's executor on that graph gives the engine's classes on 100 test images, scores within
float32 rounding of the affine FINN folds (``tools/finn_build.py`` checks and reports).

FINN lives in its own environment (``make test-finn`` builds it, ``tools/finn_env.sh``); these
tests skip when it is absent. ``BINARYNET_FINN_PYTHON`` names its interpreter (default
``build/venv-finn/bin/python``). The refusals need no FINN.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the qonnx extra is not installed")

from binarynet.backends.qonnx import to_qonnx, write_qonnx
from binarynet.export import export_checkpoint
from binarynet.graph import bnnfile

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tools"))
FINN_VENV = REPO / "build/venv-finn"
FINN_PYTHON = Path(os.environ.get("BINARYNET_FINN_PYTHON", FINN_VENV / "bin/python"))
FINN_READY = (
    FINN_PYTHON.exists()
    if "BINARYNET_FINN_PYTHON" in os.environ
    else (FINN_VENV / ".installed").exists()  # tools/finn_env.sh finished
)

needs_finn = pytest.mark.skipif(
    not FINN_READY, reason=f"no FINN environment at {FINN_PYTHON} (make test-finn)"
)


@pytest.mark.finn
@needs_finn
@pytest.mark.parametrize("name", ["mlp", "cnv", "cnv-pad1", "cnv-pm1"])
def test_finn_hardware_layers_match_the_engine(name: str, tmp_path: Path) -> None:
    import finn_models

    onnx_path, case = finn_models.write(tmp_path, name, images=100)
    out = tmp_path / "finn"
    result = subprocess.run(
        [str(FINN_PYTHON), str(REPO / "tools/finn_build.py"), str(onnx_path), str(case), str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] == []
    assert summary["outside_partition"] == ["StreamingDataflowPartition"]
    assert summary["classes_equal"] == summary["images"] == 100
    layers = summary["hardware_layers"]
    mvaus = [layer for layer in layers if layer.startswith("MVAU")]
    binary_layers = 3 if name == "mlp" else 9
    assert len(mvaus) == binary_layers
    assert summary["mvau_xnor_mode"] == [0] + [1] * (binary_layers - 1)  # the first: uint8 input
    if name != "mlp":
        assert sum(layer.startswith("ConvolutionInputGenerator") for layer in layers) == 8
        assert sum(layer.startswith("Pool") for layer in layers) == 2
    estimate = summary["estimate_total"]
    assert estimate["LUT"] > 0 and summary["estimate_performance"]["estimated_throughput_fps"] > 0


@pytest.mark.finn
@needs_finn
@pytest.mark.parametrize("name", ["pm1-trained-std", "pm1-epoch-std"])
def test_finn_on_a_trained_pm1_padded_convnet(tmp_path: Path, name: str) -> None:
    """The paper's ConvNet (width 1/8) with its binary convolutions padded with −1, trained by
    the optimizer (a few steps, or one epoch: tests/torch_cases.py), through FINN: XNOR
    hardware, the engine's classes."""
    sys.path.insert(0, str(REPO / "tests"))
    from binarynet.backends import engine
    from torch_cases import get_case

    case = get_case(name)
    onnx_path, npz = tmp_path / "pm1.onnx", tmp_path / "pm1.npz"
    write_qonnx(case.path, onnx_path, target="finn")
    scores = engine.load(case.path).scores(case.x, preprocess=False)
    np.testing.assert_array_equal(scores, case.scores)  # the torch model's, bit for bit
    np.savez(npz, images=case.x, scores=scores)
    out = tmp_path / "finn"
    result = subprocess.run(
        [str(FINN_PYTHON), str(REPO / "tools/finn_build.py"), str(onnx_path), str(npz), str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] == [] and summary["classes_equal"] == len(case.x)
    assert summary["mvau_xnor_mode"] == [0] + [1] * 8  # 6 convolutions, 3 dense layers
    assert sum(layer.startswith("FMPadding") for layer in summary["hardware_layers"]) == 6


def test_finn_refuses_a_zero_padded_binary_convolution(tmp_path: Path) -> None:
    """FINN pads ±1 streams with −1: the paper's zero-padded binary convolutions are refused for
    FINN with one line, exported for other QONNX readers (exact there)."""
    bnn = tmp_path / "c.bnn"
    export_checkpoint(REPO / "tests/fixtures/cifar10_convnet_tiny.pt", bnn)
    loaded = bnnfile.load(bnn)
    with pytest.raises(ValueError, match=r"^op 2 \(conv2d.*zero-padded by \[1, 1\].*-1 \(bit 0\)"):
        to_qonnx(loaded.graph, loaded.tensors, target="finn")
    assert to_qonnx(loaded.graph, loaded.tensors).graph.node  # target="qonnx", the default
    with pytest.raises(ValueError, match="target must be one of qonnx, finn, got 'vivado'"):
        to_qonnx(loaded.graph, loaded.tensors, target="vivado")
    out = tmp_path / "c.onnx"
    with pytest.raises(ValueError, match="zero-padded"):
        write_qonnx(bnn, out, target="finn")
    assert not out.exists()


def test_finn_refuses_what_its_padding_cannot_be(tmp_path: Path) -> None:
    """FINN pads with −1: +1 padding, and −1 padding after a down-set channel behind a pool
    (negated there), are refused for FINN; a batch other than 1 too. For QONNX, both export."""
    sys.path.insert(0, str(REPO / "tests"))
    from torch_cases import get_case

    plus = bnnfile.load(get_case("pp1-trained-std").path)
    with pytest.raises(ValueError, match=r"^op 2 \(conv2d.*-1 only.*train it with pad_value=-1$"):
        to_qonnx(plus.graph, plus.tensors, target="finn")
    stressed = bnnfile.load(get_case("pm1-stressed-std").path)
    with pytest.raises(ValueError, match=r"is a down-set threshold \(γ < 0\) behind a max-pool"):
        to_qonnx(stressed.graph, stressed.tensors, target="finn")
    trained = bnnfile.load(get_case("pm1-trained-std").path)
    with pytest.raises(ValueError, match=r"has batch 1, got batch_size=4$"):
        to_qonnx(trained.graph, trained.tensors, target="finn", batch_size=4)
    assert to_qonnx(trained.graph, trained.tensors, target="finn").graph.node


def test_export_command_for_finn(tmp_path: Path, capsys) -> None:
    from binarynet import cli

    checkpoint = str(REPO / "tests/fixtures/cifar10_convnet_tiny.pt")
    out = tmp_path / "c.onnx"
    assert cli.main(["export", checkpoint, str(out), "--format", "qonnx", "--for", "finn"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: op 2 (conv2d") and "train it unpadded" in err
    assert err.count("\n") == 1 and not out.exists()
    assert cli.main(["export", checkpoint, str(tmp_path / "c.bnn"), "--for", "finn"]) == 2
    assert "--for is for --format qonnx, not --format bnn" in capsys.readouterr().err
    mlp = str(REPO / "tests/fixtures/mnist_mlp_tiny.pt")
    assert cli.main(["export", mlp, str(out), "--format", "qonnx", "--for", "finn"]) == 0
    assert out.exists()


def test_finn_export_of_unpadded_convnet_is_the_default_graph(tmp_path: Path) -> None:
    """target="finn" refuses more and changes nothing else."""
    import finn_models

    _, case = finn_models.write(tmp_path, "cnv", images=2)
    loaded = bnnfile.load(tmp_path / "cnv.bnn")
    assert to_qonnx(loaded.graph, loaded.tensors) == to_qonnx(
        loaded.graph, loaded.tensors, target="finn"
    )
    assert np.load(case)["scores"].shape == (2, 10)
