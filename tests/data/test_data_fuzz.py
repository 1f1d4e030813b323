"""Corrupt and truncated dataset files (hypothesis): a ``ValueError`` naming the file, or data.

For every loader of :mod:`binarynet.data` — IDX (MNIST, raw and gzipped), the CIFAR-10 python
batches, the CIFAR-10 JPEG copy (``index.csv`` + a ``.tar.gz`` of JPEGs), SVHN's MATLAB files —
small valid files are written, then damaged (truncated anywhere, bits flipped, headers with
arbitrary fields, members replaced). The property: the loader raises ``ValueError`` whose
message names the damaged file (and the archive member), or returns well-formed data; never
another exception, a hang or a huge allocation. For IDX, what it returns must equal an
independent parse of the bytes.

The hand-written cases of ``tests/data/test_data.py`` and ``tests/data/test_data_cifar_svhn.py``
test each message; this file checks that *no* damage escapes them. ``BINARYNET_FUZZ_EXAMPLES``
scales the number of examples (default 100 per test).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import pickle
import struct
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from binarynet import data

EXAMPLES = int(os.environ.get("BINARYNET_FUZZ_EXAMPLES", "100"))
fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

IDX_CODES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@pytest.fixture(autouse=True)
def _no_size_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", data.DatasetSizeWarning)
        warnings.simplefilter("ignore", data.ChecksumWarning)
        # A damaged frame header can claim ~10⁸ pixels: Pillow warns before the size check.
        warnings.filterwarnings("ignore", category=Warning, message="Image size")
        yield


def _names_the_file(exc: BaseException, *paths: object) -> None:
    message = str(exc)
    for path in paths:
        assert str(path) in message, f"the error does not name {path}: {message}"


@st.composite
def damage(draw, blob: bytes) -> bytes:
    """Truncation, flipped bits, bytes overwritten or inserted, up to three times."""
    for _ in range(draw(st.integers(1, 3))):
        if not blob:
            break
        at = draw(st.integers(0, len(blob) - 1))
        kind = draw(st.sampled_from(["truncate", "flip", "flip", "overwrite", "insert"]))
        if kind == "truncate":
            blob = blob[:at]
        elif kind == "flip":
            b = bytearray(blob)
            b[at] ^= 1 << draw(st.integers(0, 7))
            blob = bytes(b)
        elif kind == "overwrite":
            patch = draw(st.binary(min_size=1, max_size=8))
            blob = blob[:at] + patch + blob[at + len(patch) :]
        else:
            blob = blob[:at] + draw(st.binary(min_size=1, max_size=8)) + blob[at:]
    return blob


# --------------------------------------------------------------------------------------------
# IDX (MNIST)
# --------------------------------------------------------------------------------------------


def _parse_idx(raw: bytes) -> np.ndarray | None:
    """An independent IDX parser: the array, or None when the bytes are not a valid file."""
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] not in IDX_CODES or not raw[3]:
        return None
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim or ndim > 64:  # NumPy arrays have at most 64 dimensions
        return None
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(IDX_CODES[raw[2]])
    payload = raw[4 + 4 * ndim :]
    if len(payload) != int(np.prod(dims, dtype=object)) * dtype.itemsize:
        return None
    try:
        return np.frombuffer(payload, dtype=dtype).reshape(dims)
    except ValueError:  # "array is too big": an empty array with dims NumPy cannot index
        return None


@st.composite
def idx_files(draw) -> bytes:
    """IDX bytes with any header: valid or unknown type codes, 0..70 dimensions, small or huge
    dims, a payload of the right length or a few bytes off."""
    code = draw(st.sampled_from(sorted(IDX_CODES)) | st.integers(0, 255))
    zeros = draw(st.sampled_from([b"\0\0"] * 6 + [b"\0\1", b"\1\0"]))
    ndim = draw(st.sampled_from([1, 2, 3, 3, 0, 4, 64, 65, 255]) | st.integers(0, 70))
    small = st.integers(0, 5)
    dims = [
        draw(small | st.sampled_from([2**31, 2**32 - 1, 60000])) if draw(st.booleans()) else 1
        for _ in range(ndim)
    ]
    header = zeros + bytes([code, ndim]) + struct.pack(f">{ndim}I", *dims)
    header = header[: draw(st.integers(0, len(header)))] if draw(st.booleans()) else header
    itemsize = np.dtype(IDX_CODES.get(code, ">u1")).itemsize
    n = int(np.prod(dims, dtype=object)) * itemsize
    n = n if n < 4096 else draw(st.integers(0, 64))
    n = max(0, n + draw(st.sampled_from([0, 0, 0, -1, 1, -itemsize])))
    return header + draw(st.binary(min_size=n, max_size=n))


@fuzz_settings
@given(idx_files(), st.booleans())
def test_idx_headers_and_payloads(tmp_path: Path, raw: bytes, gz: bool) -> None:
    path = tmp_path / ("x.idx.gz" if gz else "x.idx")
    path.write_bytes(gzip.compress(raw, mtime=0) if gz else raw)
    expected = _parse_idx(raw)
    try:
        array = data.read_idx(path)
    except ValueError as exc:
        _names_the_file(exc, path)
        assert expected is None, f"a valid file was refused: {exc}"
        event("refused")
        return
    assert expected is not None, "an invalid file was read"
    assert array.shape == expected.shape and array.dtype == expected.dtype.newbyteorder("=")
    np.testing.assert_array_equal(array, expected)
    event("read")


@fuzz_settings
@given(st.binary(max_size=300), st.booleans())
def test_idx_arbitrary_bytes(tmp_path: Path, raw: bytes, gz: bool) -> None:
    path = tmp_path / "x"
    path.write_bytes(gzip.compress(raw, mtime=0) if gz else raw)
    expected = _parse_idx(raw)
    try:
        array = data.read_idx(path)
    except ValueError as exc:
        _names_the_file(exc, path)
        assert expected is None
        return
    np.testing.assert_array_equal(array, expected)


def _mnist_like(rng: np.random.Generator, n: int) -> tuple[bytes, bytes]:
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return (
        bytes([0, 0, 8, 3]) + struct.pack(">3I", n, 28, 28) + images.tobytes(),
        bytes([0, 0, 8, 1]) + struct.pack(">I", n) + labels.tobytes(),
    )


def test_every_truncation_of_a_gzipped_idx_file(tmp_path: Path) -> None:
    raw, _ = _mnist_like(np.random.default_rng(0), 3)
    blob = gzip.compress(raw, mtime=0)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    for n in range(len(blob)):
        path.write_bytes(blob[:n])
        with pytest.raises(ValueError) as info:
            data.read_idx(path)
        _names_the_file(info.value, path)


@fuzz_settings
@given(st.data())
def test_damaged_gzip_idx_is_refused_or_intact(tmp_path: Path, data_) -> None:
    """gzip's CRC covers the payload: damage is refused, except in the gzip header's free
    fields (time stamp, flags, OS), which leave the array intact."""
    raw, _ = _mnist_like(np.random.default_rng(1), 2)
    blob = data_.draw(damage(gzip.compress(raw, mtime=0)))
    path = tmp_path / "x.gz"
    path.write_bytes(blob)
    try:
        array = data.read_idx(path)
    except ValueError as exc:
        _names_the_file(exc, path)
        return
    np.testing.assert_array_equal(array, _parse_idx(raw))


@fuzz_settings
@given(st.data(), st.sampled_from(range(4)), st.booleans())
def test_load_mnist_with_one_damaged_file(tmp_path: Path, data_, which: int, gz: bool) -> None:
    rng = np.random.default_rng(2)
    files = {}
    for split, n in (("train", 30), ("t10k", 20)):
        images, labels = _mnist_like(rng, n)
        files[f"{split}-images-idx3-ubyte"] = images
        files[f"{split}-labels-idx1-ubyte"] = labels
    directory = tmp_path / f"mnist-{which}-{gz}"
    directory.mkdir(exist_ok=True)
    names = sorted(files)
    for i, (name, raw) in enumerate(sorted(files.items())):
        blob = gzip.compress(raw, mtime=0) if gz else raw
        if i == which:
            blob = data_.draw(damage(blob))
        (directory / (name + (".gz" if gz else ""))).write_bytes(blob)
    damaged = directory / (names[which] + (".gz" if gz else ""))
    try:
        splits = data.load_mnist(directory, n_valid=5)
    except ValueError as exc:
        _names_the_file(exc, damaged)
        event("refused")
        return
    event("loaded")
    for split in (splits.train, splits.valid, splits.test):
        assert split.images.dtype == np.uint8 and split.images.shape[1:] == (28, 28)
        assert split.labels.min() >= 0 and split.labels.max() <= 9


# --------------------------------------------------------------------------------------------
# CIFAR-10: python batches
# --------------------------------------------------------------------------------------------


def _write_batches(directory: Path, n: int = 4) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for name in data.CIFAR10_BATCHES:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [f"{i}.png".encode() for i in range(n)],
        }
        (directory / name).write_bytes(pickle.dumps(batch, protocol=2))


@fuzz_settings
@given(st.data(), st.sampled_from(data.CIFAR10_BATCHES))
def test_damaged_cifar10_batch(tmp_path: Path, data_, name: str) -> None:
    directory = tmp_path / "cifar-10-batches-py"
    _write_batches(directory)
    path = directory / name
    path.write_bytes(data_.draw(damage(path.read_bytes())))
    try:
        splits = data.load_cifar10(directory, n_valid=2)
    except ValueError as exc:
        _names_the_file(exc, path)
        event("refused")
        return
    event("loaded")
    assert splits.test.images.shape[1:] == (32, 32, 3)


# --------------------------------------------------------------------------------------------
# CIFAR-10: the JPEG copy
# --------------------------------------------------------------------------------------------


def _jpeg(rng: np.random.Generator) -> bytes:
    from PIL import Image

    y, x = np.mgrid[0:32, 0:32]
    image = np.stack([(x * 8 + rng.integers(0, 64)) % 256, y * 8, (x + y) * 4], -1)
    buffer = io.BytesIO()
    Image.fromarray(image.astype(np.uint8)).save(buffer, format="JPEG", quality=75)
    return buffer.getvalue()


def _jpeg_copy(root: Path, member_blob: bytes | None = None, which: int = 0) -> list[str]:
    """index.csv + the archive with 3 training and 2 test images; member ``which`` replaced by
    ``member_blob`` when given. Returns the member names."""
    rng = np.random.default_rng(4)
    root.mkdir(parents=True, exist_ok=True)
    members = [f"train/c{i}/{i:04d}.jpg" for i in range(3)]
    members += [f"test/c/{i:04d}.jpg" for i in range(2)]
    with open(root / "index.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["split", "index", "label", "path"])
        for i, m in enumerate(members):
            split, index = ("train", i) if i < 3 else ("test", i - 3)
            writer.writerow([split, index, i % 10, m])
    with tarfile.open(root / data.CIFAR10_JPEG_ARCHIVE, "w:gz") as tar:
        for i, m in enumerate(members):
            blob = member_blob if (member_blob is not None and i == which) else _jpeg(rng)
            info = tarfile.TarInfo(m)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return members


@st.composite
def jpeg_damage(draw, blob: bytes) -> bytes:
    """Damage aimed at the JPEG structure: a segment's length or a frame's size fields, or the
    generic damage of :func:`damage`."""
    b = bytearray(blob)
    kind = draw(st.sampled_from(["segment", "frame", "other"]))
    sizes = st.sampled_from([0, 1, 2, 31, 33, 0xFFFF, 65000]) | st.integers(0, 0xFFFF)
    if kind == "segment":  # a marker segment's length
        markers = [i for i in range(len(b) - 9) if b[i] == 0xFF and b[i + 1] not in (0, 0xFF)]
        at = draw(st.sampled_from(markers)) + 2
        b[at : at + 2] = struct.pack(">H", draw(sizes))
        return bytes(b)
    if kind == "frame":  # the image size in the start-of-frame segment (FFC0..FFC2)
        at = max(b.find(bytes([0xFF, c])) for c in (0xC0, 0xC1, 0xC2)) + 5
        b[at : at + 4] = struct.pack(">HH", draw(sizes), draw(sizes))
        return bytes(b)
    return draw(damage(blob))


@fuzz_settings
@given(st.data(), st.integers(0, 4))
def test_damaged_jpeg_member(tmp_path: Path, data_, which: int) -> None:
    blob = data_.draw(jpeg_damage(_jpeg(np.random.default_rng(5))))
    root = tmp_path / "jpeg"
    members = _jpeg_copy(root, blob, which)
    try:
        splits = data.load_cifar10(root, n_valid=1)
    except ValueError as exc:
        _names_the_file(exc, root / data.CIFAR10_JPEG_ARCHIVE, members[which])
        event("refused")
        return
    event("decoded")  # JPEG decoders conceal some damage: the pixels may be wrong, not the shape
    assert splits.train.images.shape == (2, 32, 32, 3)


def test_jpeg_member_claiming_a_huge_size(tmp_path: Path) -> None:
    """A damaged frame header claiming 65 000 × 65 000 pixels: Pillow raised its
    DecompressionBombError, which did not name the file."""
    blob = bytearray(_jpeg(np.random.default_rng(7)))
    at = blob.find(b"\xff\xc0") + 5
    blob[at : at + 4] = struct.pack(">HH", 65000, 65000)
    root = tmp_path / "jpeg"
    members = _jpeg_copy(root, bytes(blob), 2)
    with pytest.raises(ValueError, match="cannot decode the JPEG") as info:
        data.load_cifar10(root, n_valid=1)
    _names_the_file(info.value, root / data.CIFAR10_JPEG_ARCHIVE, members[2])


@pytest.mark.parametrize(
    "dims", [[1] * 65, [0, 2**31, 2**31, 2**31]], ids=["65-dims", "huge-empty"]
)
def test_idx_dims_that_cannot_be_an_array(tmp_path: Path, dims: list[int]) -> None:
    """NumPy's own message ("maximum supported dimension", "array is too big") did not name
    the file."""
    path = tmp_path / "x.idx"
    path.write_bytes(bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + b"\7")
    payload = 1 if 0 not in dims else 0
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) - 1 + payload])
    with pytest.raises(ValueError, match="cannot be a NumPy array") as info:
        data.read_idx(path)
    _names_the_file(info.value, path)


@fuzz_settings
@given(st.data())
def test_damaged_jpeg_archive(tmp_path: Path, data_) -> None:
    root = tmp_path / "jpeg"
    _jpeg_copy(root)
    archive = root / data.CIFAR10_JPEG_ARCHIVE
    archive.write_bytes(data_.draw(damage(archive.read_bytes())))
    try:
        data.load_cifar10(root, n_valid=1)
    except ValueError as exc:
        _names_the_file(exc, archive)
        event("refused")
        return
    event("loaded")


def test_every_truncation_of_the_jpeg_archive(tmp_path: Path) -> None:
    root = tmp_path / "jpeg"
    _jpeg_copy(root)
    archive = root / data.CIFAR10_JPEG_ARCHIVE
    blob = archive.read_bytes()
    intact = data.load_cifar10(root, n_valid=1)
    loaded = []
    for n in range(len(blob)):
        archive.write_bytes(blob[:n])
        try:
            splits = data.load_cifar10(root, n_valid=1)
        except ValueError as exc:
            _names_the_file(exc, archive)
            continue
        # Cut after the last member (the tar's zero padding, the gzip trailer): nothing lost.
        loaded.append(n)
        for a, b in ((splits.train, intact.train), (splits.test, intact.test)):
            np.testing.assert_array_equal(a.images, b.images)
    assert not loaded or min(loaded) > len(blob) - 64, loaded


# --------------------------------------------------------------------------------------------
# SVHN (.mat)
# --------------------------------------------------------------------------------------------


def _write_svhn(directory: Path) -> None:
    from scipy import io as scipy_io

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(6)
    for name, n in (("train_32x32.mat", 20), ("test_32x32.mat", 10)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).astype(np.uint8).reshape(-1, 1)
        scipy_io.savemat(directory / name, {"X": x, "y": y})


@fuzz_settings
@given(st.data(), st.sampled_from(["train_32x32.mat", "test_32x32.mat"]))
def test_damaged_svhn_file(tmp_path: Path, data_, name: str) -> None:
    pytest.importorskip("scipy")
    directory = tmp_path / "svhn"
    _write_svhn(directory)
    path = directory / name
    path.write_bytes(data_.draw(damage(path.read_bytes())))
    try:
        splits = data.load_svhn(directory, valid_per_class=1)
    except ValueError as exc:
        _names_the_file(exc, path)
        event("refused")
        return
    event("loaded")
    assert splits.test.images.shape[1:] == (32, 32, 3)
