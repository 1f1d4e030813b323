"""Tests of binarynet.data: IDX files, MNIST loading and splitting, the bundled sample, downloads.

IDX files are written here by hand (``idx_bytes``), independently of ``write_idx``. Tests marked
``data`` use the real MNIST files in ``../shared/data/mnist`` and skip when they are absent.
Downloads go to a local HTTP server on 127.0.0.1, never to the network.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import re
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import binarynet
from binarynet import data
from binarynet.data import (
    MNIST_FILES,
    DatasetSizeWarning,
    Split,
    array_md5,
    class_balance,
    load_mnist,
    mnist_sample,
    read_idx,
    split_last,
    write_idx,
)

SAMPLE_DIR = Path(binarynet.__file__).parent / "_sample" / "mnist"
TRAIN_X, TRAIN_Y, TEST_X, TEST_Y = MNIST_FILES  # the four file names, in this order


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file's bytes, assembled by hand: magic, big-endian uint32 dims, big-endian data."""
    big_endian = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(big_endian[code]).tobytes()


def put(path: Path, content: bytes, gz: bool | None = None) -> Path:
    """Write ``content`` to ``path``, gzipped when ``gz`` (default: when the name ends in .gz)."""
    gz = path.suffix == ".gz" if gz is None else gz
    path.write_bytes(gzip.compress(content) if gz else content)
    return path


def synthetic_mnist(n_train: int = 60, n_test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """Random MNIST-shaped arrays keyed by the official file names (labels cycle 0..9)."""
    rng = np.random.default_rng(seed)
    return {
        TRAIN_X: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        TRAIN_Y: rng.permutation(np.arange(n_train) % 10).astype(np.uint8),
        TEST_X: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        TEST_Y: (np.arange(n_test) % 10).astype(np.uint8),
    }


def write_mnist_dir(directory: Path, arrays: dict[str, np.ndarray], raw: tuple = ()) -> Path:
    """Write ``arrays`` as IDX files in ``directory``; names in ``raw`` lose .gz and compression."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        path = directory / (name.removesuffix(".gz") if name in raw else name)
        put(path, idx_bytes(array))
    return directory


def load_quietly(directory: Path, **kwargs) -> data.Splits:
    """``load_mnist`` on a (small, unofficial) directory, expecting the size warning."""
    with pytest.warns(DatasetSizeWarning):
        return load_mnist(directory, **kwargs)


def parse_idx_independently(path: Path) -> np.ndarray:
    """Read a gzipped uint8 IDX file without binarynet: a second opinion for the loader."""
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def md5_of_file(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def mnist_tmp(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A small synthetic MNIST directory: train-images raw, the other three gzipped."""
    arrays = synthetic_mnist()
    return write_mnist_dir(tmp_path / "mnist", arrays, raw=(TRAIN_X,)), arrays


# --------------------------------------------------------------------------------------------
# IDX
# --------------------------------------------------------------------------------------------


def test_module_imports_neither_torch_nor_pooch() -> None:
    code = "import sys, binarynet.data; print(sorted({'torch', 'pooch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([7, 0, 255], dtype=np.uint8),
        np.array([[-5, 70000], [3, -1]], dtype=np.int32),
        np.array([1.5, -2.25], dtype=np.float64),
        np.zeros((0, 28, 28), dtype=np.uint8),
    ],
    ids=["u8-3d", "u8-1d", "i32", "f64", "empty"],
)
def test_idx_round_trip(tmp_path: Path, array: np.ndarray, suffix: str) -> None:
    path = tmp_path / f"a.idx{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype.newbyteorder("=")
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_write_idx_matches_hand_assembled_bytes(tmp_path: Path) -> None:
    array = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    write_idx(tmp_path / "raw", array)
    write_idx(tmp_path / "a.gz", array)
    expected = b"\x00\x00\x08\x03" + b"\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03"
    assert (tmp_path / "raw").read_bytes() == expected + bytes(range(6))
    assert gzip.decompress((tmp_path / "a.gz").read_bytes()) == expected + bytes(range(6))


