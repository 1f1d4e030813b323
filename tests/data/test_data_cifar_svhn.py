"""Tests of the CIFAR-10 and SVHN loaders of binarynet.data.

Every file is written here: a tiny ``cifar-10-batches-py`` (pickled by this Python, and one
batch assembled opcode by opcode the way Python 2 wrote the official files), a tiny JPEG copy
(a tree, ``index.csv`` and a ``.tar.gz``), tiny SVHN ``.mat`` files. Tests marked ``data`` read
the real JPEG copy in ``../shared/data/cifar10-jpeg`` and skip when it is absent.
"""

from __future__ import annotations

import csv
import io
import pickle
import struct
import tarfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from binarynet import data
from binarynet.data import (
    CIFAR10_BATCHES,
    CIFAR10_JPEG_ARCHIVE,
    CIFAR10_JPEG_MD5,
    ChecksumWarning,
    DatasetSizeWarning,
    array_md5,
    cifar10_jpeg,
    class_balance,
    load_cifar10,
    load_svhn,
)

Image = pytest.importorskip("PIL.Image")
scipy_io = pytest.importorskip("scipy.io")

# The tiny files are subsets: every load warns about it, which is tested once explicitly.
pytestmark = pytest.mark.filterwarnings("ignore::binarynet.data.DatasetSizeWarning")

N_PER_BATCH = 20  # images per pickled batch: 100 training, 20 test


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def write_batches(directory: Path, rng: np.random.Generator, protocol: int = 2) -> dict:
    """A fake ``cifar-10-batches-py`` in ``directory``; returns {split: (NHWC images, labels)}."""
    directory.mkdir(parents=True, exist_ok=True)
    rows, labels = {}, {}
    for name in CIFAR10_BATCHES:
        x = rng.integers(0, 256, size=(N_PER_BATCH, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 10, size=N_PER_BATCH)]
        batch = {b"batch_label": name.encode(), b"labels": y, b"data": x, b"filenames": []}
        (directory / name).write_bytes(pickle.dumps(batch, protocol=protocol))
        rows[name], labels[name] = x, y
    meta = {b"label_names": [n.encode() for n in data.CIFAR10_CLASSES], b"num_vis": 3072}
    (directory / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))

    def nhwc(x: np.ndarray) -> np.ndarray:  # written independently of the loader's reshape
        out = np.empty((len(x), 32, 32, 3), dtype=np.uint8)
        for c in range(3):
            out[..., c] = x[:, 1024 * c : 1024 * (c + 1)].reshape(-1, 32, 32)
        return out

    train = CIFAR10_BATCHES[:5]
    return {
        "train": (
            nhwc(np.concatenate([rows[b] for b in train])),
            np.array([v for b in train for v in labels[b]]),
        ),
        "test": (nhwc(rows["test_batch"]), np.array(labels["test_batch"])),
    }


def py2_batch_bytes(x: np.ndarray, labels: list[int]) -> bytes:
    """A batch pickled as Python 2's cPickle (protocol 2) wrote the official files: byte
    strings (``U``/``T`` opcodes) for keys, the dtype and the raw pixel data."""

    def string(b: bytes) -> bytes:
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<I", len(b)) + b

    def integer(v: int) -> bytes:
        return b"J" + struct.pack("<i", v)

    out = b"\x80\x02}(" + string(b"data")
    out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
    out += integer(0) + b"\x85" + string(b"b") + b"\x87R"  # _reconstruct(ndarray, (0,), 'b')
    out += b"(" + integer(1) + integer(len(x)) + integer(3072) + b"\x86"  # version, shape
    out += b"cnumpy\ndtype\n" + string(b"u1") + integer(0) + integer(1) + b"\x87R"
    out += b"(" + integer(3) + string(b"|") + b"NNN" + integer(-1) + integer(-1) + integer(0)
    out += b"tb"  # dtype.__setstate__
    out += b"\x89" + string(x.tobytes()) + b"tb"  # not Fortran, raw data; ndarray.__setstate__
    out += string(b"labels") + b"](" + b"".join(integer(v) for v in labels) + b"e"
    return out + b"u."


