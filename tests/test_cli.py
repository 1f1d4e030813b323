"""The command line as a user meets it: every mistake is one line on stderr with exit
status 2 and leaves the files as they were; --resume, --device, --download, --version, help."""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import binarynet.training.trainer
from binarynet.cli import build_parser, main
from binarynet.config import TrainConfig
from binarynet.data import Split, Splits, mnist_sample, write_idx

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
CHECKPOINT = FIXTURES / "mnist_mlp_tiny.pt"
TRAIN = [
    "train",
    "--hidden",
    "16",
    "--depth",
    "1",
    "--batch-size",
    "100",
    "--compute-dtype",
    "float32",
    "--no-progress",
]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``binarynet ARGS``."""
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(err: str) -> str:
    """The message of a one-line ``error: ...`` on stderr (fails on a traceback)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with the SHA-256 of its content ("dir" for folders)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): "dir"
        if p.is_dir()
        else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def small_data(monkeypatch: pytest.MonkeyPatch) -> list[tuple[TrainConfig, bool]]:
    """``binarynet train`` on 300 / 100 / 100 images of the sample; records each
    (configuration, download) it loads data for."""
    s = mnist_sample()
    splits = Splits(
        Split(s.train.images[:300], s.train.labels[:300]),
        Split(s.valid.images[:100], s.valid.labels[:100]),
        Split(s.test.images[:100], s.test.labels[:100]),
        name="mnist-sample-small",
    )
    calls: list[tuple[TrainConfig, bool]] = []

    def load_splits(cfg: TrainConfig, *, download: bool = False) -> Splits:
        calls.append((cfg, download))
        return splits

    monkeypatch.setattr(binarynet.training.trainer, "load_splits", load_splits)
    return calls


@pytest.fixture(scope="module")
def bnn_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bnn") / "model.bnn"
    assert main(["export", str(CHECKPOINT), str(path)]) == 0
    return path


# -- 1. --resume --------------------------------------------------------------------------------


def test_resume_refuses_options_that_would_change_the_run(tmp_path, capsys, small_data):
    run = tmp_path / "run"
    assert cli(capsys, *TRAIN, "--epochs", "1", "--out", run)[0] == 0
    before = snapshot(run)
    rc, _, err = cli(capsys, "train", "--out", run, "--resume", "--lr", "0.1", "--hidden", "64")
    line = one_error_line(err)
    assert rc == 2
    assert "--lr 0.1 (the run has 0.0009765625)" in line
    assert "--hidden 64 (the run has 16)" in line
    assert "only --data-dir, --cache-dir, --epochs, --threads, --checkpoint-every" in line
    rc, _, err = cli(capsys, "train", "--out", run, "--resume", "--no-stochastic")
    assert rc == 2 and "--no-stochastic (the run has its default)" in one_error_line(err)
    assert snapshot(run) == before  # nothing written or lost

    # The same values again are fine (re-running the first command with --resume), and what may
    # change on resume is applied and saved.
    resumed = [*TRAIN, "--out", run, "--resume", "--epochs", "2"]
    resumed += ["--threads", "1", "--checkpoint-every", "7.5", "--device", "auto"]
    rc, _, err = cli(capsys, *resumed)
    assert rc == 0, err
    saved = json.loads((run / "config.json").read_text())
    assert (saved["epochs"], saved["threads"], saved["checkpoint_every"]) == (2, 1, 7.5)
    assert saved["device"] == "auto" and saved["model_kwargs"] == {"hidden": 16, "depth": 1}
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