def test_write_idx_is_deterministic(tmp_path: Path) -> None:
    array = np.arange(100, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def test_write_idx_rejects_unsupported_dtype(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="IDX cannot store dtype uint16"):
        write_idx(tmp_path / "a", np.zeros(3, dtype=np.uint16))


def test_read_idx_reads_hand_written_big_endian_types(tmp_path: Path) -> None:
    array = np.array([[1, -2], [300, -40000]], dtype=np.int32)
    back = read_idx(put(tmp_path / "a", idx_bytes(array, code=0x0C)))
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize(("name", "gz"), [("looks-raw", True), ("looks-gzipped.gz", False)])
def test_read_idx_detects_gzip_by_magic_not_name(tmp_path: Path, name: str, gz: bool) -> None:
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(read_idx(put(tmp_path / name, idx_bytes(array), gz=gz)), array)


def test_read_idx_returns_writable_arrays(tmp_path: Path) -> None:
    array = read_idx(put(tmp_path / "a.gz", idx_bytes(np.zeros((2, 2), dtype=np.uint8))))
    assert array.flags.writeable


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_read_idx_truncated_payload(tmp_path: Path, gz: bool) -> None:
    content = idx_bytes(np.zeros((4, 28, 28), dtype=np.uint8))[:-10]
    path = put(tmp_path / "short-idx3-ubyte", content, gz=gz)
    with pytest.raises(ValueError, match=r"short-idx3-ubyte.*truncated.*3136 bytes.*holds 3126"):
        read_idx(path)


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_read_idx_extra_bytes(tmp_path: Path, gz: bool) -> None:
    content = idx_bytes(np.zeros(5, dtype=np.uint8)) + b"\x01\x02"
    path = put(tmp_path / "long-idx1-ubyte", content, gz=gz)
    with pytest.raises(ValueError, match=r"long-idx1-ubyte.*extra bytes.*5 bytes.*holds 7"):
        read_idx(path)


@pytest.mark.parametrize(
    ("magic", "shown"),
    [
        (b"\x00\x00\x07\x01", "0x00000701"),  # unknown type code
        (b"\x01\x00\x08\x01", "0x01000801"),  # first bytes must be zero
        (b"\x00\x00\x08\x00", "0x00000800"),  # no dimensions
        (b"\x50\x4b\x03\x04", "0x504b0304"),  # a zip file, say
    ],
)
def test_read_idx_wrong_magic(tmp_path: Path, magic: bytes, shown: str) -> None:
    path = put(tmp_path / "bad-magic", magic + b"\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match=rf"bad-magic: not an IDX file: magic number {shown}"):
        read_idx(path)


def test_read_idx_truncated_header(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"tiny.*too short for an IDX header \(3 bytes\)"):
        read_idx(put(tmp_path / "tiny", b"\x00\x00\x08"))
    with pytest.raises(ValueError, match=r"dims.*header truncated.*3 dims \(12 bytes\).*has 4"):
        read_idx(put(tmp_path / "dims", b"\x00\x00\x08\x03\x00\x00\x00\x01"))


def test_read_idx_huge_header_fails_without_allocating(tmp_path: Path) -> None:
    # Declares 255 × (2**32 − 1) ** 2 bytes: reading must fail on the payload length, not on
    # memory (a MemoryError would mean the reader trusted the header).
    content = b"\x00\x00\x08\x03" + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 255) + b"\x00" * 9
    with pytest.raises(ValueError, match=r"lie.*truncated.*holds 9 bytes"):
        read_idx(put(tmp_path / "lie.gz", content))


def test_read_idx_corrupt_gzip(tmp_path: Path) -> None:
    content = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32), code=0x0C))
    path = tmp_path / "corrupt.gz"
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(ValueError, match=r"corrupt.gz: corrupt gzip data"):
        read_idx(path)


def test_read_idx_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        read_idx(tmp_path / "nothing-here")


# --------------------------------------------------------------------------------------------
# Helpers for all datasets
# --------------------------------------------------------------------------------------------


def test_class_balance() -> None:
    labels = np.array([0, 2, 2, 9, 2], dtype=np.int64)
    counts = class_balance(labels, n_classes=10)
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, [1, 0, 3, 0, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(class_balance(labels[:3]), [1, 0, 2])
    with pytest.raises(ValueError, match="non-negative integer labels"):
        class_balance(np.array([0, -1]))


def test_array_md5_hashes_c_order_bytes() -> None:
    a = np.arange(24, dtype=np.uint8).reshape(4, 6)
    assert array_md5(a) == hashlib.md5(bytes(range(24))).hexdigest()
    view = a[:, ::2]  # not contiguous: hashed as its C-order copy
    assert array_md5(view) == hashlib.md5(np.ascontiguousarray(view).tobytes()).hexdigest()
    assert array_md5(a.T) != array_md5(a)


def test_split_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match=r"images of shape \(3, 28, 28\) and labels of shape"):
        Split(np.zeros((3, 28, 28), np.uint8), np.zeros(2, np.int64))


