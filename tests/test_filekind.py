"""binarynet.filekind: the two model-file kinds told apart, with a message naming each."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from binarynet import filekind
from binarynet.training.checkpoint import save_checkpoint


@pytest.fixture
def files(tmp_path):
    import safetensors.numpy

    ckpt = tmp_path / "best.pt"
    save_checkpoint(ckpt, {"model": {"w": torch.zeros(2)}})
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    bnn = tmp_path / "model.bnn"
    bnn.write_bytes(
        safetensors.numpy.save({"w": np.zeros(2, np.uint8)}, metadata={"binarynet": "{}"})
    )
    plain = tmp_path / "plain.safetensors"
    plain.write_bytes(safetensors.numpy.save({"w": np.zeros(2, np.uint8)}))
    text = tmp_path / "notes.txt"
    text.write_text("hello world, a text file")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    huge = tmp_path / "huge"  # a header length far beyond the file
    huge.write_bytes(struct.pack("<Q", 1 << 62) + json.dumps({"a": 1}).encode())
    return {
        "checkpoint": ckpt,
        "legacy": legacy,
        "bnn": bnn,
        "plain": plain,
        "text": text,
        "empty": empty,
        "huge": huge,
    }


def test_sniff_tells_each_kind(files):
    assert filekind.sniff(files["checkpoint"]) == filekind.CHECKPOINT
    assert filekind.sniff(files["legacy"]) == "other"  # binarynet never writes the old format
    assert filekind.sniff(files["bnn"]) == filekind.BNN
    assert filekind.sniff(files["plain"]) == "safetensors"
    assert filekind.sniff(files["text"]) == "other"
    assert filekind.sniff(files["empty"]) == "empty"
    assert filekind.sniff(files["huge"]) == "other"


def test_require_accepts_the_expected_kind(files):
    assert filekind.require(files["bnn"], filekind.BNN, "model") == files["bnn"]
    assert (
        filekind.require(str(files["checkpoint"]), filekind.CHECKPOINT, "checkpoint")
        == (files["checkpoint"])
    )


def test_a_checkpoint_given_for_a_bnn_says_to_export_it(files):
    with pytest.raises(ValueError, match=r"best\.pt is a training checkpoint .*binarynet export"):
        filekind.require(files["checkpoint"], filekind.BNN, "model")


def test_a_bnn_given_for_a_checkpoint_says_which_commands_take_it(files):
    with pytest.raises(ValueError, match=r"model\.bnn is a \.bnn model file .*binarynet eval"):
        filekind.require(files["bnn"], filekind.CHECKPOINT, "checkpoint")


def test_foreign_files_are_left_to_the_loader(files):
    for name in ("plain", "text", "empty", "huge"):
        assert filekind.require(files[name], filekind.BNN, "model") == files[name]
        assert filekind.require(files[name], filekind.CHECKPOINT, "checkpoint") == files[name]


def test_directories_and_missing_paths(files, tmp_path):
    with pytest.raises(ValueError, match=r"is a directory; expected a \.bnn model file"):
        filekind.require(tmp_path, filekind.BNN, "model")
    with pytest.raises(FileNotFoundError, match=r"checkpoint not found: .*nope\.pt"):
        filekind.require(tmp_path / "nope.pt", filekind.CHECKPOINT, "checkpoint")


def test_the_loaders_name_the_other_kind(files):
    from binarynet.graph import bnnfile
    from binarynet.training.checkpoint import load_checkpoint

    with pytest.raises(ValueError, match=r"training checkpoint .*binarynet export"):
        bnnfile.load(files["checkpoint"])
    with pytest.raises(ValueError, match=r"\.bnn model file .*binarynet eval"):
        load_checkpoint(files["bnn"])