def test_resume_from_another_directory_uses_absolute_data_paths(
    tmp_path, capsys, small_data, monkeypatch
):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    args = [*TRAIN, "--epochs", "1", "--data-dir", "data", "--cache-dir", "../cache"]
    assert cli(capsys, *args, "--out", "run")[0] == 0
    saved = json.loads((first / "run" / "config.json").read_text())
    assert saved["data_dir"] == str(first / "data")
    assert saved["cache_dir"] == str(tmp_path / "cache")

    monkeypatch.chdir(second)
    rc, _, err = cli(capsys, "train", "--out", "../first/run", "--resume", "--epochs", "2")
    assert rc == 0, err
    assert small_data[-1][0].data_dir == str(first / "data")  # not second/data
    rc, _, err = cli(
        capsys, "train", "--out", "../first/run", "--resume", "--epochs", "3", "--data-dir", "moved"
    )
    assert rc == 0, err
    assert small_data[-1][0].data_dir == str(second / "moved")
    assert json.loads((first / "run" / "config.json").read_text())["data_dir"] == str(
        second / "moved"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"lr": ', r"config\.json: not valid JSON \(Expecting value"),
        ('{"lr": 0.001, "extra": 1}', r"config\.json: unknown key 'extra' \(not a TrainConfig"),
        ('{"lr": -1}', r"config\.json: lr must be a finite value > 0, got -1"),
        ("[1, 2]", r"config\.json: expected a JSON object, got list"),
        ("\xff\xfe", r"config\.json: not valid JSON"),
    ],
)
def test_resume_with_a_bad_config_json_names_the_file(tmp_path, capsys, content, message):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_bytes(content.encode("latin-1"))
    before = snapshot(run)
    rc, _, err = cli(capsys, "train", "--out", run, "--resume")
    assert rc == 2
    assert re.search(re.escape(str(run)) + "/" + message, one_error_line(err))
    assert snapshot(run) == before


def test_resume_without_a_run(tmp_path, capsys):
    rc, _, err = cli(capsys, "train", "--out", tmp_path / "none", "--resume")
    assert rc == 2 and "cannot resume: " in one_error_line(err)
    assert not (tmp_path / "none").exists()


# -- 2. --device ----------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_device_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    rc, _, err = cli(capsys, *TRAIN, "--device", "cuda", "--out", tmp_path / "gpu")
    assert rc == 2
    assert "device 'cuda' (--device cuda) was asked for but" in one_error_line(err)
    assert not (tmp_path / "gpu").exists()


def test_readme_gpu_and_torchrun_commands_parse():
    readme = (REPO / "README.md").read_text()
    block = readme.split("### Several processes, or a GPU", 1)[1].split("```bash", 1)[1]
    block = block.split("```", 1)[0].replace("\\\n", " ")
    commands = [line.split("#")[0].split() for line in block.strip().splitlines()]
    assert len(commands) == 2
    for words in commands:
        args = words[words.index("binarynet.cli") + 1 :] if "torchrun" in words else words[1:]
        parsed = build_parser().parse_args(args)
        assert parsed.command == "train"
    assert parsed.device == "cuda"


# -- 3. model and dataset, --augment --------------------------------------------------------------


def test_a_model_that_does_not_fit_the_dataset_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = cli(
        capsys, *TRAIN[:1], "--model", "cifar10-convnet", "--width", "0.05", "--out", out
    )
    assert rc == 2
    assert one_error_line(err) == (
        "error: model cifar10-convnet does not fit the dataset mnist-sample: its images are "
        "[28, 28] per example, the model takes [3, 32, 32] (choose a model for the dataset)"
    )
    assert not out.exists()


@pytest.mark.parametrize("dataset", ["mnist", "svhn"])
def test_augment_is_refused_on_digits(tmp_path, capsys, dataset):
    out = tmp_path / "run"
    args = ["--dataset", dataset, "--data-dir", str(tmp_path)]
    rc, _, err = cli(capsys, *TRAIN, *args, "--augment", "--out", out)
    assert rc == 2
    assert f"changes the labels of {dataset} (mirrored digits)" in one_error_line(err)
    assert not out.exists()