def smooth_image(rng: np.random.Generator, size: tuple[int, int] = (32, 32)) -> np.ndarray:
    """A smooth random RGB image (JPEG-friendly), uint8 [H, W, 3]."""
    h, w = size
    coarse = rng.integers(0, 256, size=(h // 8 + 1, w // 8 + 1, 3)).astype(np.float64)
    fine = np.kron(coarse, np.ones((8, 8, 1)))[:h, :w]
    return np.clip(fine + rng.normal(0, 8, size=fine.shape), 0, 255).astype(np.uint8)


def write_jpeg_copy(
    root: Path, rng: np.random.Generator, n_train: int = 30, n_test: int = 20
) -> dict:
    """A tiny JPEG copy in ``root``: the tree, ``index.csv`` and the archive. Training rows are
    in random class order (as CIFAR-10's), test rows sorted by class. Returns {split: (images
    decoded with Pillow, labels)}."""
    rows, expected = [], {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.permutation(np.arange(n) % 10) if split == "train" else np.arange(n) * 10 // n
        seen = [0] * 10
        images = []
        for i, y in enumerate(labels):
            rel = f"{split}/{data.CIFAR10_CLASSES[y]}/{seen[y]:04d}.jpg"
            seen[y] += 1
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(smooth_image(rng)).save(path, quality=75)
            with Image.open(path) as im:
                images.append(np.asarray(im.convert("RGB")))
            rows.append((split, i, int(y), rel))
        expected[split] = (np.stack(images), labels.astype(np.int64))
    write_index(root / "index.csv", rows)
    make_archive(root)
    return expected


def write_index(
    path: Path, rows: list, header: tuple = ("split", "index", "label", "path")
) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def read_index(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def make_archive(root: Path) -> None:
    """``cifar10_jpeg_q75.tar.gz`` of ``root``'s train/ and test/ folders."""
    with tarfile.open(root / CIFAR10_JPEG_ARCHIVE, "w:gz") as tar:
        for split in ("test", "train"):
            if (root / split).is_dir():
                tar.add(root / split, arcname=split)


def archive_only(root: Path, target: Path) -> Path:
    """Copy ``index.csv`` and the archive (not the tree) of ``root`` into ``target``."""
    target.mkdir()
    for name in ("index.csv", CIFAR10_JPEG_ARCHIVE):
        (target / name).write_bytes((root / name).read_bytes())
    return target


def write_svhn(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """An SVHN-style .mat file: X uint8 [32, 32, 3, N], y uint8 [N, 1] (10 for the digit 0)."""
    y = np.where(labels == 0, 10, labels).astype(np.uint8).reshape(-1, 1)
    scipy_io.savemat(path, {"X": np.ascontiguousarray(images.transpose(1, 2, 3, 0)), "y": y})


def svhn_images(n: int, offset: int) -> np.ndarray:
    """n distinct NHWC images: image i holds the value (offset + i) in its first two pixels
    (little-endian), so that every image can be traced back to its position."""
    images = np.random.default_rng(offset).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    ids = np.arange(offset, offset + n)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = ids % 256, ids // 256
    return images


def image_ids(images: np.ndarray) -> np.ndarray:
    low, high = images[:, 0, 0, 0].astype(np.int64), images[:, 0, 0, 1].astype(np.int64)
    return low + 256 * high


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture
def batches(tmp_path: Path) -> tuple[Path, dict]:
    directory = tmp_path / "cifar-10-batches-py"
    return directory, write_batches(directory, np.random.default_rng(0))


@pytest.fixture(scope="module")
def jpeg_copy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("cifar10-jpeg")
    return root, write_jpeg_copy(root, np.random.default_rng(1))


@pytest.fixture
def jpeg_archive(jpeg_copy: tuple[Path, dict], tmp_path: Path) -> tuple[Path, dict]:
    """A folder with only index.csv and the archive (a copy that tests may damage)."""
    root, expected = jpeg_copy
    return archive_only(root, tmp_path / "archive"), expected


SVHN_TRAIN, SVHN_TEST, SVHN_EXTRA = 300, 50, 200  # 30 / 5 / 20 per class


@pytest.fixture(scope="module")
def svhn_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    directory = tmp_path_factory.mktemp("svhn")
    rng = np.random.default_rng(2)
    arrays = {}
    for split, n, offset in (
        ("train", SVHN_TRAIN, 0),
        ("test", SVHN_TEST, 10_000),
        ("extra", SVHN_EXTRA, 20_000),
    ):
        images, labels = svhn_images(n, offset), rng.permutation(np.arange(n) % 10)
        write_svhn(directory / data.SVHN_FILES[split], images, labels)
        arrays[split] = (images, labels)
    return directory, arrays


# --------------------------------------------------------------------------------------------
# CIFAR-10: the python batches
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_batches_round_trip_exactly(tmp_path: Path, protocol: int) -> None:
    directory = tmp_path / "cifar-10-batches-py"
    expected = write_batches(directory, np.random.default_rng(protocol), protocol)
    splits = load_cifar10(directory, n_valid=30)
    assert splits.name == "cifar10" and splits.n_classes == 10
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (70, 30, 20)
    for split in (splits.train, splits.valid, splits.test):
        assert split.images.dtype == np.uint8 and split.images.shape[1:] == (32, 32, 3)
        assert split.images.flags.c_contiguous and split.labels.dtype == np.int64
    x, y = expected["train"]
    np.testing.assert_array_equal(splits.train.images, x[:70])  # first N − n_valid ...
    np.testing.assert_array_equal(splits.valid.images, x[70:])  # ... last n_valid
    np.testing.assert_array_equal(np.concatenate([splits.train.labels, splits.valid.labels]), y)
    np.testing.assert_array_equal(splits.test.images, expected["test"][0])
    np.testing.assert_array_equal(splits.test.labels, expected["test"][1])


def test_batches_found_from_the_parent_folder(batches: tuple[Path, dict]) -> None:
    directory, expected = batches
    splits = load_cifar10(directory.parent, n_valid=10)
    np.testing.assert_array_equal(splits.test.images, expected["test"][0])


def test_python2_pickles_load(tmp_path: Path) -> None:
    """The official files were written by Python 2: byte strings everywhere."""
    rng = np.random.default_rng(3)
    write_batches(tmp_path, rng)
    x = rng.integers(0, 256, size=(7, 3072), dtype=np.uint8)
    (tmp_path / "test_batch").write_bytes(py2_batch_bytes(x, [0, 1, 2, 3, 4, 5, 9]))
    splits = load_cifar10(tmp_path, n_valid=10)
    np.testing.assert_array_equal(splits.test.labels, [0, 1, 2, 3, 4, 5, 9])
    np.testing.assert_array_equal(
        splits.test.images[3, 5, 7], x[3, [5 * 32 + 7 + 1024 * c for c in range(3)]]
    )


def test_pixel_layout_is_channel_major_rows(tmp_path: Path) -> None:
    """Row layout: value at (channel c, row r, column k) is data[1024 c + 32 r + k]."""
    write_batches(tmp_path, np.random.default_rng(4))
    x = np.zeros((1, 3072), dtype=np.uint8)
    x[0, 1024 * 2 + 32 * 3 + 5] = 200  # blue, row 3, column 5
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": x, b"labels": [7]}, protocol=2))
    image = load_cifar10(tmp_path, n_valid=10).test.images[0]
    assert image[3, 5, 2] == 200 and int(image.sum()) == 200


def test_default_split_and_size_warning(batches: tuple[Path, dict]) -> None:
    directory, _ = batches
    with (
        pytest.warns(DatasetSizeWarning, match="official CIFAR-10 train set has 50000"),
        pytest.raises(ValueError, match="n_valid=5000 out of range"),
    ):
        load_cifar10(directory)  # 100 training images < the default n_valid


def test_missing_batch_lists_the_files(batches: tuple[Path, dict]) -> None:
    directory, _ = batches
    (directory / "data_batch_3").unlink()
    (directory / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3, test_batch"):
        load_cifar10(directory)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"directory not found.*cifar-10-batches-py"):
        load_cifar10(tmp_path / "nowhere")


def test_folder_without_either_layout(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(FileNotFoundError, match=r"no CIFAR-10 data in .*index\.csv"):
        load_cifar10(tmp_path)


def _damage(directory: Path, name: str, payload: bytes) -> Path:
    path = directory / name
    path.write_bytes(payload)
    return path


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not a pickle at all", "not a readable CIFAR-10 batch"),
        (pickle.dumps([1, 2, 3]), "expected a pickled dict"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), r"no b'labels' entry"),
        (
            pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}),
            r"b'data' must be a uint8 array \[N, 3072\].*float32",
        ),
        (
            pickle.dumps({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}),
            r"b'data' must be a uint8 array \[N, 3072\]",
        ),
        (
            pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}),
            "label out of range at index 1: 10",
        ),
        (
            pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 2]}),
            "holds 2 images but b'labels' has 3 labels",
        ),
        (pickle.dumps(OrderedDict(data=1)), "refers to collections.OrderedDict"),
    ],
    ids=["garbage", "list", "no-labels", "float", "width", "label", "count", "foreign-class"],
)
def test_malformed_batch(batches: tuple[Path, dict], payload: bytes, message: str) -> None:
    directory, _ = batches
    path = _damage(directory, "data_batch_2", payload)
    with pytest.raises(ValueError, match=message) as info:
        load_cifar10(directory, n_valid=10)
    assert str(path) in str(info.value)


