"""binarynet.analysis.summary: counts against hand-computed values, agreement with the .bnn
export."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

import binarynet
from binarynet.analysis.summary import BINARY_WORD_PJ, ENERGY_PJ, memory_level, summary
from binarynet.cli import main
from binarynet.export import build_graph, export
from binarynet.graph import bnnfile
from binarynet.training.checkpoint import save_checkpoint
from binarynet.training.models import cifar10_convnet, float_mlp, mnist_mlp
from binarynet.training.nn import (
    BinaryLinear,
)
from torch_cases import randomise_bn, tiny_convnet, tiny_mlp

FLOAT_MAC = ENERGY_PJ["float32_mult"] + ENERGY_PJ["float32_add"]


def test_tiny_mlp_by_hand():
    s = summary(tiny_mlp(), (4, 4))
    # Parameters: weights 16·8 + 8·10, batch-norm γ and β 2·8 + 2·10.
    assert s.params == 128 + 80 + 16 + 20
    assert s.bits == {1: 208, 32: 36}  # thresholds lo, hi (2·8); scale, shift (2·10)
    # float32: 4 bytes per weight, batch norm as scale + shift.
    assert s.float32_bytes == 4 * 208 + 8 * 8 + 8 * 10 == 976
    # Deployed: 8 rows of ⌈16/64⌉ = 1 word, thresholds 2·8 int32, 10 rows of 1 word,
    # scale and shift 2·10 float32.
    assert s.deployed_bytes == 8 * 8 + 8 * 8 + 10 * 8 + 8 * 10 == 288
    assert s.compression == pytest.approx(976 / 288)
    assert s.macs == {"binary": 80, "int8": 128, "float": 0}
    assert s.ops == {"threshold": 8, "affine": 10}
    shapes = {layer.name: layer.output_shape for layer in s.layers}
    assert shapes == {
        "0": (4, 4),
        "1": (16,),
        "2": (8,),
        "3": (8,),
        "4": (8,),
        "5": (10,),
        "6": (10,),
    }


def test_tiny_mlp_energy_by_hand():
    e = summary(tiny_mlp(), (4, 4)).energy()
    # Everything fits 8 KB SRAM: 10 pJ per 64-bit word.
    assert e.deployed["arithmetic"] == pytest.approx(
        80 * BINARY_WORD_PJ / 64 + 128 * 0.1 + 8 * 2 * 0.1 + 10 * FLOAT_MAC
    )
    assert e.deployed["weights"] == pytest.approx(288 / 8 * 10)
    # Input 16 B read once (2 words); 8 packed bits (1 word) and 10 float32 scores (5 words)
    # written and read once.
    assert e.deployed["activations"] == pytest.approx(2 * 10 + 2 * 1 * 10 + 2 * 5 * 10)
    assert e.float32["arithmetic"] == pytest.approx((208 + 8 + 10) * FLOAT_MAC)
    assert e.float32["weights"] == pytest.approx(976 / 8 * 10)
    assert e.float32["activations"] == pytest.approx(2 * 10 + 2 * 4 * 10 + 2 * 5 * 10)
    assert e.ratio == pytest.approx(e.float32_total / e.deployed_total)
    # A batch of 4 shares one read of the weights; the rest is per image.
    e4 = summary(tiny_mlp(), (4, 4), batch=4).energy()
    assert e4.batch == 4 and e4.deployed["weights"] == pytest.approx(e.deployed["weights"] / 4)
    assert e4.float32["arithmetic"] == e.float32["arithmetic"]
    with pytest.raises(ValueError, match="batch must be a positive integer, got 0"):
        summary(tiny_mlp(), (4, 4), batch=0)


def test_tiny_convnet_by_hand():
    s = summary(tiny_convnet(), (3, 4, 4))
    rows = {layer.name: layer for layer in s.layers}
    # conv1: 4×4×4 outputs × K = 27 (8-bit input); its 4 rows of ⌈27/64⌉ = 1 word.
    assert rows["1"].macs == {"int8": 64 * 27}
    assert rows["1"].deployed_bytes == 4 * 8
    assert rows["2"].output_shape == (4, 2, 2)
    assert rows["2"].ops == {"compare": 16 * 3}
    # conv2 over bits: 5×2×2 outputs × K = 36; weights packed per tap: 5·9 words.
    assert rows["5"].macs == {"binary": 20 * 36}
    assert rows["5"].deployed_bytes == 5 * 9 * 8
    # dense over the flattened [2, 2, 5] bits: one word per position, 4 per row.
    assert rows["9"].macs == {"binary": 200}
    assert rows["9"].deployed_bytes == 10 * 4 * 8
    assert s.params == 108 + 8 + 180 + 10 + 200 + 20
    assert s.bits == {1: 488, 32: 38}
    assert s.float32_bytes == 4 * 488 + 8 * (4 + 5 + 10) == 2104
    assert s.deployed_bytes == 32 + 32 + 360 + 40 + 320 + 80 == 864
    assert s.macs == {"binary": 920, "int8": 1728, "float": 0}
    assert s.ops == {"compare": 48, "threshold": 36, "affine": 10}
    assert [f.shape for f in s.filters] == [(4, 3, 3, 3), (5, 4, 3, 3)]


@pytest.mark.parametrize(
    ("build", "shape"),
    [
        (tiny_mlp, (4, 4)),
        (lambda: tiny_mlp(bias=True), (4, 4)),
        (tiny_convnet, (3, 4, 4)),
        (lambda: randomise_bn(cifar10_convnet(width=1 / 16, fc_width=40)), (3, 32, 32)),
    ],
)
def test_torch_and_bnn_summaries_agree_with_the_file(build, shape, tmp_path):
    model = build()
    s = summary(model, shape)
    _, tensors = build_graph(model, shape)
    assert s.deployed_bytes == sum(t.nbytes for t in tensors.values())
    path = tmp_path / "m.bnn"
    export(model, path, input_shape=shape)
    b = summary(path)
    assert b.source == ".bnn" and b.input_shape == shape
    assert b.file_bytes == path.stat().st_size
    td, bd = s.to_dict(), b.to_dict()
    for key in ("bits", "deployed_bytes", "macs", "ops"):
        assert td["totals"][key] == bd["totals"][key], key
    assert td["energy"]["deployed"] == bd["energy"]["deployed"]
    # A hidden layer's bias is folded into the thresholds: the file cannot count it.
    if not any(isinstance(m, BinaryLinear) and m.bias is not None for m in model):
        assert s.params == b.params and s.float32_bytes == b.float32_bytes
        assert td["energy"] == bd["energy"]
    assert [f.to_dict() | {"name": ""} for f in s.filters] == [
        f.to_dict() | {"name": ""} for f in b.filters
    ]
    # The file is the tensors plus the safetensors header (graph JSON, checksum).
    header = path.stat().st_size - b.deployed_bytes - b.preprocess_bytes
    assert 0 < header < 16_384


def test_bias_is_folded_into_thresholds_but_stored_for_the_scores():
    s = summary(tiny_mlp(bias=True), (4, 4))
    assert s.params == 244 + 8 + 10
    assert s.float32_bytes == 976 + 4 * 18
    assert s.deployed_bytes == 288 + 4 * 10
    assert s.bits == {1: 208, 32: 46}


def test_float_baseline_is_all_float():
    s = summary(float_mlp(hidden=8, depth=1, in_features=16), (16,))
    assert s.macs == {"binary": 0, "int8": 0, "float": 16 * 8 + 8 * 10}
    assert s.bits == {32: 208 + 2 * 8 + 2 * 10}
    assert s.float32_bytes == s.deployed_bytes == 4 * 244
    assert s.compression == 1.0
    e = s.energy()
    assert e.float32 == e.deployed
    assert not s.filters


def test_paper_mlp_counts():
    s = summary(mnist_mlp(4096, 3), (28, 28))
    h = 4096
    assert s.macs == {"binary": 2 * h * h + h * 10, "int8": 784 * h, "float": 0}
    assert s.params == 784 * h + 2 * h * h + h * 10 + 2 * (3 * h + 10)
    assert s.bits[1] == 784 * h + 2 * h * h + h * 10
    assert s.deployed_bytes == 8 * (h * 13 + 2 * h * 64 + 10 * 64) + 8 * 3 * h + 8 * 10
    assert 30 < s.compression < 32
    e = s.energy()
    assert e.weight_level == ("DRAM", "DRAM")
    assert 25 < e.ratio < 40


def test_paper_convnet_counts():
    s = summary(cifar10_convnet(), (3, 32, 32))
    convs = [(3, 128, 32), (128, 128, 32), (128, 256, 16), (256, 256, 16), (256, 512, 8)]
    convs.append((512, 512, 8))
    conv_macs = [c * o * 9 * size * size for c, o, size in convs]
    fc = 8192 * 1024 + 1024 * 1024 + 1024 * 10
    assert s.macs == {"binary": sum(conv_macs[1:]) + fc, "int8": conv_macs[0], "float": 0}
    assert s.bits[1] == sum(c * o * 9 for c, o, _ in convs) + fc
    assert s.macs["binary"] / sum(s.macs.values()) > 0.99
    assert len(s.filters) == 6


def test_memory_levels():
    assert memory_level(8 * 1024) == ("8 KB SRAM", 10.0)
    assert memory_level(8 * 1024 + 1) == ("32 KB SRAM", 20.0)
    assert memory_level(1 << 20) == ("1 MB SRAM", 100.0)
    assert memory_level((1 << 20) + 1) == ("DRAM", 1300.0)


def test_rendering_and_json():
    s = summary(tiny_convnet(), (3, 4, 4))
    text = str(s)
    assert "ESTIMATE" in text and "BinaryConv2d" in text and "filter repetitions" in text
    d = json.loads(json.dumps(s.to_dict()))
    assert d["energy"]["estimate"] is True
    assert d["totals"]["macs"] == {"binary": 920, "int8": 1728, "float": 0}
    assert d["filters"]["paper_unique_2d_sign"] == 0.42
    assert math.isclose(sum(d["totals"]["mac_fractions"].values()), 1.0)


def test_package_level_names():
    model = tiny_mlp()
    assert binarynet.analysis.summary(model, (4, 4)).deployed_bytes == 288
    assert binarynet.summarize(model, (4, 4)).deployed_bytes == 288


def test_errors():
    with pytest.raises(ValueError, match="input_shape"):
        summary(tiny_convnet())
    with pytest.raises(ValueError, match=r"input shape \[3, 5\]"):
        summary(tiny_convnet(), (3, 5))
    with pytest.raises(FileNotFoundError, match=r"nowhere\.bnn"):
        summary("nowhere.bnn")
    with pytest.raises(TypeError, match="int"):
        summary(3)


def test_training_mode_is_restored():
    model = tiny_mlp().train()
    summary(model, (4, 4))
    assert model.training


def test_bnn_summary_needs_no_torch(tmp_path):
    path = tmp_path / "m.bnn"
    export(tiny_convnet(), path, input_shape=(3, 4, 4))
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from binarynet.analysis.summary import summary\n"
        f"s = summary({str(path)!r})\n"
        "assert s.deployed_bytes == 864, s.deployed_bytes\n"
        "print(s)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ESTIMATE" in out.stdout


def test_cli_summary(tmp_path, capsys):
    model = tiny_mlp()
    bnn = tmp_path / "m.bnn"
    export(model, bnn, input_shape=(4, 4))
    assert main(["summary", str(bnn), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["totals"]["deployed_bytes"] == 288
    ckpt = tmp_path / "best.pt"
    config = {"model": "mnist-mlp", "model_kwargs": {"hidden": 8, "depth": 1, "in_features": 16}}
    m = mnist_mlp(hidden=8, depth=1, in_features=16)
    save_checkpoint(ckpt, {"config": config, "model_state": m.state_dict(), "epoch": 3})
    assert main(["summary", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "epoch 3" in out and "ESTIMATE" in out
    assert main(["summary", str(ckpt), "--input-shape", "16", "--json", "--no-filters"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["totals"]["macs"] == {"binary": 80, "int8": 128, "float": 0}
    assert main(["summary", str(bnn), "--json", "--batch", "10"]) == 0
    assert json.loads(capsys.readouterr().out)["energy"]["batch"] == 10
    last = tmp_path / "last.pt"
    save_checkpoint(last, {"config": config, "model_state": m.state_dict(), "epoch": 3, "batch": 5})
    assert main(["summary", str(last), "--no-filters"]) == 0
    assert "after 3 epochs and 5 batches" in capsys.readouterr().out
    assert main(["summary", str(tmp_path / "missing.pt")]) == 2
    assert "not found" in capsys.readouterr().err


def test_bnn_file_loaded_object(tmp_path):
    path = tmp_path / "m.bnn"
    export(tiny_mlp(), path, input_shape=(4, 4))
    s = summary(bnnfile.load(path), name="tiny")
    assert s.name == "tiny" and s.deployed_bytes == 288