def test_help_says_what_augment_epochs_and_batch_size_do(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "left-right flipped" in text and "4-pixel zero-padded crops" in text
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    undocumented = [a.dest for a in sub.choices["train"]._actions if not a.help]
    assert undocumented == []


# -- 4. a checkpoint where a .bnn is expected, and the reverse -----------------------------------


def test_file_kinds_mixed_up_are_one_line(tmp_path, capsys, bnn_file):
    rc, _, err = cli(capsys, "eval", CHECKPOINT)
    assert rc == 2
    assert "is a training checkpoint" in one_error_line(err) and "binarynet export" in err
    rc, _, err = cli(capsys, "export", bnn_file, tmp_path / "x.bnn")
    assert rc == 2
    assert "is a .bnn model file" in one_error_line(err) and "weights_only" not in err
    assert not (tmp_path / "x.bnn").exists()
    rc, _, err = cli(capsys, *TRAIN, "--init-from", bnn_file, "--out", tmp_path / "ft")
    assert rc == 2 and "is a .bnn model file" in one_error_line(err)
    assert not (tmp_path / "ft").exists()
    for command in ("eval", "summary", "export"):
        rc, _, err = cli(capsys, command, tmp_path, *(["x.bnn"] if command == "export" else []))
        assert rc == 2 and f"{tmp_path} is a directory" in one_error_line(err)
    # A checkpoint of another network: refused before the run directory exists.
    rc, _, err = cli(
        capsys, *TRAIN, "--hidden", "32", "--init-from", CHECKPOINT, "--out", tmp_path / "ft"
    )
    assert rc == 2
    assert "cannot initialise from" in one_error_line(err) and "model_kwargs=" in err
    assert not (tmp_path / "ft").exists()


# -- 5. OS errors ---------------------------------------------------------------------------------


def test_out_through_or_onto_a_file(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    rc, _, err = cli(capsys, *TRAIN, "--out", afile / "sub")
    assert (
        rc == 2
        and one_error_line(err)
        == f"error: --out {afile / 'sub'}: {afile} is a file, not a directory"
    )
    rc, _, err = cli(capsys, *TRAIN, "--out", afile)
    assert rc == 2 and "is a file; expected a run directory" in one_error_line(err)
    assert afile.read_text() == "keep me" and sorted(tmp_path.iterdir()) == [afile]


def test_export_onto_a_directory(tmp_path, capsys):
    target = tmp_path / "somedir"
    target.mkdir()
    rc, _, err = cli(capsys, "export", CHECKPOINT, target)
    assert rc == 2
    assert one_error_line(err) == f"error: {target}: is a directory, expected a file name"
    assert list(target.iterdir()) == [] and sorted(tmp_path.iterdir()) == [target]


def test_read_only_out(tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root may write anyway: let the check see what a user would
        access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != ro and access(p, mode))
    try:
        rc, _, err = cli(capsys, *TRAIN, "--out", ro / "run")
        assert rc == 2
        assert one_error_line(err) == (
            f"error: {ro / 'run'}: Permission denied (cannot write the run here)"
        )
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_os_errors_are_one_line_naming_the_path(tmp_path, capsys, monkeypatch):
    import binarynet.export

    def denied(checkpoint: object, out: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(out))

    monkeypatch.setattr(binarynet.export, "export_checkpoint", denied)
    rc, _, err = cli(capsys, "export", CHECKPOINT, tmp_path / "m.bnn")
    assert rc == 2 and err == f"error: {tmp_path / 'm.bnn'}: Permission denied\n"


@pytest.mark.parametrize("fmt", ["bnn", "qonnx", "c"])
def test_export_through_a_file_says_which_is_a_file(tmp_path, capsys, bnn_file, fmt):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    out = afile / ("x.onnx" if fmt == "qonnx" else "x.bnn" if fmt == "bnn" else "csrc")
    model = CHECKPOINT if fmt == "bnn" else bnn_file
    rc, _, err = cli(capsys, "export", model, out, "--format", fmt)
    assert rc == 2
    assert one_error_line(err) == f"error: {out}: {afile} is a file, not a directory"
    assert afile.read_text() == "keep me" and sorted(tmp_path.iterdir()) == [afile]
    if fmt == "c":  # the directory itself a file
        rc, _, err = cli(capsys, "export", model, afile, "--format", "c")
        assert rc == 2 and one_error_line(err) == f"error: {afile} is a file, not a directory"
        assert afile.read_text() == "keep me"


@pytest.mark.parametrize("fmt", ["bnn", "qonnx"])
def test_export_into_a_read_only_folder_names_the_file_asked_for(
    tmp_path, capsys, monkeypatch, bnn_file, fmt
):
    """The OS's error is about the hidden temporary (``.x.bnn.485uk4qr.tmp``)."""
    import tempfile

    def read_only(prefix: str, suffix: str, dir: str) -> tuple[int, str]:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), f"{dir}/{prefix}485uk4qr{suffix}")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    out = tmp_path / ("x.onnx" if fmt == "qonnx" else "x.bnn")
    rc, _, err = cli(
        capsys, "export", bnn_file if fmt == "qonnx" else CHECKPOINT, out, "--format", fmt
    )
    assert rc == 2 and err == f"error: {out}: Read-only file system\n"
    assert list(tmp_path.iterdir()) == []


