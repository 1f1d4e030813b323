"""Tests of binarynet.training.checkpoint: the format, its one reader, and checkpoints saved before
a change that must export to the same bytes after it.

The fixtures in ``tests/fixtures/`` are ``best.pt`` files of two tiny training runs
(``tools/make_checkpoint_fixtures.py``). Each was exported when it was made; the SHA-256 of
that ``.bnn`` file is recorded here, so any change of the checkpoint reader, the model builders
or the exporter that changes one bit of a deployed model fails.

Bytes: safetensors writes its ``__metadata__`` map (the graph and its checksum) in hash-map
order, which changes from one process to the next, so two exports of one checkpoint may differ
in the order of those two header entries and nowhere else. :func:`file_sha256` therefore hashes
the header as canonical JSON (keys sorted) followed by the tensor data bytes as written: equal
digests mean the same header entries and the same data, byte for byte.

Versions: the ``.bnn`` provenance holds binarynet's and torch's versions, so the digest of the
whole file can only hold under the versions it was recorded with. Under those (``RECORDED_WITH``)
the test compares the whole file; under others it still compares the *content digest*: the
graph JSON without those two version strings (canonical JSON, keys sorted) and every tensor's
name, dtype, shape and bytes, which no version string changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import binarynet
from binarynet.cli import main
from binarynet.export import export_checkpoint
from binarynet.graph import bnnfile
from binarynet.training.checkpoint import (
    checkpoint_state,
    load_checkpoint,
    load_model,
    read_checkpoint,
    save_checkpoint,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

RECORDED_WITH = {"binarynet": "0.1.0", "torch": "2.13.0+cpu"}
"""The versions under which the whole-file digests below were recorded."""

VERSION_KEYS = ("binarynet_version", "torch_version")


@dataclass(frozen=True)
class Expected:
    file_sha256: str
    content_sha256: str


EXPECTED = {
    "mnist_mlp_tiny.pt": Expected(
        file_sha256="71d3bb5e54c3efeaf2e2e4dcb6f552166f4bccb543c232fc6ea0928cf11f322e",
        content_sha256="5a387bd846e2021edf7612d23fbf4e2d5458d60dc0396cbed500f75b51e1fd8e",
    ),
    "cifar10_convnet_tiny.pt": Expected(
        file_sha256="c5c75a0dfc2efde937a4a95b5eee26e52ea71dd2cae036c49497706d60055134",
        content_sha256="19dfd861acb75b31c7fd995121887bd6f353983c45c4c2aefaba6c3e9ebd55ac",
    ),
}


def file_sha256(path: Path) -> str:
    """SHA-256 of a ``.bnn`` file with its safetensors header in canonical JSON (see above)."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical + data[8 + n :]).hexdigest()


