"""The ``binarynet`` command line.

    binarynet train --model mnist-mlp [--recipe mnist-torch7] [--data-dir DIR [--download]]
                    [--device cpu|cuda|auto] --epochs N --out RUN
    binarynet train --out RUN --resume [--epochs N] [--data-dir DIR] ...
    binarynet export RUN/best.pt MODEL.bnn
    binarynet export RUN/best.pt|MODEL.bnn OUT_DIR --format c [--name NAME]
    binarynet export RUN/best.pt|MODEL.bnn MODEL.onnx --format qonnx [--for finn]
    binarynet eval MODEL.bnn [--data-dir DIR] [--dataset mnist|cifar10|svhn]
    binarynet summary MODEL.bnn|RUN/best.pt [--json] [--input-shape C H W]
    binarynet plot RUN [--out DIR]
    binarynet bench MODEL.bnn [--batch N ...] [--threads T ...] [--repeat R] [--json]
    binarynet bench --gemm M N K [--threads T ...] [--repeat R] [--json]

Training commands import torch lazily, so the deployment commands stay torch-free. A user's
mistake (a bad value, a missing or wrong file, an OS error, a missing training extra) is one
line on stderr and exit status 2, never a traceback, and leaves no file half-written.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from binarynet import filekind
from binarynet.config import (
    COMPUTE_DTYPES,
    DATASETS,
    DEVICES,
    FLIP_AUGMENTABLE,
    MODELS,
    OPTIMIZERS,
    PAD_VALUES,
    PREPROCESS,
    RECIPES,
    TrainConfig,
)
from binarynet.pretrained import resolve as resolve_pretrained

__all__ = ["main"]

TRAINING_EXTRAS = ("torch", "matplotlib")
"""Modules of the ``train`` extra: a command that misses one says how to install them."""

# What `train --resume` may change: where the data is, how long and how the run goes on. Every
# other option must agree with the run's config.json (giving it again with the same value is
# fine); _RESUME_FIXED are TrainConfig fields, _MODEL_OPTIONS keys of its model_kwargs.
_RESUME_MAY_CHANGE = ("data_dir", "cache_dir", "epochs", "threads", "checkpoint_every", "device")
_RESUME_FIXED = (
    "model",
    "recipe",
    "dataset",
    "preprocess",
    "augment",
    "batch_size",
    "lr",
    "lr_final",
    "lr_halve_every",
    "optimizer",
    "seed",
    "compute_dtype",
)
_MODEL_OPTIONS = (
    "hidden",
    "depth",
    "width",
    "pad_value",
    "shift_bn",
    "stochastic",
    "dropout_in",
    "dropout_hidden",
)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text}")
    return value


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("binarynet")
    except metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
        from binarynet import __version__

        return __version__


def _model_file(text: str) -> str:
    """A model argument: a path as given, or ``pretrained:NAME`` → the shipped model's file."""
    try:
        return resolve_pretrained(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a binarized network",
        description="Train a Binarized Neural Network. Values not given come from --recipe "
        "(if any), then from the defaults of binarynet.config.TrainConfig.",
    )
    p.add_argument("--model", choices=tuple(MODELS), help="default: mnist-mlp")
    p.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        help="a preset of the paper's code (model, dataset, optimizer, schedule, ...)",
    )
    p.add_argument("--dataset", choices=DATASETS, help="default: mnist")
    p.add_argument("--data-dir", help="dataset directory (default: the bundled MNIST sample)")
    p.add_argument("--cache-dir", help="where to cache decoded images (the CIFAR-10 JPEG copy)")
    p.add_argument(
        "--preprocess",
        choices=PREPROCESS,
        help="colour images: pixels scaled to [-1, 1] (Theano) or GCN + ZCA (Torch7), 8-bit",
    )
    p.add_argument(
        "--download",
        action="store_true",
        help="download the MNIST files missing from --data-dir (MNIST only; checks their MD5s)",
    )
    p.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train on randomly shifted (4-pixel zero-padded crops) and left-right flipped "
        "copies of each batch; never at evaluation. Off in the paper and by default; only for "
        f"{', '.join(FLIP_AUGMENTABLE)} (a mirrored digit is another symbol)",
    )
    p.add_argument("--out", required=True, help="run directory (checkpoints, metrics, plots)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out with its saved configuration; only "
        + ", ".join("--" + o.replace("_", "-") for o in _RESUME_MAY_CHANGE)
        + " and --no-progress may change",
    )
    p.add_argument(
        "--init-from",
        metavar="CHECKPOINT",
        help="start from the model of another run's best.pt / last.pt (same model, dataset and "
        "preprocessing); optimizer, LR schedule and epochs start afresh",
    )
    p.add_argument(
        "--epochs",
        type=_positive_int,
        help="epochs to train in all (default: the recipe's, else 10); with --resume, the new "
        "total",
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        help="images per optimizer step, over all processes under torchrun (default: the "
        "recipe's, else 100)",
    )
    p.add_argument("--lr", type=float, help="base learning rate")
    p.add_argument("--lr-final", type=float, help="exponential decay to this LR over the run")
    p.add_argument("--lr-halve-every", type=_positive_int, help="halve the LR every k epochs")
    p.add_argument(
        "--optimizer", choices=OPTIMIZERS, help="adam (the Theano code) or shift-adamax (Torch7)"
    )
    p.add_argument("--seed", type=int, help="seed of the initial weights, order and draws")
    p.add_argument("--threads", type=_positive_int, help="torch CPU threads")
    p.add_argument(
        "--device",
        choices=DEVICES,
        help="where to train: cpu (default), cuda (an error when torch sees no GPU) or auto "
        "(cuda when available)",
    )
    p.add_argument(
        "--compute-dtype",
        choices=COMPUTE_DTYPES,
        help="dtype of the training matmuls (auto: bfloat16 where the CPU has fast bf16)",
    )
    p.add_argument("--hidden", type=_positive_int, help="MLP hidden width")
    p.add_argument("--depth", type=_positive_int, help="MLP hidden layers")
    p.add_argument("--width", type=float, help="ConvNet width multiplier")
    p.add_argument(
        "--pad-value",
        type=int,
        choices=PAD_VALUES,
        help="ConvNet: the value its binary convolutions pad their ±1 input with (0, as torch; "
        "-1 for FINN's XNOR hardware, whose streams have no 0; see docs/fpga.md)",
    )
    p.add_argument(
        "--shift-bn",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="shift-based batch norm (Algorithm 3) instead of the standard one",
    )
    p.add_argument(
        "--stochastic",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="stochastic binary hidden units while training (Eq. 2)",
    )
    p.add_argument("--dropout-in", type=float, help="MLP dropout probability of the input")
    p.add_argument("--dropout-hidden", type=float, help="MLP dropout probability of hidden units")
    p.add_argument(
        "--checkpoint-every",
        type=_seconds,
        metavar="SECONDS",
        help="seconds between mid-epoch checkpoints (default 300; 0: after every batch, slow; "
        "inf: at epoch ends only)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.resume and args.init_from:
        print(
            "error: --init-from starts a new run from another run's model; --resume continues "
            f"the run in {out}: give one of them",
            file=sys.stderr,
        )
        return 2
    _check_run_dir(out, args.resume)
    cfg = _resumed_config(args, out) if args.resume else _new_config(args)

    from binarynet.training.trainer import Trainer, load_splits

    splits = load_splits(cfg, download=args.download)
    # Built before anything is written: checks the device and that the model fits the data.
    trainer = Trainer(cfg, splits, out, progress=not args.no_progress)
    main_process = trainer.dist.is_main  # under torchrun, rank 0 alone prints
    if main_process:
        print(
            f"training {cfg.model} {cfg.model_kwargs} on {splits.name}: "
            f"{len(splits.train)} train / {len(splits.valid)} valid / {len(splits.test)} test "
            f"images"
        )
    summary = trainer.run(resume=args.resume)
    if summary["interrupted"]:
        return 130
    if main_process:
        print(
            f"best validation error {100 * summary['best_valid_error']:.2f}% at epoch "
            f"{summary['best_epoch']}; test error at that epoch: "
            f"{100 * summary['test_error_at_best_valid']:.2f}%  "
            f"({summary['train_seconds']:.0f} s, {summary['compute_dtype']} matmuls)"
        )
    return 0


def _absolute(path: str | None) -> str | None:
    """``path`` made absolute, so that config.json works from any working directory."""
    return None if path is None else os.path.abspath(os.path.expanduser(path))


def _check_run_dir(out: Path, resume: bool) -> None:
    """Refuse an ``--out`` that cannot become the run directory, before anything is read or
    written (a file, a path through a file, a folder we may not write in, a finished run, a
    non-empty folder that is not a run)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; expected a run directory (created if missing)")
    if resume:
        return  # _resumed_config requires its config.json
    if (out / "last.pt").exists():
        raise FileExistsError(
            f"{out} already holds a run (last.pt); continue it with --resume or choose another "
            "--out"
        )
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"--out {out}: {existing} is a file, not a directory")
    if existing == out and not _is_run(out):
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir())
        if entries:
            more = f" and {len(entries) - 5} more" if len(entries) > 5 else ""
            raise ValueError(
                f"--out {out} is not empty and is not a binarynet run (no run's config.json): it "
                f"holds {', '.join(entries[:5])}{more}; give a new or empty directory"
            )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "Permission denied (cannot write the run here)", out)


def _is_run(out: Path) -> bool:
    """Whether the directory ``out`` holds a binarynet run: a ``config.json`` that is a
    :class:`TrainConfig` (``binarynet train`` writes it first, before any checkpoint)."""
    try:
        saved = json.loads((out / "config.json").read_bytes())
        if not isinstance(saved, dict) or "model" not in saved:
            return False
        TrainConfig.from_dict(saved)
    except (OSError, ValueError):  # missing, unreadable, not JSON, not a TrainConfig
        return False
    return True


def _new_config(args: argparse.Namespace) -> TrainConfig:
    from binarynet.config import recipe_config

    if args.init_from is not None:  # a .bnn or a folder is refused before any data is read
        filekind.require(args.init_from, filekind.CHECKPOINT, "checkpoint")
    return recipe_config(
        args.recipe,
        model=args.model,
        model_kwargs={k: getattr(args, k) for k in _MODEL_OPTIONS if getattr(args, k) is not None},
        dataset=args.dataset,
        data_dir=_absolute(args.data_dir),
        cache_dir=_absolute(args.cache_dir),
        preprocess=args.preprocess,
        augment=args.augment,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_final=args.lr_final,
        lr_halve_every=args.lr_halve_every,
        optimizer=args.optimizer,
        seed=args.seed,
        threads=args.threads,
        compute_dtype=args.compute_dtype,
        checkpoint_every=args.checkpoint_every,
        device=args.device,
        init_from=_absolute(args.init_from),
    )


def _option(name: str, value: Any) -> str:
    """How ``value`` of the option ``name`` is written on the command line."""
    flag = name.replace("_", "-")
    if isinstance(value, bool):
        return f"--{flag}" if value else f"--no-{flag}"
    return f"--{flag} {value}"


def _resumed_config(args: argparse.Namespace, out: Path) -> TrainConfig:
    """The configuration saved in ``out/config.json`` with the options that may change on
    resume applied; ValueError naming every other option given with another value."""
    config_path = out / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"cannot resume: {config_path} does not exist")
    try:
        saved = json.loads(config_path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{config_path}: not valid JSON ({exc})") from None
    cfg = TrainConfig.from_dict(saved, str(config_path))
    differ = []
    for name in _RESUME_FIXED:
        given, saved_value = getattr(args, name), getattr(cfg, name)
        if given is not None and given != saved_value:
            differ.append(f"{_option(name, given)} (the run has {saved_value})")
    for name in _MODEL_OPTIONS:
        given, saved_value = getattr(args, name), cfg.model_kwargs.get(name, "its default")
        if given is not None and given != saved_value:
            differ.append(f"{_option(name, given)} (the run has {saved_value})")
    if differ:
        may = ", ".join("--" + name.replace("_", "-") for name in _RESUME_MAY_CHANGE)
        raise ValueError(
            f"--resume continues the run in {out} as {config_path} says; these options would "
            f"change it: {'; '.join(differ)}. On resume only {may} and --no-progress may change "
            "(start a new run with --init-from to change the others)"
        )
    changes = {k: getattr(args, k) for k in _RESUME_MAY_CHANGE if getattr(args, k) is not None}
    for name in ("data_dir", "cache_dir"):
        if name in changes:
            changes[name] = _absolute(changes[name])
    return dataclasses.replace(cfg, **changes)


EXPORT_FORMATS = ("bnn", "c", "qonnx")


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained model: .bnn for the engine, C for microcontrollers, QONNX for FPGAs",
        description="--format bnn (the default): write the model of a binarynet train checkpoint "
        "(best.pt or last.pt) as a .bnn file: packed sign bits, integer thresholds, the "
        "preprocessing it was trained behind. The engine (binarynet eval) runs it bit-exactly, "
        "without torch. --format c: write NAME.h and NAME.c into the directory OUT, "
        "self-contained C99 for microcontrollers (no heap, weights in flash), bit-exact with the "
        "engine. --format qonnx: write OUT as a QONNX graph for FINN (needs binarynet[qonnx]). "
        "For c and qonnx, MODEL may also be a .bnn file.",
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        type=_model_file,
        help="best.pt or last.pt of a training run (for --format c and qonnx also a .bnn file, "
        "or pretrained:NAME)",
    )
    p.add_argument(
        "out",
        metavar="OUT",
        help="the file to write (.bnn; .onnx for qonnx), or for --format c a directory",
    )
    p.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default="bnn",
        help="bnn: the engine's model file (default); c: C99 source for microcontrollers; "
        "qonnx: a QONNX graph for FINN",
    )
    p.add_argument(
        "--name",
        help="--format c: the C name of the model, prefix of NAME_predict, NAME.h ... "
        "(default: the model's name, e.g. mnist_mlp)",
    )
    p.add_argument(
        "--for",
        dest="target",
        choices=("qonnx", "finn"),
        default=None,
        help="--format qonnx: the reader, any QONNX reader (default) or FINN's compiler "
        "(the same graph, refused where FINN would compute something else)",
    )
    p.set_defaults(func=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from binarynet.graph.ops import Role

    if args.name is not None and args.format != "c":
        raise ValueError(f"--name is for --format c (C source), not --format {args.format}")
    if args.target is not None and args.format != "qonnx":
        raise ValueError(f"--for is for --format qonnx, not --format {args.format}")
    from binarynet import atomic

    atomic.check_target(args.out, directory=args.format == "c")  # before the model is read
    if args.format == "qonnx":
        return _cmd_export_qonnx(args)
    if args.format == "c":
        from binarynet.deploy import export_c

        source, paths = export_c(args.model, args.out, args.name)
        print(
            f"wrote {', '.join(str(p) for p in paths)}: {source.name}_predict(input, scores, "
            f"arena), input {source.input_bytes} bytes, {source.num_classes} classes, arena "
            f"{source.arena_bytes} bytes, {source.const_bytes / 1024:.1f} KiB of constants"
        )
        return 0
    from binarynet.export import export_checkpoint

    graph = export_checkpoint(args.model, args.out)
    layers = sum(op.role is Role.LAYER for op in graph.ops)
    size = Path(args.out).stat().st_size
    print(
        f"wrote {args.out}: {graph.provenance.get('model')} {graph.provenance.get('model_kwargs')}"
        f", {layers} binary layers, input uint8 {graph.input.layout} {list(graph.input.shape)}, "
        f"{graph.num_classes} classes, {size / 1e6:.2f} MB"
    )
    return 0


def _cmd_export_qonnx(args: argparse.Namespace) -> int:
    from pathlib import Path

    from binarynet.deploy import export_qonnx

    proto = export_qonnx(args.model, args.out, target=args.target or "qonnx")
    ops = sorted({node.op_type for node in proto.graph.node})
    shape = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    print(
        f"wrote {args.out}: QONNX graph ({', '.join(ops)}), input {shape} (uint8 values as "
        f"float32), {Path(args.out).stat().st_size / 1e6:.2f} MB"
    )
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="test error of a .bnn model on the engine (no torch)",
        description="Run a .bnn model on the XNOR-popcount engine over a dataset split and print "
        "its error rate. Needs neither torch nor a GPU.",
    )
    p.add_argument(
        "model",
        type=_model_file,
        help="a .bnn file from binarynet export, or pretrained:NAME (a shipped model)",
    )
    p.add_argument(
        "--data-dir", help="dataset directory (default: the bundled MNIST sample, for mnist)"
    )
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        help="default: the dataset the model was trained on (from the file), else mnist",
    )
    p.add_argument("--split", choices=["test", "valid", "train"], default="test")
    p.add_argument("--cache-dir", help="where to cache decoded images (the CIFAR-10 JPEG copy)")
    p.add_argument(
        "--download", action="store_true", help="download the MNIST files missing from --data-dir"
    )
    p.add_argument("--threads", type=_positive_int, help="kernel threads (default: all cores)")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    import time

    from binarynet import data as datasets
    from binarynet.backends import engine

    model = engine.load(args.model, threads=args.threads)
    dataset = args.dataset or model.graph.provenance.get("dataset") or "mnist"
    splits = datasets.load_dataset(
        dataset, args.data_dir, cache_dir=args.cache_dir, download=args.download
    )
    split = getattr(splits, args.split)
    if splits.n_classes != model.num_classes:
        raise ValueError(
            f"{args.model} has {model.num_classes} classes but {splits.name} has {splits.n_classes}"
        )
    images = _fit_images(split.images, tuple(model.input_shape), args.model, splits.name)
    start = time.perf_counter()
    predicted = model.predict(images)
    seconds = time.perf_counter() - start
    n = len(split)
    errors = int((predicted != split.labels).sum())
    from binarynet import _kernels
    from binarynet.backends.engine.kernels import threads_used

    kernel = model.kernel or _kernels.default_kernel()
    threads = threads_used(model.threads)
    name = model.graph.provenance.get("model") or Path(args.model).name
    print(
        f"{splits.name} {args.split} error: {100 * errors / max(n, 1):.2f}% ({errors} / {n}) "
        f"in {seconds:.2f} s ({n / max(seconds, 1e-9):.0f} images/s): {name}, kernel {kernel}, "
        f"{threads} thread{'' if threads == 1 else 's'}"
    )
    return 0


def _fit_images(images: Any, shape: tuple[int, ...], model: Any, dataset: str) -> Any:
    """The dataset's uint8 images in the model's input shape: as they are, with the channel
    axis of a 1-channel model added to grey images ([N, H, W] → [N, H, W, 1]), or flattened for a
    model that takes flat vectors of one image's pixels (grey images only: a colour image's
    pixel order differs from torch's flatten of (C, H, W)). Views, no copies."""
    have = tuple(images.shape[1:])
    if have == shape:
        return images
    grey = len(have) == 2 or (len(have) == 3 and have[-1] == 1)
    if grey and shape == (*have[:2], 1):
        return images.reshape(len(images), *shape)
    if grey and len(shape) == 1 and shape[0] == have[0] * have[1]:
        return images.reshape(len(images), shape[0])
    raise ValueError(
        f"{model} takes images of shape {list(shape)}, but {dataset}'s are {list(have)}"
    )


def _add_summary(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summary",
        help="what binarization buys: parameters, memory, MACs, energy, filter repetitions",
        description="Per layer: output shape, parameters by bit width, memory as float32 and as "
        "deployed, MACs split into binary (XNOR-popcount), 8-bit first-layer and float; totals, "
        "the compression ratio, an energy ESTIMATE per inference (Horowitz, ISSCC 2014, 45 nm) "
        "and the filter repetitions of the binary convolutions. A .bnn file is read without "
        "torch.",
    )
    p.add_argument(
        "model",
        type=_model_file,
        help="a .bnn file, a best.pt / last.pt checkpoint, or pretrained:NAME",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of the tables")
    p.add_argument(
        "--input-shape",
        type=_positive_int,
        nargs="+",
        metavar="N",
        help="per-example torch input shape, e.g. 3 32 32 (default: from the checkpoint or file)",
    )
    p.add_argument("--no-filters", action="store_true", help="skip the filter repetition counts")
    p.add_argument(
        "--batch",
        type=_positive_int,
        default=1,
        help="images per read of the weights in the energy estimate (default 1)",
    )
    p.set_defaults(func=_cmd_summary)


def _cmd_summary(args: argparse.Namespace) -> int:
    from binarynet.analysis.summary import summary

    s = summary(args.model, args.input_shape, filters=not args.no_filters, batch=args.batch)
    if args.json:
        print(json.dumps(s.to_dict(), indent=2))
    else:
        s.print()
    return 0


def _add_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="PNG figures of a training run",
        description="Write curves.png (learning curves), weights.png (latent weights per binary "
        "layer, from best.pt or last.pt) and sign_flips.png (signs flipped per epoch, when the "
        "run recorded them) for a binarynet train run directory.",
    )
    p.add_argument("run", help="the run directory (binarynet train --out)")
    p.add_argument("--out", help="where to write the PNG files (default: the run directory)")
    p.set_defaults(func=_cmd_plot)


def _cmd_plot(args: argparse.Namespace) -> int:
    from binarynet.training.plots import plot_run

    for figure, result in plot_run(args.run, args.out).items():
        print(f"{figure}: {result}")
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="latency, throughput and memory of a .bnn model (or of the binary GEMM) on this CPU",
        description="Time a .bnn model on the engine (no torch): per batch size and thread count, "
        "the median and 90th-percentile latency over timed calls after a warm-up, the throughput, "
        "the kernel variant and the peak memory (binarynet.analysis.bench says how it is "
        "measured). "
        "With --gemm M N K instead of a model: the raw binary GEMM, in binary MAC/s.",
    )
    p.add_argument(
        "model",
        nargs="?",
        type=_model_file,
        help="a .bnn file from binarynet export, or pretrained:NAME",
    )
    p.add_argument(
        "--gemm", nargs=3, type=_positive_int, metavar=("M", "N", "K"), help="time bgemm M×N×K"
    )
    p.add_argument("--batch", nargs="+", type=_positive_int, help="batch sizes (default: 1 64)")
    p.add_argument(
        "--threads", nargs="+", type=_positive_int, help="thread counts (default: 1 and all cores)"
    )
    p.add_argument("--repeat", type=_positive_int, default=20, help="timed calls (default 20)")
    p.add_argument("--warmup", type=_positive_int, default=3, help="untimed calls (default 3)")
    p.add_argument("--kernel", help="kernel variant (default: the best one for this CPU)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    from binarynet.analysis import bench

    if (args.model is None) == (args.gemm is None):
        raise ValueError("bench takes a MODEL.bnn or --gemm M N K (exactly one of them)")
    if args.gemm is not None and args.batch:
        raise ValueError("--batch is for a model; --gemm M N K sets the GEMM's rows with M")

    def progress(line: str) -> None:  # a long run's estimate and progress, beside the table
        print(line, file=sys.stderr, flush=True)

    if args.gemm is not None:
        m, n, k = args.gemm
        result = bench.bench_gemm(
            m, n, k, args.threads, args.repeat, args.warmup, args.kernel, progress=progress
        )
    else:
        batches = args.batch or (1, 64)
        result = bench.bench_model(
            args.model,
            batches,
            args.threads,
            args.repeat,
            args.warmup,
            args.kernel,
            progress=progress,
        )
    print(json.dumps(result.to_dict(), indent=2) if args.json else bench.format_result(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="binarynet", description="Binarized Neural Networks: train, export, deploy."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_export(sub)
    _add_eval(sub)
    _add_summary(sub)
    _add_plot(sub)
    _add_bench(sub)
    return parser


def _os_error(exc: OSError) -> str:
    """One line for an OSError: ``path: reason`` for the system's errors, else its message."""
    if exc.strerror and exc.filename is not None:
        where = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 else "")
        return f"{where}: {exc.strerror}"
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; a user's error is one line on stderr and exit status 2, Ctrl-C
    outside the training loop (which saves and stops by itself) is one line and 130."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"binarynet {args.command}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in TRAINING_EXTRAS:
            raise
        print(
            f"error: binarynet {args.command} needs the training extras ({exc.name} is not "
            "installed): pip install 'binarynet[train]'",
            file=sys.stderr,
        )
        return 2
    except ImportError as exc:  # an optional reader's dependency; its message says what to do
        if "pip install" not in str(exc):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {_os_error(exc)}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
