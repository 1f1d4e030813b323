"""binarynet.atomic: all-or-nothing writes with the permissions of an ordinary open()."""

from __future__ import annotations

import os
import stat

import pytest

from binarynet.atomic import atomic_write_bytes


@pytest.fixture
def umask():
    """Set the process umask for one test, restoring it afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(saved)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_file_mode_follows_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    path = tmp_path / "model.bnn"
    atomic_write_bytes(path, lambda f: f.write(b"data"))
    assert stat.S_IMODE(path.stat().st_mode) == mode
    reference = tmp_path / "plain"
    with open(reference, "wb") as f:
        f.write(b"data")
    assert stat.S_IMODE(reference.stat().st_mode) == mode


def test_replaces_content_and_creates_parents(tmp_path):
    path = tmp_path / "a" / "b" / "f.bin"
    atomic_write_bytes(path, lambda f: f.write(b"old"))
    atomic_write_bytes(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.bin"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, lambda f: f.write(b"old"))

    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write_bytes(path, fail)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