def test_truncated_batch(batches: tuple[Path, dict]) -> None:
    directory, _ = batches
    path = directory / "test_batch"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ValueError, match=f"{path}: not a readable CIFAR-10 batch"):
        load_cifar10(directory, n_valid=10)


def test_pickle_cannot_run_code(batches: tuple[Path, dict]) -> None:
    """A pickle that would call a function on load is refused before anything runs."""
    directory, _ = batches
    marker = directory / "ran"
    evil = b"cbuiltins\nopen\n(" + pickle.dumps(str(marker), protocol=0)[:-1] + b"Vw\ntR."
    _damage(directory, "data_batch_1", evil)
    with pytest.raises(ValueError, match=r"refers to builtins\.open"):
        load_cifar10(directory, n_valid=10)
    assert not marker.exists()


# --------------------------------------------------------------------------------------------
# CIFAR-10: the JPEG copy
# --------------------------------------------------------------------------------------------


def test_jpeg_archive_in_index_order(jpeg_archive: tuple[Path, dict]) -> None:
    root, expected = jpeg_archive
    splits = load_cifar10(root, n_valid=10)
    assert splits.name == "cifar10-jpeg"
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (20, 10, 20)
    x, y = expected["train"]
    np.testing.assert_array_equal(splits.train.images, x[:20])
    np.testing.assert_array_equal(splits.valid.images, x[20:])
    np.testing.assert_array_equal(np.concatenate([splits.train.labels, splits.valid.labels]), y)
    np.testing.assert_array_equal(splits.test.images, expected["test"][0])
    np.testing.assert_array_equal(splits.test.labels, expected["test"][1])
    assert splits.train.images.dtype == np.uint8 and splits.train.images.shape[1:] == (32, 32, 3)


