"""Tests of binarynet.checkpoint: checkpoints saved before a change export to the same bytes.

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

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import binarynet
from binarynet import bnnfile
from binarynet.cli import main
from binarynet.export import export_checkpoint

FIXTURES = Path(__file__).resolve().parent / "fixtures"

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
    graph = model.graph.to_json()
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
