"""binarynet.atomic: all-or-nothing writes with the permissions of an ordinary open()."""

from __future__ import annotations

import errno
import os
import stat
import tempfile

import pytest

from binarynet.atomic import atomic_write_bytes, check_target


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


def test_a_path_through_a_file_is_refused_naming_the_file(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    with pytest.raises(NotADirectoryError) as exc:
        atomic_write_bytes(afile / "sub" / "x.bnn", lambda f: f.write(b"new"))
    assert str(exc.value) == f"{afile / 'sub' / 'x.bnn'}: {afile} is a file, not a directory"
    assert afile.read_text() == "keep me" and sorted(tmp_path.iterdir()) == [afile]


def test_check_target_for_a_directory(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(NotADirectoryError, match=r"afile is a file, not a directory$"):
        check_target(afile, directory=True)
    assert check_target(tmp_path / "new" / "dir", directory=True) == tmp_path / "new" / "dir"
    with pytest.raises(IsADirectoryError):
        check_target(tmp_path)


def test_an_error_creating_the_temporary_names_the_target(tmp_path, monkeypatch):
    """A read-only folder: mkstemp's error names the hidden temporary; the caller's path is
    what the user asked for."""
    target = tmp_path / "x.bnn"

    def read_only(prefix: str, suffix: str, dir: str) -> tuple[int, str]:
        name = os.path.join(dir, f"{prefix}485uk4qr{suffix}")
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), name)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(OSError) as exc:
        atomic_write_bytes(target, lambda f: f.write(b"data"))
    assert exc.value.errno == errno.EROFS and exc.value.filename == str(target)
    assert str(exc.value) == f"[Errno {errno.EROFS}] {os.strerror(errno.EROFS)}: '{target}'"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway")
def test_a_read_only_folder_names_the_target(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(PermissionError) as exc:
            atomic_write_bytes(ro / "x.bnn", lambda f: f.write(b"data"))
        assert exc.value.filename == str(ro / "x.bnn")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_full_disk_names_the_target_and_keeps_the_old_file(tmp_path, monkeypatch, step):
    target = tmp_path / "x.bnn"
    atomic_write_bytes(target, lambda f: f.write(b"old"))
    if step == "fsync":

        def full(fd: int) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "fsync", full)
    else:

        def full(src: str, dst: object) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), src, str(dst))

        monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError) as exc:
        atomic_write_bytes(target, lambda f: f.write(b"new"))
    assert exc.value.errno == errno.ENOSPC
    assert exc.value.filename == str(target) and exc.value.filename2 is None
    monkeypatch.undo()
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]


def test_the_writers_own_error_about_another_file_passes_through(tmp_path):
    def read_missing(f: object) -> None:
        (tmp_path / "missing.txt").read_bytes()

    with pytest.raises(FileNotFoundError) as exc:
        atomic_write_bytes(tmp_path / "x.bnn", read_missing)
    assert exc.value.filename == str(tmp_path / "missing.txt")
    assert list(tmp_path.iterdir()) == []