def test_train_refuses_a_folder_that_is_not_a_run(tmp_path, capsys, small_data):
    src = tmp_path / "src"
    (src / "binarynet").mkdir(parents=True)
    for name in ("a.py", "b.py", "c.py", "d.py", "e.py", "f.py"):
        (src / name).write_text("code")
    before = snapshot(src)
    rc, _, err = cli(capsys, *TRAIN, "--out", src)
    assert rc == 2 and one_error_line(err) == (
        f"error: --out {src} is not empty and is not a binarynet run (no run's config.json): it "
        "holds a.py, b.py, binarynet/, c.py, d.py and 2 more; give a new or empty directory"
    )
    (src / "config.json").write_text('{"name": "another tool"}')  # not a TrainConfig
    rc, _, err = cli(capsys, *TRAIN, "--out", src)
    assert rc == 2 and "is not a binarynet run" in one_error_line(err)
    assert "c.py, config.json and 3 more" in err
    (src / "config.json").unlink()
    assert snapshot(src) == before and small_data == []  # nothing read, written or lost

    # An empty folder, and a run's folder without a checkpoint (stopped before its first one),
    # are fine.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli(capsys, *TRAIN, "--epochs", "1", "--out", empty)[0] == 0
    (empty / "last.pt").unlink()
    (empty / "best.pt").unlink()
    rc, _, err = cli(capsys, *TRAIN, "--epochs", "1", "--out", empty)
    assert rc == 0, err


@pytest.mark.parametrize("threads", [None, 1, 300])
def test_eval_prints_the_kernel_and_threads_that_ran(capsys, threads):
    from binarynet import _kernels
    from binarynet.backends.engine.kernels import MAX_THREADS

    args = ["eval", "pretrained:mnist-mlp-256"]
    if threads is not None:
        args += ["--threads", str(threads)]
    rc, out, err = cli(capsys, *args)
    assert rc == 0, err
    ran = min(threads or _kernels.get_num_threads(), MAX_THREADS)
    assert out.endswith(
        f"images/s): mnist-mlp, kernel {_kernels.default_kernel()}, {ran} "
        f"thread{'s' * (ran != 1)}\n"
    )
    assert "None" not in out


# -- 7. an engine-only install --------------------------------------------------------------------


def test_training_commands_without_torch_say_how_to_install_it(tmp_path, bnn_file):
    """A process where ``import torch`` and ``import matplotlib`` fail, as on ``pip install .``."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"epoch": 1}\n')
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None  # import torch -> ModuleNotFoundError
        sys.modules["matplotlib"] = None
        from binarynet.cli import main
        for args in (
            ["train", "--out", {str(tmp_path / "new")!r}],
            ["export", {str(CHECKPOINT)!r}, {str(tmp_path / "x.bnn")!r}],
            ["plot", {str(run)!r}],
            ["summary", {str(CHECKPOINT)!r}],
            ["summary", {str(bnn_file)!r}, "--json", "--no-filters"],
            ["eval", {str(bnn_file)!r}],
        ):
            print("rc", main(args), flush=True)
            print("--", file=sys.stderr, flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    codes = [line for line in done.stdout.splitlines() if line.startswith("rc ")]
    assert codes == ["rc 2"] * 4 + ["rc 0"] * 2, done.stdout + done.stderr
    errors = done.stderr.split("--\n")
    for command, err, module in zip(
        ("train", "export", "plot", "summary"),
        errors[:4],
        ("torch", "torch", "matplotlib", "torch"),
        strict=True,
    ):
        assert err == (
            f"error: binarynet {command} needs the training extras ({module} is not installed): "
            "pip install 'binarynet[train]'\n"
        )
    assert not (tmp_path / "new").exists() and not (tmp_path / "x.bnn").exists()


def test_the_train_extra_holds_torch():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "torch>=2.2" in project["optional-dependencies"]["train"]
    assert not any(d.startswith("torch") for d in project["dependencies"])


# -- 8. smaller ones ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "-0.5", "nan"])
def test_checkpoint_every_must_not_be_negative(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as info:
        main([*TRAIN, "--checkpoint-every", value, "--out", str(tmp_path / "run")])
    assert info.value.code == 2
    assert f"expected a number of seconds >= 0, got {value}" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="checkpoint_every must be >= 0 seconds"):
        TrainConfig(checkpoint_every=float(value))


def write_mnist(directory: Path, n_train: int = 10_100, n_test: int = 50) -> dict[str, Path]:
    """Synthetic MNIST IDX files (gzipped), enough training images for the 10 000 held out."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx(directory / name, array)
    return {name: directory / name for name in arrays}


