"""Build the MNIST sample shipped in ``src/binarynet/_sample/mnist/`` from the official files.

The sample (read by :func:`binarynet.data.mnist_sample`) is:

- training images 0 .. N_TRAIN − 1 of the official training set (the loader uses the last
  2 000 of them for validation), and
- every ``TEST_STRIDE``-th image of the official test set (0, 5, …, 9 995), which spans both
  its cleaner first half and its harder second half.

The files are gzipped IDX files with the official names, written deterministically (no time
stamp), so rebuilding from the official files gives byte-identical output. Their total size
must stay under 2 MB (``tests/data/test_data.py`` checks it).

Usage::

    python tools/make_mnist_sample.py SOURCE_DIR [--out src/binarynet/_sample/mnist]

where ``SOURCE_DIR`` holds the four official MNIST files (gzipped or not).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from binarynet.data import MNIST_FILES, SAMPLE_N_VALID, array_md5, load_mnist, write_idx

N_TRAIN = 10_000
TEST_STRIDE = 5
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "binarynet" / "_sample" / "mnist"

README = """\
# MNIST sample

A small part of the MNIST database, shipped so that examples and tests run without a download.
Built by `tools/make_mnist_sample.py` from the official files; read by
`binarynet.data.mnist_sample()`.

- `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`: official training images
  0 .. {last_train}; `mnist_sample()` trains on the first {n_fit} and validates on the last
  {n_valid}.
- `t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`: official test images
  0, {stride}, {stride2}, …, {last_test} (every {stride}th).

MD5 of the uncompressed arrays (bytes in C order, as `binarynet.data.array_md5` computes):

{md5s}

MNIST: Yann LeCun, Corinna Cortes and Christopher J. C. Burges, "The MNIST database of
handwritten digits", made available under the Creative Commons Attribution-Share Alike 3.0
license.
"""


def build(source: Path, out: Path) -> dict[str, np.ndarray]:
    """Write the sample's four files and README into ``out``; return the arrays by file name."""
    full = load_mnist(source, n_valid=0)  # train = all training images, valid empty
    arrays = {
        "train-images-idx3-ubyte.gz": full.train.images[:N_TRAIN],
        "train-labels-idx1-ubyte.gz": full.train.labels[:N_TRAIN].astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": full.test.images[::TEST_STRIDE],
        "t10k-labels-idx1-ubyte.gz": full.test.labels[::TEST_STRIDE].astype(np.uint8),
    }
    assert list(arrays) == list(MNIST_FILES)
    out.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(out / name, array)
    (out / "README.md").write_text(_readme(arrays, len(full.test)))
    return arrays


def _readme(arrays: dict[str, np.ndarray], n_test: int) -> str:
    """The sample's README, with its index ranges and array checksums."""
    md5s = "\n".join(f"- `{name}`: `{array_md5(a)}`" for name, a in arrays.items())
    last_test = (n_test - 1) // TEST_STRIDE * TEST_STRIDE
    return README.format(
        last_train=N_TRAIN - 1,
        n_fit=N_TRAIN - SAMPLE_N_VALID,
        n_valid=SAMPLE_N_VALID,
        stride=TEST_STRIDE,
        stride2=2 * TEST_STRIDE,
        last_test=last_test,
        md5s=md5s,
    )


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="directory with the four official MNIST files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args()
    arrays = build(args.source, args.out)
    total = sum(f.stat().st_size for f in args.out.iterdir() if f.is_file())
    for name, array in arrays.items():
        print(f"{name}: shape {list(array.shape)}, {(args.out / name).stat().st_size} bytes")
    print(f"total {total} bytes in {args.out}")


if __name__ == "__main__":
    main()