def test_split_last_takes_first_and_last_parts() -> None:
    images, labels = np.arange(10).reshape(10, 1), np.arange(10, 20)
    train, valid = split_last(images, labels, 3)
    np.testing.assert_array_equal(train.labels, np.arange(10, 17))
    np.testing.assert_array_equal(valid.images[:, 0], [7, 8, 9])
    train, valid = split_last(images, labels, 0)
    assert (len(train), len(valid)) == (10, 0)


@pytest.mark.parametrize("n_valid", [-1, 60, 61, 2.0, True])
def test_n_valid_out_of_range(mnist_tmp: tuple[Path, dict], n_valid: object) -> None:
    directory, _ = mnist_tmp
    with pytest.raises(ValueError, match=re.escape(f"n_valid={n_valid}") + "|must be an int"):
        load_quietly(directory, n_valid=n_valid)


# --------------------------------------------------------------------------------------------
# load_mnist on synthetic files
# --------------------------------------------------------------------------------------------


def test_load_mnist_splits_first_and_last(mnist_tmp: tuple[Path, dict]) -> None:
    directory, arrays = mnist_tmp
    splits = load_quietly(directory, n_valid=15)
    assert splits.name == "mnist"
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (45, 15, 20)
    np.testing.assert_array_equal(splits.train.images, arrays[TRAIN_X][:45])
    np.testing.assert_array_equal(splits.train.labels, arrays[TRAIN_Y][:45])
    np.testing.assert_array_equal(splits.valid.images, arrays[TRAIN_X][45:])
    np.testing.assert_array_equal(splits.valid.labels, arrays[TRAIN_Y][45:])
    np.testing.assert_array_equal(splits.test.images, arrays[TEST_X])
    np.testing.assert_array_equal(splits.test.labels, arrays[TEST_Y])
    for split in (splits.train, splits.valid, splits.test):
        assert split.images.dtype == np.uint8
        assert split.labels.dtype == np.int64


def test_load_mnist_warns_on_unofficial_counts(mnist_tmp: tuple[Path, dict]) -> None:
    directory, _ = mnist_tmp
    with pytest.warns(DatasetSizeWarning) as record:
        load_mnist(directory, n_valid=10)
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert re.match(
        rf"{re.escape(str(directory / TRAIN_X[:-3]))} holds 60 .* train set has 60000", messages[0]
    )
    assert re.match(
        rf"{re.escape(str(directory / TEST_X))} holds 20 .* test set has 10000", messages[1]
    )


def test_load_mnist_default_dir_from_environment(
    mnist_tmp: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, _ = mnist_tmp
    monkeypatch.setenv("BINARYNET_DATA", str(directory.parent))
    assert len(load_quietly(None, n_valid=10).train) == 50


def _break(arrays: dict[str, np.ndarray], name: str, array: np.ndarray) -> dict[str, np.ndarray]:
    return {**arrays, name: array}


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        (TRAIN_X, np.zeros((60, 784), np.uint8), r"expected uint8 images of shape \[N, 28, 28\]"),
        (
            TEST_X,
            np.zeros((20, 28, 28, 1), np.uint8),
            r"shape \[N, 28, 28\], got .*\[20, 28, 28, 1",
        ),
        (TEST_X, np.zeros((20, 28, 27), np.uint8), r"got uint8 of shape \[20, 28, 27\]"),
        (TRAIN_Y, np.zeros((60, 1), np.uint8), r"expected integer labels of shape \[N\]"),
    ],
    ids=["flat-images", "4d-images", "27-wide", "2d-labels"],
)
def test_load_mnist_wrong_ndim_or_shape(
    tmp_path: Path, name: str, bad: np.ndarray, message: str
) -> None:
    directory = write_mnist_dir(tmp_path, _break(synthetic_mnist(), name, bad))
    with pytest.raises(ValueError, match=re.escape(str(directory / name)) + ".*" + message):
        load_mnist(directory)


def test_load_mnist_label_out_of_range(tmp_path: Path) -> None:
    labels = (np.arange(20) % 10).astype(np.uint8)
    labels[[13, 17]] = [10, 255]
    directory = write_mnist_dir(tmp_path, _break(synthetic_mnist(), TEST_Y, labels))
    message = re.escape(f"{directory / TEST_Y}: label out of range at index 13: 10, expected 0..9")
    with pytest.raises(ValueError, match=message + r" \(2 bad labels"):
        load_mnist(directory)


def test_load_mnist_count_mismatch(tmp_path: Path) -> None:
    labels = (np.arange(59) % 10).astype(np.uint8)
    directory = write_mnist_dir(tmp_path, _break(synthetic_mnist(), TRAIN_Y, labels))
    message = f"{directory / TRAIN_X} has 60 images, {directory / TRAIN_Y} has 59 labels"
    with pytest.raises(ValueError, match=re.escape(message)):
        load_mnist(directory)