def test_jpeg_extracted_tree_gives_the_same_arrays(
    jpeg_copy: tuple[Path, dict], tmp_path: Path
) -> None:
    root, expected = jpeg_copy
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "index.csv").write_bytes((root / "index.csv").read_bytes())
    for split in ("train", "test"):
        for path in (root / split).rglob("*.jpg"):
            target = tree / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    splits = load_cifar10(tree, n_valid=10)
    np.testing.assert_array_equal(splits.test.images, expected["test"][0])
    np.testing.assert_array_equal(splits.valid.images, expected["train"][0][20:])


def test_jpeg_index_without_images(tmp_path: Path, jpeg_copy: tuple[Path, dict]) -> None:
    root, _ = jpeg_copy
    (tmp_path / "index.csv").write_bytes((root / "index.csv").read_bytes())
    with pytest.raises(
        FileNotFoundError, match=f"found index.csv but neither {CIFAR10_JPEG_ARCHIVE}"
    ):
        load_cifar10(tmp_path)


def test_jpeg_tree_missing_file(tmp_path: Path) -> None:
    root = tmp_path / "copy"
    write_jpeg_copy(root, np.random.default_rng(5), n_train=10, n_test=10)
    (root / CIFAR10_JPEG_ARCHIVE).unlink()
    victim = next((root / "test").rglob("*.jpg"))
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=f"not found: {victim}"):
        load_cifar10(root, n_valid=2)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: [["split", "idx", "label", "path"], *rows[1:]], "header"),
        (lambda rows: [*rows[:3], [*rows[3], "extra"], *rows[4:]], "line 4: expected 4 fields"),
        (lambda rows: [*rows[:2], ["valid", *rows[2][1:]], *rows[3:]], "line 3: split 'valid'"),
        (lambda rows: [*rows[:2], [rows[2][0], "two", *rows[2][2:]], *rows[3:]], "line 3: index"),
        (lambda rows: [*rows[:2], [*rows[2][:2], "10", rows[2][3]], *rows[3:]], "line 3: label 10"),
        (lambda rows: [*rows[:3], rows[2], *rows[3:]], "line 4: duplicate train index 1"),
        (lambda rows: [rows[0], *rows[2:]], "'train' indices are not 0..28: index 0 is missing"),
        (lambda rows: [r for r in rows if r[0] != "test"], "no 'test' rows"),
        (lambda rows: [*rows[:2], [*rows[2][:3], "../../etc/x.jpg"], *rows[3:]], "line 3: path"),
        (lambda rows: [*rows[:2], [*rows[2][:3], "/tmp/x.jpg"], *rows[3:]], "line 3: path"),
    ],
    ids=["header", "fields", "split", "index", "label", "dup", "gap", "no-test", "dotdot", "abs"],
)
def test_malformed_index(jpeg_archive: tuple[Path, dict], edit, message: str) -> None:
    root, _ = jpeg_archive
    index = root / "index.csv"
    write_index(index, edit(read_index(index))[1:], header=tuple(edit(read_index(index))[0]))
    with pytest.raises(ValueError, match=message) as info:
        load_cifar10(root, n_valid=2)
    assert str(index) in str(info.value)


