"""The ``binarynet`` command line.

    binarynet train --model mnist-mlp [--recipe mnist-torch7] [--data-dir DIR] --epochs N --out RUN
    binarynet train --out RUN --resume
    binarynet export RUN/best.pt MODEL.bnn
    binarynet eval MODEL.bnn [--data-dir DIR] [--dataset mnist|cifar10|svhn]
    binarynet summary MODEL.bnn|RUN/best.pt [--json] [--input-shape C H W]
    binarynet plot RUN [--out DIR]
    binarynet bench MODEL.bnn [--batch N ...] [--threads T ...] [--repeat R] [--json]
    binarynet bench --gemm M N K [--threads T ...] [--repeat R] [--json]

Training commands import torch lazily, so the deployment commands stay torch-free.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from binarynet.config import COMPUTE_DTYPES, DATASETS, MODELS, OPTIMIZERS, PREPROCESS, RECIPES

__all__ = ["main"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


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
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random crops (4-pixel padding) and horizontal flips (off in the paper)",
    )
    p.add_argument("--out", required=True, help="run directory (checkpoints, metrics, plots)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--init-from",
        metavar="CHECKPOINT",
        help="start from the model of another run's best.pt / last.pt (same model, dataset and "
        "preprocessing); optimizer, LR schedule and epochs start afresh",
    )
    p.add_argument("--epochs", type=_positive_int)
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--lr", type=float, help="base learning rate")
    p.add_argument("--lr-final", type=float, help="exponential decay to this LR over the run")
    p.add_argument("--lr-halve-every", type=_positive_int, help="halve the LR every k epochs")
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=_positive_int, help="torch CPU threads")
    p.add_argument(
        "--compute-dtype",
        choices=COMPUTE_DTYPES,
        help="dtype of the training matmuls (auto: bfloat16 where the CPU has fast bf16)",
    )
    p.add_argument("--hidden", type=_positive_int, help="MLP hidden width")
    p.add_argument("--depth", type=_positive_int, help="MLP hidden layers")
    p.add_argument("--width", type=float, help="ConvNet width multiplier")
    p.add_argument("--shift-bn", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--stochastic", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--dropout-in", type=float)
    p.add_argument("--dropout-hidden", type=float)
    p.add_argument("--checkpoint-every", type=float, help="seconds between mid-epoch checkpoints")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from binarynet.config import TrainConfig, recipe_config
    from binarynet.train import Trainer, load_splits

    out = Path(args.out)
    if args.resume and args.init_from:
        print(
            "error: --init-from starts a new run from another run's model; --resume continues "
            f"the run in {out}: give one of them",
            file=sys.stderr,
        )
        return 2
    if args.resume:
        config_path = out / "config.json"
        if not config_path.is_file():
            print(f"error: cannot resume: {config_path} does not exist", file=sys.stderr)
            return 2
        saved = json.loads(config_path.read_text())
        # What may change on resume: how long to train, and how (threads, progress bar).
        if args.epochs:
            saved["epochs"] = args.epochs
        if args.threads:
            saved["threads"] = args.threads
        cfg = TrainConfig(**saved)
    else:
        model_kwargs = {
            k: v
            for k, v in {
                "hidden": args.hidden,
                "depth": args.depth,
                "width": args.width,
                "shift_bn": args.shift_bn,
                "stochastic": args.stochastic,
                "dropout_in": args.dropout_in,
                "dropout_hidden": args.dropout_hidden,
            }.items()
            if v is not None
        }
        cfg = recipe_config(
            args.recipe,
            model=args.model,
            model_kwargs=model_kwargs,
            dataset=args.dataset,
            data_dir=args.data_dir,
            cache_dir=args.cache_dir,
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
            init_from=args.init_from,
        )
    splits = load_splits(cfg)
    print(
        f"training {cfg.model} {cfg.model_kwargs} on {splits.name}: "
        f"{len(splits.train)} train / {len(splits.valid)} valid / {len(splits.test)} test images"
    )
    summary = Trainer(cfg, splits, out, progress=not args.no_progress).run(resume=args.resume)
    if summary["interrupted"]:
        return 130
    print(
        f"best validation error {100 * summary['best_valid_error']:.2f}% at epoch "
        f"{summary['best_epoch']}; test error at that epoch: "
        f"{100 * summary['test_error_at_best_valid']:.2f}%  "
        f"({summary['train_seconds']:.0f} s, {summary['compute_dtype']} matmuls)"
    )
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained checkpoint to a .bnn model file",
        description="Write the model of a binarynet train checkpoint (best.pt or last.pt) as a "
        ".bnn file: packed sign bits, integer thresholds, the preprocessing it was trained "
        "behind. The engine (binarynet eval) runs it bit-exactly, without torch.",
    )
    p.add_argument("checkpoint", help="best.pt or last.pt of a training run")
    p.add_argument("out", help="the .bnn file to write")
    p.set_defaults(func=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from binarynet.export import export_checkpoint
    from binarynet.ops import Role

    graph = export_checkpoint(args.checkpoint, args.out)
    layers = sum(op.role is Role.LAYER for op in graph.ops)
    size = Path(args.out).stat().st_size
    print(
        f"wrote {args.out}: {graph.provenance.get('model')} {graph.provenance.get('model_kwargs')}"
        f", {layers} binary layers, input uint8 {graph.input.layout} {list(graph.input.shape)}, "
        f"{graph.num_classes} classes, {size / 1e6:.2f} MB"
    )
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="test error of a .bnn model on the engine (no torch)",
        description="Run a .bnn model on the XNOR-popcount engine over a dataset split and print "
        "its error rate. Needs neither torch nor a GPU.",
    )
    p.add_argument("model", help="a .bnn file from binarynet export")
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
    p.add_argument("--threads", type=_positive_int, help="kernel threads (default: all cores)")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    import time

    from binarynet import data as datasets
    from binarynet import engine

    model = engine.load(args.model, threads=args.threads)
    dataset = args.dataset or model.graph.provenance.get("dataset") or "mnist"
    splits = datasets.load_dataset(dataset, args.data_dir, cache_dir=args.cache_dir)
    split = getattr(splits, args.split)
    if splits.n_classes != model.num_classes:
        raise ValueError(
            f"{args.model} has {model.num_classes} classes but {splits.name} has {splits.n_classes}"
        )
    start = time.perf_counter()
    predicted = model.predict(split.images)
    seconds = time.perf_counter() - start
    n = len(split)
    errors = int((predicted != split.labels).sum())
    print(
        f"{splits.name} {args.split} error: {100 * errors / max(n, 1):.2f}% ({errors} / {n}) "
        f"in {seconds:.2f} s ({n / max(seconds, 1e-9):.0f} images/s) with {model!r}"
    )
    return 0


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
    p.add_argument("model", help="a .bnn file, or a best.pt / last.pt checkpoint")
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
    from binarynet.summary import summary

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
    from binarynet.plots import plot_run

    for figure, result in plot_run(args.run, args.out).items():
        print(f"{figure}: {result}")
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="latency, throughput and memory of a .bnn model (or of the binary GEMM) on this CPU",
        description="Time a .bnn model on the engine (no torch): per batch size and thread count, "
        "the median and 90th-percentile latency over timed calls after a warm-up, the throughput, "
        "the kernel variant and the peak memory (binarynet.bench says how it is measured). "
        "With --gemm M N K instead of a model: the raw binary GEMM, in binary MAC/s.",
    )
    p.add_argument("model", nargs="?", help="a .bnn file from binarynet export")
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
    from binarynet import bench

    if (args.model is None) == (args.gemm is None):
        raise ValueError("bench takes a MODEL.bnn or --gemm M N K (exactly one of them)")
    if args.gemm is not None and args.batch:
        raise ValueError("--batch is for a model; --gemm M N K sets the GEMM's rows with M")
    if args.gemm is not None:
        m, n, k = args.gemm
        result = bench.bench_gemm(m, n, k, args.threads, args.repeat, args.warmup, args.kernel)
    else:
        batches = args.batch or (1, 64)
        result = bench.bench_model(
            args.model, batches, args.threads, args.repeat, args.warmup, args.kernel
        )
    print(json.dumps(result.to_dict(), indent=2) if args.json else bench.format_result(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="binarynet", description="Binarized Neural Networks: train, export, deploy."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_export(sub)
    _add_eval(sub)
    _add_summary(sub)
    _add_plot(sub)
    _add_bench(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