def test_load_mnist_malformed_file_is_named(tmp_path: Path) -> None:
    directory = write_mnist_dir(tmp_path, synthetic_mnist())
    content = gzip.decompress((directory / TEST_X).read_bytes())
    put(directory / TEST_X, content[:-1])
    with pytest.raises(ValueError, match=re.escape(str(directory / TEST_X)) + ".*truncated"):
        load_mnist(directory)


def test_load_mnist_missing_file(tmp_path: Path) -> None:
    directory = write_mnist_dir(tmp_path, synthetic_mnist())
    (directory / TEST_Y).unlink()
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(directory)
    message = str(info.value)
    assert str(directory) in message
    assert "missing" in message and "t10k-labels-idx1-ubyte(.gz) (1 of 4)." in message
    assert "train-images-idx3-ubyte" not in message  # only what is missing, once
    assert message.count("t10k-labels-idx1-ubyte") == 1
    assert "download=True" in message and "--download" in message


def test_load_mnist_missing_directory_hints_at_subdirectory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"directory not found: .*nowhere.*download=True"):
        load_mnist(tmp_path / "nowhere")
    write_mnist_dir(tmp_path / "mnist", synthetic_mnist())
    with pytest.raises(FileNotFoundError, match=r"subdirectory .*mnist: did you mean it"):
        load_mnist(tmp_path)


# --------------------------------------------------------------------------------------------
# The bundled sample
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> data.Splits:
    return mnist_sample()


def test_sample_sizes_and_types(sample: data.Splits) -> None:
    assert sample.name == "mnist-sample"
    assert sample.n_classes == 10
    assert (len(sample.train), len(sample.valid), len(sample.test)) == (8000, 2000, 2000)
    for split in (sample.train, sample.valid, sample.test):
        assert split.images.dtype == np.uint8
        assert split.images.shape[1:] == (28, 28)
        assert split.labels.dtype == np.int64
        assert set(np.unique(split.labels)) == set(range(10))  # every class present
        assert split.images.max() == 255 and split.images.min() == 0


