"""The paper's Torch7-style MNIST MLP: accuracy on full MNIST, and training speed vs float32.

    python benchmarks/mnist_mlp.py speed [--hidden 2048] [--batches 100] [--rounds 3]
    python benchmarks/mnist_mlp.py train --data-dir ../shared/data/mnist [--epochs 100] [--out DIR]

``speed`` times training steps of three networks of the same shape (784 → 3 × hidden → 10,
batch 100) side by side, in interleaved rounds so that machine noise hits all of them alike:

    binary-bf16          BinaryLinear + shift BN + stochastic binary units + shift AdaMax,
                         matmuls in bfloat16 (±1 exact; fast only on CPUs with AVX-512 BF16 or
                         AMX: ``--compute-dtype auto`` picks it there)
    binary-fp32          the same with float32 matmuls (what ``auto`` picks elsewhere)
    binary-fp32-unfused  binary-fp32 with ShiftAdaMax(fused=False): the update as torch ops
    float32-adam         nn.Linear + ExactBatchNorm1d + ReLU, torch.optim.Adam (its default
                         implementation), float32: the baseline of the ratios
    float32-adam-fused   the same with Adam(fused=True), torch's one-pass CPU Adam

and reports the median time per step and per epoch (50 000 images), and which compute dtype
``--compute-dtype auto`` picks on this CPU. ``train`` runs the
mnist-torch7 recipe with :class:`binarynet.training.trainer.Trainer` (resumable: rerun the same
command after an interruption) and reports the test error at the best validation epoch, per-epoch
errors and the wall time. Both print a table and write JSON to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from binarynet.training.losses import square_hinge_loss
from binarynet.training.models import float_mlp, mnist_mlp
from binarynet.training.nn import clip_weights_, set_compute_dtype
from binarynet.training.optim import ShiftAdaMax, param_groups
from binarynet.training.trainer import resolve_compute_dtype

RESULTS = Path(__file__).resolve().parent / "results"
TRAIN_IMAGES = 50_000


def _networks(hidden: int) -> dict[str, tuple[torch.nn.Module, torch.optim.Optimizer, bool]]:
    nets = {}
    variants = (
        ("binary-bf16", torch.bfloat16, None),
        ("binary-fp32", torch.float32, None),
        ("binary-fp32-unfused", torch.float32, False),
    )
    for name, dtype, fused in variants:
        model = set_compute_dtype(mnist_mlp(hidden, 3, shift_bn=True, stochastic=True), dtype)
        opt = ShiftAdaMax(param_groups(model, 2.0**-10, pow2=True), fused=fused)
        nets[name] = (model, opt, True)
    model = float_mlp(hidden, 3)
    nets["float32-adam"] = (model, torch.optim.Adam(model.parameters(), lr=1e-3), False)
    model = float_mlp(hidden, 3)
    adam = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    nets["float32-adam-fused"] = (model, adam, False)
    return nets


def _time_steps(model, optimizer, clip, x, y, steps: int) -> float:
    model.train()
    start = time.perf_counter()
    for i in range(steps):
        xb, yb = x[i % len(x)], y[i % len(y)]
        loss = square_hinge_loss(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if clip:
            clip_weights_(model)
    return (time.perf_counter() - start) / steps


def speed(args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    x = [
        torch.randint(0, 256, (args.batch, 28, 28), dtype=torch.uint8, generator=gen)
        for _ in range(8)
    ]
    y = [torch.randint(0, 10, (args.batch,), generator=gen) for _ in range(8)]
    nets = _networks(args.hidden)
    for model, opt, clip in nets.values():  # warm-up: allocator, oneDNN primitive caches
        _time_steps(model, opt, clip, x, y, 5)
    samples: dict[str, list[float]] = {name: [] for name in nets}
    for _ in range(args.rounds):
        for name, (model, opt, clip) in nets.items():
            samples[name].append(_time_steps(model, opt, clip, x, y, args.batches))
    steps_per_epoch = TRAIN_IMAGES // args.batch
    base = statistics.median(samples["float32-adam"])
    fused = statistics.median(samples["float32-adam-fused"])
    auto = resolve_compute_dtype("auto", torch.device("cpu"))
    rows = []
    print(
        f"\nMNIST MLP 784-{args.hidden}x3-10, batch {args.batch}, "
        f"{torch.get_num_threads()} threads, median of {args.rounds} rounds × {args.batches} steps"
    )
    print(f"training picks {auto} on this CPU (--compute-dtype auto)")
    print(f"{'network':<21}{'ms/step':>9}{'s/epoch':>9}{'vs float32-adam':>17}{'vs fused':>10}")
    for name, times in samples.items():
        step = statistics.median(times)
        rows.append(
            {
                "network": name,
                "seconds_per_step": step,
                "seconds_per_epoch": step * steps_per_epoch,
                "speedup_vs_float32": base / step,
                "speedup_vs_float32_fused": fused / step,
                "all_rounds": times,
            }
        )
        print(
            f"{name:<21}{1e3 * step:>9.1f}{step * steps_per_epoch:>9.1f}"
            f"{base / step:>16.2f}×{fused / step:>9.2f}×"
        )
    return {
        "benchmark": "mnist_mlp_speed",
        "hidden": args.hidden,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "auto_compute_dtype": str(auto),
        "rows": rows,
    }


def train(args: argparse.Namespace) -> dict:
    from binarynet.data import load_mnist
    from binarynet.training.trainer import Trainer, recipe_config

    cfg = recipe_config(
        "mnist-torch7",
        data_dir=args.data_dir,
        epochs=args.epochs,
        lr_halve_every=args.halve_every,
        seed=args.seed,
        threads=args.threads,
        model_kwargs={"hidden": args.hidden, "stochastic": not args.deterministic},
    )
    out = Path(args.out)
    trainer = Trainer(cfg, load_mnist(args.data_dir), out, progress=not args.no_progress)
    summary = trainer.run(resume=(out / "last.pt").exists())
    print(f"\n{'epoch':>5}{'train err %':>13}{'valid err %':>13}{'test err %':>12}{'wall s':>9}")
    for row in trainer.history:
        print(
            f"{row['epoch']:>5}{100 * row['train_error']:>13.2f}{100 * row['valid_error']:>13.2f}"
            f"{100 * row['test_error']:>12.2f}{row['elapsed_seconds']:>9.0f}"
        )
    print(
        f"\ntest error at the best validation epoch ({summary['best_epoch']}): "
        f"{100 * summary['test_error_at_best_valid']:.2f}%  "
        f"(wall time {summary['train_seconds'] / 60:.1f} min)"
    )
    return {
        "benchmark": "mnist_mlp_train",
        "config": trainer.state_dict()["config"],
        "summary": summary,
        "history": trainer.history,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("speed", help="training step time, binary vs float32")
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--batches", type=int, default=60, help="steps per timing round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p = sub.add_parser("train", help="train the Torch7-style MLP on full MNIST")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--halve-every", type=int, default=None)
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--deterministic", action="store_true", help="deterministic hidden units")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="runs/bench-mnist-mlp")
    p.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    result = speed(args) if args.command == "speed" else train(args)
    result.update(
        {
            "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"mnist_mlp_{args.command}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