def test_index_not_text(jpeg_archive: tuple[Path, dict]) -> None:
    root, _ = jpeg_archive
    (root / "index.csv").write_bytes(b"split,index,label,path\n\xff\xfe\x00garbage\n")
    with pytest.raises(ValueError, match=r"index\.csv: not a UTF-8 text file"):
        load_cifar10(root, n_valid=2)


def _rebuild_archive(root: Path, member: str, payload: bytes | None) -> None:
    """Rewrite the archive of ``root`` with ``member`` replaced (or removed when None)."""
    archive = root / CIFAR10_JPEG_ARCHIVE
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar if m.isfile()]
    with tarfile.open(archive, "w:gz") as tar:
        for info, content in members:
            if info.name == member:
                if payload is None:
                    continue
                content = payload
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def _jpeg_bytes(image: np.ndarray, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (None, "lacks 1 of the images listed in index.csv"),
        (b"\xff\xd8\xff\xe0 not really a jpeg", "cannot decode the JPEG"),
        (_jpeg_bytes(np.zeros((32, 32, 3), np.uint8))[:200], "cannot decode the JPEG"),
        (_jpeg_bytes(np.zeros((32, 32, 3), np.uint8), "PNG"), "not a JPEG"),
        (_jpeg_bytes(np.zeros((31, 32, 3), np.uint8)), "image is 32×31 pixels, expected 32×32"),
        (b"\xff" * (cifar10_jpeg._MAX_JPEG_BYTES + 1), "too large for a 32×32 JPEG"),
    ],
    ids=["missing", "garbage", "truncated", "png", "size", "huge"],
)
def test_malformed_archive_member(jpeg_archive: tuple[Path, dict], payload, message: str) -> None:
    root, _ = jpeg_archive
    member = read_index(root / "index.csv")[5][3]
    _rebuild_archive(root, member, payload)
    with pytest.raises(ValueError, match=message) as info:
        load_cifar10(root, n_valid=2)
    assert str(root / CIFAR10_JPEG_ARCHIVE) in str(info.value)
    if payload is not None:
        assert member in str(info.value)


def test_corrupt_archive(jpeg_archive: tuple[Path, dict]) -> None:
    root, _ = jpeg_archive
    archive = root / CIFAR10_JPEG_ARCHIVE
    archive.write_bytes(archive.read_bytes()[:-300])
    with pytest.raises(ValueError, match=f"{archive}: cannot read the archive"):
        load_cifar10(root, n_valid=2)