def test_sample_size_on_disk() -> None:
    files = [p for p in SAMPLE_DIR.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= set(MNIST_FILES)
    assert sum(p.stat().st_size for p in files) <= 2_000_000


@pytest.mark.data
def test_sample_is_the_documented_part_of_mnist(sample: data.Splits, mnist_dir: Path) -> None:
    train_x = parse_idx_independently(mnist_dir / TRAIN_X)
    train_y = parse_idx_independently(mnist_dir / TRAIN_Y)
    test_x = parse_idx_independently(mnist_dir / TEST_X)
    test_y = parse_idx_independently(mnist_dir / TEST_Y)
    np.testing.assert_array_equal(sample.train.images, train_x[:8000])
    np.testing.assert_array_equal(sample.train.labels, train_y[:8000])
    np.testing.assert_array_equal(sample.valid.images, train_x[8000:10000])
    np.testing.assert_array_equal(sample.valid.labels, train_y[8000:10000])
    np.testing.assert_array_equal(sample.test.images, test_x[::5])
    np.testing.assert_array_equal(sample.test.labels, test_y[::5])


@pytest.mark.data
def test_sample_tool_rebuilds_identical_files(mnist_dir: Path, tmp_path: Path) -> None:
    tool = Path(__file__).resolve().parents[2] / "tools" / "make_mnist_sample.py"
    out = tmp_path / "sample"
    subprocess.run(
        [sys.executable, str(tool), str(mnist_dir), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    for path in SAMPLE_DIR.iterdir():
        assert (out / path.name).read_bytes() == path.read_bytes(), path.name


# --------------------------------------------------------------------------------------------
# The real MNIST
# --------------------------------------------------------------------------------------------


@pytest.mark.data
def test_real_mnist_files_have_official_md5(mnist_dir: Path) -> None:
    for name, md5 in MNIST_FILES.items():
        assert md5_of_file(mnist_dir / name) == md5, name


@pytest.mark.data
def test_real_mnist_splits(mnist_dir: Path) -> None:
    splits = load_mnist(mnist_dir)
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (50_000, 10_000, 10_000)
    train_x = parse_idx_independently(mnist_dir / TRAIN_X)
    train_y = parse_idx_independently(mnist_dir / TRAIN_Y)
    test_y = parse_idx_independently(mnist_dir / TEST_Y)
    assert array_md5(splits.train.images) == array_md5(train_x[:50_000])
    assert array_md5(splits.valid.images) == array_md5(train_x[50_000:])
    assert array_md5(splits.test.images) == array_md5(parse_idx_independently(mnist_dir / TEST_X))
    np.testing.assert_array_equal(splits.train.labels, train_y[:50_000])
    np.testing.assert_array_equal(splits.valid.labels, train_y[50_000:])
    np.testing.assert_array_equal(splits.test.labels, test_y)
    counts = class_balance(splits.test.labels, 10)
    assert counts.sum() == 10_000
    np.testing.assert_array_equal(counts, np.bincount(test_y, minlength=10))
    assert counts.min() > 800  # MNIST is roughly balanced


# --------------------------------------------------------------------------------------------
# Downloads, from a local server
# --------------------------------------------------------------------------------------------


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def http_server(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def _no_proxy_for_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def served_synthetic(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray], dict[str, str]]:
    """A served directory of synthetic gzipped MNIST files, their arrays and their MD5s."""
    arrays = synthetic_mnist()
    served = write_mnist_dir(tmp_path / "served", arrays)
    return served, arrays, {name: md5_of_file(served / name) for name in arrays}


def test_download_fetches_missing_files(served_synthetic: tuple, tmp_path: Path) -> None:
    served, arrays, md5s = served_synthetic
    target = tmp_path / "downloaded" / "mnist"  # does not exist yet
    with http_server(served) as url:
        splits = load_quietly(target, download=True, base_url=url, n_valid=10, checksums=md5s)
    for name in arrays:
        assert md5_of_file(target / name) == md5s[name]
    np.testing.assert_array_equal(splits.test.images, arrays[TEST_X])
    np.testing.assert_array_equal(splits.valid.labels, arrays[TRAIN_Y][50:])


def test_download_keeps_present_files(served_synthetic: tuple, tmp_path: Path) -> None:
    served, arrays, md5s = served_synthetic
    target = write_mnist_dir(tmp_path / "mine", {TRAIN_X: arrays[TRAIN_X]}, raw=(TRAIN_X,))
    (served / TRAIN_X).unlink()  # a request for it would fail
    with http_server(served) as url:
        load_quietly(target, download=True, base_url=url.rstrip("/"), n_valid=10, checksums=md5s)
    assert not (target / TRAIN_X).exists()  # the raw file was used, nothing downloaded
    assert (target / TRAIN_Y).is_file()


def test_download_rejects_bad_checksum(served_synthetic: tuple, tmp_path: Path) -> None:
    served, _, md5s = served_synthetic
    md5s = {**md5s, TEST_Y: "0" * 32}
    target = tmp_path / "mnist"
    with (
        http_server(served) as url,
        pytest.raises(ValueError, match=rf"checksum mismatch for {TEST_Y}.*expected MD5 0{{32}}"),
    ):
        load_mnist(target, download=True, base_url=url, checksums=md5s)
    assert not (target / TEST_Y).exists()


def test_download_rejects_unknown_checksum_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"checksums for unknown files \['mnist.zip'\]"):
        load_mnist(
            tmp_path, download=True, base_url="http://127.0.0.1:9/", checksums={"mnist.zip": "0"}
        )


def test_download_needs_data_dir() -> None:
    with pytest.raises(ValueError, match="download=True needs data_dir"):
        load_mnist(download=True, base_url="http://127.0.0.1:9/")


@pytest.mark.data
def test_download_real_files_with_official_checksums(mnist_dir: Path, tmp_path: Path) -> None:
    with http_server(mnist_dir) as url:
        splits = load_mnist(tmp_path, download=True, base_url=url)
    for name, md5 in MNIST_FILES.items():
        assert md5_of_file(tmp_path / name) == md5
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (50_000, 10_000, 10_000)


@pytest.mark.data
def test_download_rejects_tampered_real_file(mnist_dir: Path, tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    content = bytearray((mnist_dir / TEST_Y).read_bytes())
    content[100] ^= 0xFF
    (served / TEST_Y).write_bytes(bytes(content))
    target = tmp_path / "mnist"
    for name in (TRAIN_X, TRAIN_Y, TEST_X):  # present already: only TEST_Y is fetched
        (target / name).parent.mkdir(exist_ok=True)
        (target / name).symlink_to(mnist_dir / name)
    with (
        http_server(served) as url,
        pytest.raises(ValueError, match=rf"checksum mismatch for {TEST_Y}.*{MNIST_FILES[TEST_Y]}"),
    ):
        load_mnist(target, download=True, base_url=url)
    assert not (target / TEST_Y).exists()