def content_sha256(path: Path) -> str:
    """SHA-256 of a ``.bnn`` file's graph (less the version strings) and tensors."""
    model = bnnfile.load(path)
    graph = bnnfile.graph_to_json(model.graph)
    graph["provenance"] = {k: v for k, v in graph["provenance"].items() if k not in VERSION_KEYS}
    h = hashlib.sha256(json.dumps(graph, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(model.tensors):
        array = np.ascontiguousarray(model.tensors[name])
        h.update(json.dumps([name, array.dtype.str, list(array.shape)]).encode())
        h.update(array.tobytes())
    return h.hexdigest()


def _recorded_versions() -> bool:
    return (binarynet.__version__, str(torch.__version__)) == (
        RECORDED_WITH["binarynet"],
        RECORDED_WITH["torch"],
    )


@pytest.mark.parametrize("route", ["api", "cli"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_checkpoint_exports_to_the_recorded_bytes(
    tmp_path: Path, name: str, route: str
) -> None:
    out = tmp_path / "model.bnn"
    if route == "api":
        export_checkpoint(FIXTURES / name, out)
    else:
        assert main(["export", str(FIXTURES / name), str(out)]) == 0
    expected = EXPECTED[name]
    assert content_sha256(out) == expected.content_sha256
    if _recorded_versions():
        assert file_sha256(out) == expected.file_sha256


# --------------------------------------------------------------------------------------------
# The format and its one reader
# --------------------------------------------------------------------------------------------

MODEL_PART = {"format", "config", "preprocess", "model_state", "epoch"}
BEST_KEYS = MODEL_PART | {"metrics"}
LAST_KEYS = MODEL_PART | {
    "optimizer_state",
    "scheduler_state",
    "rng_state",
    "batch",
    "accum",
    "history",
    "best",
    "elapsed",
    "epoch_signs",
    "torch_version",
}


def _tiny_trainer(tmp_path: Path, **overrides):
    from binarynet.config import recipe_config
    from binarynet.data import Split, Splits, mnist_sample
    from binarynet.training.trainer import Trainer

    s = mnist_sample()
    splits = Splits(
        Split(s.train.images[:100], s.train.labels[:100]),
        Split(s.valid.images[:50], s.valid.labels[:50]),
        Split(s.test.images[:50], s.test.labels[:50]),
        name="mnist-sample-tiny",
    )
    cfg = recipe_config(
        None,
        model_kwargs={"hidden": 8, "depth": 1},
        batch_size=50,
        epochs=1,
        compute_dtype="float32",
        **overrides,
    )
    return Trainer(cfg, splits, tmp_path, progress=False)


def test_the_format_is_that_of_the_checkpoints_saved_before(tmp_path: Path) -> None:
    """best.pt and last.pt written now have the keys of the fixture (written before
    checkpoint_state existed) and of the resume state documented in the module."""
    assert set(load_checkpoint(FIXTURES / "mnist_mlp_tiny.pt")) == BEST_KEYS
    trainer = _tiny_trainer(tmp_path)
    trainer.run()
    assert set(load_checkpoint(tmp_path / "best.pt")) == BEST_KEYS
    assert set(load_checkpoint(tmp_path / "last.pt")) == LAST_KEYS


def test_checkpoint_state_keeps_the_model_part_apart(tmp_path: Path) -> None:
    trainer = _tiny_trainer(tmp_path)
    cfg = dataclasses.asdict(trainer.cfg)
    with pytest.raises(ValueError, match="must not set"):
        checkpoint_state(cfg, trainer.model, None, epoch=0, training={"model_state": {}})
    state = checkpoint_state(cfg, trainer.model, None, epoch=2, metrics={"valid_error": 0.5})
    assert set(state) == BEST_KEYS - {"format"}
    assert state["epoch"] == 2 and state["preprocess"] is None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_read_checkpoint(name: str) -> None:
    ckpt = read_checkpoint(FIXTURES / name)
    state = load_checkpoint(FIXTURES / name)
    assert ckpt.config == state["config"] and ckpt.epoch == state["epoch"] == 1
    assert ckpt.batch is None and not ckpt.is_last
    assert ckpt.metrics == state["metrics"]
    assert not ckpt.model.training
    for key, value in ckpt.model.state_dict().items():
        assert torch.equal(value, state["model_state"][key]), key
    assert ckpt.model.preprocessor is ckpt.preprocessor
    kind = None if ckpt.preprocessor is None else ckpt.preprocessor.kind
    assert kind == state["config"]["preprocess"]
    assert load_model(FIXTURES / name).preprocessor.__class__ is ckpt.preprocessor.__class__


def test_read_checkpoint_of_last_pt_and_of_other_files(tmp_path: Path) -> None:
    trainer = _tiny_trainer(tmp_path)
    save_checkpoint(tmp_path / "last.pt", trainer.state_dict())
    ckpt = read_checkpoint(tmp_path / "last.pt")
    assert (ckpt.epoch, ckpt.batch, ckpt.metrics, ckpt.is_last) == (0, 0, None, True)
    save_checkpoint(tmp_path / "other.pt", {"preprocess": None})
    with pytest.raises(ValueError, match="not a binarynet training checkpoint"):
        read_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "missing.pt")


@pytest.fixture
def count_reads(monkeypatch):
    """The number of checkpoint files read with torch.load since the fixture started."""
    reads: list[str] = []
    real = torch.load

    def counting(f, *args, **kwargs):
        reads.append(str(f))
        return real(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting)
    return reads


def test_export_summary_and_plots_read_a_checkpoint_once(tmp_path: Path, count_reads) -> None:
    from binarynet.analysis.summary import summary
    from binarynet.training.plots import plot_run

    fixture = FIXTURES / "cifar10_convnet_tiny.pt"
    export_checkpoint(fixture, tmp_path / "m.bnn")
    assert count_reads == [str(fixture)]
    count_reads.clear()
    summary(str(fixture), filters=False)
    assert count_reads == [str(fixture)]
    count_reads.clear()
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(fixture.read_bytes())
    plot_run(run)
    assert count_reads == [str(run / "best.pt")]
    ckpt = read_checkpoint(fixture)
    count_reads.clear()
    export_checkpoint(ckpt, tmp_path / "again.bnn")  # an already read checkpoint: no read
    assert count_reads == []
    assert file_sha256(tmp_path / "again.bnn") == file_sha256(tmp_path / "m.bnn")