def test_jpeg_cache_is_written_and_reused(
    jpeg_archive: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, expected = jpeg_archive
    cache = tmp_path / "cache"
    first = load_cifar10(root, n_valid=10, cache_dir=cache)
    assert sorted(p.name for p in cache.iterdir()) == [
        "cifar10-jpeg-test.npy",
        "cifar10-jpeg-train.npy",
        "cifar10-jpeg.json",
    ]

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(cifar10_jpeg, "_decode_images", no_decoding)
    second = load_cifar10(root, n_valid=10, cache_dir=cache)
    np.testing.assert_array_equal(second.train.images, first.train.images)
    np.testing.assert_array_equal(second.test.images, expected["test"][0])
    np.testing.assert_array_equal(second.test.labels, expected["test"][1])


def test_damaged_cache_is_rebuilt(jpeg_archive: tuple[Path, dict], tmp_path: Path) -> None:
    root, expected = jpeg_archive
    cache = tmp_path / "cache"
    load_cifar10(root, n_valid=10, cache_dir=cache)
    cached = cache / "cifar10-jpeg-test.npy"
    array = np.load(cached)
    array[0, 0, 0, 0] ^= 1
    np.save(cached, array)
    with pytest.warns(ChecksumWarning, match="cifar10-jpeg-test.npy: cached images are MD5"):
        splits = load_cifar10(root, n_valid=10, cache_dir=cache)
    np.testing.assert_array_equal(splits.test.images, expected["test"][0])
    np.testing.assert_array_equal(np.load(cached), expected["test"][0])  # rewritten

    np.save(cached, array[:3])
    with pytest.warns(ChecksumWarning, match=r"uint8 \[3, 32, 32, 3\], expected uint8 \[20,"):
        load_cifar10(root, n_valid=10, cache_dir=cache)


def test_cache_follows_its_source(jpeg_archive: tuple[Path, dict], tmp_path: Path) -> None:
    """A cache made from other files is ignored (and replaced), without a warning."""
    root, expected = jpeg_archive
    cache = tmp_path / "cache"
    load_cifar10(root, n_valid=10, cache_dir=cache)
    rows = read_index(root / "index.csv")
    test_rows = [r for r in rows[1:] if r[0] == "test"]
    train_rows = [r for r in rows[1:] if r[0] == "train"]
    swapped = [
        *train_rows,
        ["test", "0", test_rows[1][2], test_rows[1][3]],
        ["test", "1", test_rows[0][2], test_rows[0][3]],
        *test_rows[2:],
    ]
    write_index(root / "index.csv", swapped)
    splits = load_cifar10(root, n_valid=10, cache_dir=cache)
    np.testing.assert_array_equal(splits.test.images[0], expected["test"][0][1])
    np.testing.assert_array_equal(splits.test.images[1], expected["test"][0][0])


def test_unwritable_cache_only_warns(jpeg_archive: tuple[Path, dict], tmp_path: Path) -> None:
    root, expected = jpeg_archive
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.warns(UserWarning, match="cannot write the CIFAR-10 cache"):
        splits = load_cifar10(root, n_valid=10, cache_dir=blocker / "cache")
    np.testing.assert_array_equal(splits.test.images, expected["test"][0])


# --------------------------------------------------------------------------------------------
# CIFAR-10: the real JPEG copy
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_cifar(cifar10_jpeg_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.mktemp("cifar-cache")
    return load_cifar10(cifar10_jpeg_dir, cache_dir=cache), cache


@pytest.mark.data
def test_real_jpeg_copy(real_cifar, cifar10_jpeg_dir: Path) -> None:
    splits, _ = real_cifar
    assert splits.name == "cifar10-jpeg"
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (45_000, 5_000, 10_000)
    x_train = np.concatenate([splits.train.images, splits.valid.images])
    assert x_train.shape == (50_000, 32, 32, 3) and x_train.dtype == np.uint8
    assert array_md5(x_train) == CIFAR10_JPEG_MD5["train"] == "7c618da940c26da995ad1feaa1bac54c"
    assert array_md5(splits.test.images) == CIFAR10_JPEG_MD5["test"]
    assert CIFAR10_JPEG_MD5["test"] == "a085fc7e64a3745bfb901013e5654098"
    # Labels and class balance, computed from the CSV itself.
    rows = read_index(cifar10_jpeg_dir / "index.csv")[1:]
    train_labels = [
        int(r[2]) for r in sorted((r for r in rows if r[0] == "train"), key=lambda r: int(r[1]))
    ]
    test_labels = [
        int(r[2]) for r in sorted((r for r in rows if r[0] == "test"), key=lambda r: int(r[1]))
    ]
    np.testing.assert_array_equal(splits.train.labels, train_labels[:45_000])
    np.testing.assert_array_equal(splits.valid.labels, train_labels[45_000:])
    np.testing.assert_array_equal(splits.test.labels, test_labels)
    np.testing.assert_array_equal(
        class_balance(splits.valid.labels, 10), np.bincount(train_labels[45_000:], minlength=10)
    )
    assert class_balance(splits.train.labels, 10).sum() == 45_000
    np.testing.assert_array_equal(class_balance(splits.test.labels, 10), [1_000] * 10)
    np.testing.assert_array_equal(
        class_balance(np.concatenate([splits.train.labels, splits.valid.labels]), 10), [5_000] * 10
    )


@pytest.mark.data
def test_real_jpeg_copy_from_cache(real_cifar, cifar10_jpeg_dir: Path, monkeypatch) -> None:
    splits, cache = real_cifar
    monkeypatch.setattr(cifar10_jpeg, "_decode_images", None)  # would fail if called
    again = load_cifar10(cifar10_jpeg_dir, cache_dir=cache)
    assert array_md5(again.test.images) == CIFAR10_JPEG_MD5["test"]
    np.testing.assert_array_equal(again.valid.images, splits.valid.images)


# --------------------------------------------------------------------------------------------
# SVHN
# --------------------------------------------------------------------------------------------


def test_svhn_splits_and_layout(svhn_dir: tuple[Path, dict]) -> None:
    directory, arrays = svhn_dir
    splits = load_svhn(directory, valid_per_class=3)
    assert splits.name == "svhn" and splits.n_classes == 10
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (270, 30, 50)
    for split in (splits.train, splits.valid, splits.test):
        assert split.images.dtype == np.uint8 and split.images.shape[1:] == (32, 32, 3)
        assert split.images.flags.c_contiguous and split.labels.dtype == np.int64
    # Every image keeps its label and pixels; train and valid partition the training file.
    images, labels = arrays["train"]
    for split in (splits.train, splits.valid):
        ids = image_ids(split.images)
        np.testing.assert_array_equal(split.images, images[ids])
        np.testing.assert_array_equal(split.labels, labels[ids])
        assert np.all(np.diff(ids) > 0)  # file order kept
    all_ids = np.concatenate([image_ids(splits.train.images), image_ids(splits.valid.images)])
    np.testing.assert_array_equal(np.sort(all_ids), np.arange(SVHN_TRAIN))
    np.testing.assert_array_equal(class_balance(splits.valid.labels, 10), [3] * 10)
    np.testing.assert_array_equal(splits.test.images, arrays["test"][0])
    np.testing.assert_array_equal(splits.test.labels, arrays["test"][1])


def test_svhn_label_10_is_digit_0(tmp_path: Path) -> None:
    images = svhn_images(20, 0)
    y = np.array([10, 1, 2, 3, 4, 5, 6, 7, 8, 9] * 2, dtype=np.uint8).reshape(-1, 1)
    for name in ("train_32x32.mat", "test_32x32.mat"):
        scipy_io.savemat(tmp_path / name, {"X": images.transpose(1, 2, 3, 0), "y": y})
    splits = load_svhn(tmp_path, valid_per_class=0)
    np.testing.assert_array_equal(splits.test.labels, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] * 2)
    assert len(splits.valid) == 0 and len(splits.train) == 20


def test_svhn_float_labels_as_matlab_writes_them(tmp_path: Path) -> None:
    images, y = svhn_images(10, 0), np.arange(1, 11, dtype=np.float64).reshape(-1, 1)
    for name in ("train_32x32.mat", "test_32x32.mat"):
        scipy_io.savemat(tmp_path / name, {"X": images.transpose(1, 2, 3, 0), "y": y})
    np.testing.assert_array_equal(
        load_svhn(tmp_path, valid_per_class=0).test.labels, [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]
    )


def test_svhn_with_extra(svhn_dir: tuple[Path, dict]) -> None:
    directory, arrays = svhn_dir
    splits = load_svhn(directory, extra=True, valid_per_class=4, extra_valid_per_class=2)
    assert splits.name == "svhn+extra"
    assert len(splits.valid) == 60 and len(splits.train) == SVHN_TRAIN + SVHN_EXTRA - 60
    valid_ids = image_ids(splits.valid.images)
    from_train, from_extra = valid_ids[valid_ids < 20_000], valid_ids[valid_ids >= 20_000]
    assert len(from_train) == 40 and len(from_extra) == 20
    assert np.all(np.diff(valid_ids) > 0)  # train images first, each in file order
    np.testing.assert_array_equal(class_balance(arrays["train"][1][from_train], 10), [4] * 10)
    np.testing.assert_array_equal(
        class_balance(arrays["extra"][1][from_extra - 20_000], 10), [2] * 10
    )
    train_ids = image_ids(splits.train.images)
    everything = np.sort(np.concatenate([train_ids, valid_ids]))
    np.testing.assert_array_equal(everything, np.r_[0:SVHN_TRAIN, 20_000 : 20_000 + SVHN_EXTRA])
    extra_images, extra_labels = arrays["extra"]
    in_extra = train_ids >= 20_000
    np.testing.assert_array_equal(
        splits.train.images[in_extra], extra_images[train_ids[in_extra] - 20_000]
    )
    np.testing.assert_array_equal(
        splits.train.labels[in_extra], extra_labels[train_ids[in_extra] - 20_000]
    )


def test_svhn_split_is_seeded(svhn_dir: tuple[Path, dict]) -> None:
    directory, _ = svhn_dir
    a = image_ids(load_svhn(directory, valid_per_class=3, seed=7).valid.images)
    b = image_ids(load_svhn(directory, valid_per_class=3, seed=7).valid.images)
    c = image_ids(load_svhn(directory, valid_per_class=3, seed=8).valid.images)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_svhn_size_warning(svhn_dir: tuple[Path, dict]) -> None:
    directory, _ = svhn_dir
    with pytest.warns(DatasetSizeWarning, match="official SVHN train set has 73257"):
        load_svhn(directory, valid_per_class=1)


def test_svhn_missing_files(svhn_dir: tuple[Path, dict], tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"directory not found.*train_32x32\.mat"):
        load_svhn(tmp_path / "nowhere")
    (tmp_path / "train_32x32.mat").write_bytes((svhn_dir[0] / "train_32x32.mat").read_bytes())
    with pytest.raises(FileNotFoundError, match=r"missing .*: test_32x32\.mat\. Expected"):
        load_svhn(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"test_32x32\.mat, extra_32x32\.mat\. Expected"):
        load_svhn(tmp_path, extra=True)


def _write_mat(path: Path, **variables) -> None:
    scipy_io.savemat(path, variables)


GOOD_X = svhn_images(20, 0).transpose(1, 2, 3, 0)
GOOD_Y = (np.arange(20) % 10 + 1).reshape(-1, 1).astype(np.uint8)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"X": GOOD_X}, r"expected variables X .* and y .*found \['X'\]"),
        (
            {"X": GOOD_X.astype(np.float64), "y": GOOD_Y},
            r"X must be uint8 \[32, 32, 3, N\].*float64",
        ),
        ({"X": GOOD_X[:, :, :2], "y": GOOD_Y}, r"X must be uint8 .*\[32, 32, 2, 20\]"),
        ({"X": GOOD_X, "y": GOOD_Y[:19]}, "y must hold 20 numeric labels"),
        ({"X": GOOD_X, "y": np.where(GOOD_Y == 3, 0, GOOD_Y)}, "label out of range at index 2: 0"),
        (
            {"X": GOOD_X, "y": np.where(GOOD_Y == 3, 11, GOOD_Y)},
            "label out of range at index 2: 11",
        ),
        ({"X": GOOD_X, "y": GOOD_Y + 0.5}, "label out of range at index 0: 1.5"),
    ],
    ids=["no-y", "float-X", "channels", "count", "zero", "eleven", "fraction"],
)
def test_svhn_malformed(tmp_path: Path, variables: dict, message: str) -> None:
    _write_mat(tmp_path / "test_32x32.mat", X=GOOD_X, y=GOOD_Y)
    _write_mat(tmp_path / "train_32x32.mat", **variables)
    with pytest.raises(ValueError, match=message) as info:
        load_svhn(tmp_path, valid_per_class=0)
    assert "train_32x32.mat" in str(info.value)


def test_svhn_not_a_mat_file(tmp_path: Path) -> None:
    _write_mat(tmp_path / "test_32x32.mat", X=GOOD_X, y=GOOD_Y)
    (tmp_path / "train_32x32.mat").write_bytes(b"this is not MATLAB" * 20)
    with pytest.raises(ValueError, match=r"train_32x32.mat: not a readable MATLAB v5 file"):
        load_svhn(tmp_path)


def test_svhn_class_too_small_for_validation(tmp_path: Path) -> None:
    for name in ("train_32x32.mat", "test_32x32.mat"):
        _write_mat(tmp_path / name, X=GOOD_X, y=GOOD_Y)  # 2 images per class
    with pytest.raises(ValueError, match=r"train_32x32.mat: cannot hold out 2 validation images"):
        load_svhn(tmp_path, valid_per_class=2)
    with pytest.raises(ValueError, match="valid_per_class must be a non-negative int"):
        load_svhn(tmp_path, valid_per_class=-1)