def test_missing_files_are_listed_once_and_download_fetches_them(
    tmp_path, capsys, monkeypatch, bnn_file
):
    served = write_mnist(tmp_path / "served")
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(served["train-images-idx3-ubyte.gz"], data)
    rc, _, err = cli(capsys, "eval", bnn_file, "--data-dir", data)
    line = one_error_line(err)
    assert rc == 2
    for name in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert line.count(name) == 1
    assert "train-images" not in line and "(3 of 4)" in line and "--download" in line

    import pooch

    import binarynet.data.mnist

    fetched = []

    def retrieve(url: str, known_hash: str, fname: str, path: Path) -> str:
        fetched.append(fname)  # stands in for the network: the served copy
        shutil.copy(served[fname], Path(path) / fname)
        return str(Path(path) / fname)

    md5 = {n: hashlib.md5(p.read_bytes()).hexdigest() for n, p in served.items()}
    monkeypatch.setattr(pooch, "retrieve", retrieve)
    monkeypatch.setattr(binarynet.data.mnist, "MNIST_FILES", md5)
    with pytest.warns(UserWarning, match="official MNIST"):
        rc, out, err = cli(capsys, "eval", bnn_file, "--data-dir", data, "--download")
    assert rc == 0, err
    assert sorted(fetched) == sorted(set(served) - {"train-images-idx3-ubyte.gz"})
    assert out.startswith("mnist test error: ") and " / 50) in " in out

    rc, _, err = cli(
        capsys,
        *TRAIN,
        "--dataset",
        "cifar10",
        "--data-dir",
        data,
        "--download",
        "--out",
        tmp_path / "run",
    )
    assert rc == 2 and "only mnist can be downloaded" in one_error_line(err)
    assert not (tmp_path / "run").exists()


def test_ctrl_c_outside_the_training_loop_is_one_line(tmp_path, capsys, monkeypatch, bnn_file):
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # as when Ctrl-C arrives while JPEGs decode

    import binarynet.data

    monkeypatch.setattr(binarynet.training.trainer, "load_splits", interrupted)
    monkeypatch.setattr(binarynet.data, "load_dataset", interrupted)
    rc, _, err = cli(capsys, *TRAIN, "--out", tmp_path / "run")
    assert (rc, err) == (130, "binarynet train: interrupted\n")
    assert not (tmp_path / "run").exists()
    rc, _, err = cli(capsys, "eval", bnn_file)
    assert (rc, err) == (130, "binarynet eval: interrupted\n")


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"binarynet {version('binarynet')}\n"


def test_pad_value_sets_the_convnet_padding_and_is_refused_elsewhere(tmp_path, capsys):
    """--pad-value is a ConvNet option (±1 padding, for FINN's XNOR hardware); a bad value and
    an MLP are refused with one line, nothing written."""
    from binarynet import cli as binarynet_cli

    argv = ["train", "--recipe", "cifar10-theano", "--pad-value", "-1", "--out", str(tmp_path)]
    args = build_parser().parse_args(argv)
    cfg = binarynet_cli._new_config(args)
    assert cfg.model == "cifar10-convnet" and cfg.model_kwargs["pad_value"] == -1
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:  # argparse's usage and its one error line
        main(["train", "--recipe", "cifar10-theano", "--pad-value", "2", "--out", str(out)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --pad-value: invalid choice: 2 (choose from 0, 1, -1)" in err
    rc, _, err = cli(capsys, *TRAIN, "--pad-value", "-1", "--out", out)
    assert rc == 2
    assert one_error_line(err).startswith("error: model 'mnist-mlp' does not take pad_value")
    assert not out.exists()
