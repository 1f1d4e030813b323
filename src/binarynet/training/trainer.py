"""Training loop: epochs, evaluation, metrics, checkpoints and resume.

What a run is (:class:`TrainConfig`, the recipes, the registries of names) lives in the
torch-free :mod:`binarynet.config`; what a checkpoint holds, in
:mod:`binarynet.training.checkpoint`.

A run directory holds::

    config.json      the full configuration of the run
    metrics.jsonl    one JSON object per finished epoch (rewritten atomically each epoch)
    last.pt          everything needed to resume: model, optimizer, scheduler, RNG state, position
                     in the epoch, history; written at every epoch end, every
                     ``checkpoint_every`` seconds and on SIGINT/SIGTERM
    best.pt          the model at the best validation error so far (what the paper reports)
    curves.png       learning curves, drawn at the end
    result.json      summary: best epoch, its validation and test error, wall time

Every file is written atomically (:mod:`binarynet.atomic`). Shuffling draws from a generator
seeded by (seed, epoch) and everything else random (dropout, stochastic binarization) from torch's
global generator, whose state is checkpointed, so a resumed run ends with exactly the weights of
an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from binarynet import data as datasets
from binarynet.atomic import atomic_write_bytes
from binarynet.config import (
    COMPUTE_DTYPES,
    DATASETS,
    MODELS,
    OPTIMIZERS,
    RECIPES,
    TrainConfig,
    recipe_config,
)
from binarynet.data.preprocess import GCNZCA, PREPROCESSORS, PixelScaling, load_preprocessor
from binarynet.training.augment import augment
from binarynet.training.checkpoint import (
    checkpoint_state,
    load_checkpoint,
    load_model,
    preprocessor_state_to_torch,
    save_checkpoint,
)
from binarynet.training.distributed import Dist, setup
from binarynet.training.losses import square_hinge_loss
from binarynet.training.models import build_model, images_to_torch
from binarynet.training.nn import clip_weights_, set_compute_dtype, sync_batchnorm_
from binarynet.training.optim import ShiftAdaMax, param_groups
from binarynet.training.sign_flips import latent_signs, sign_flip_fractions

__all__ = [
    "COMPUTE_DTYPES",
    "DATASETS",
    "OPTIMIZERS",
    "RECIPES",
    "TrainConfig",
    "Trainer",
    "evaluate",
    "images_to_torch",
    "load_model",
    "preprocessor_state_to_torch",
    "recipe_config",
    "resolve_compute_dtype",
]
# TrainConfig, RECIPES, recipe_config and the registries live in binarynet.config (torch-free),
# load_model and preprocessor_state_to_torch in binarynet.training.checkpoint, images_to_torch in
# binarynet.training.models; they are re-exported here for code written against earlier versions.


def load_splits(cfg: TrainConfig, *, download: bool = False) -> datasets.Splits:
    """The dataset of ``cfg``: MNIST from ``data_dir`` (the bundled sample when None; the
    missing files downloaded there with ``download``), CIFAR-10 (python batches or the JPEG
    copy) or SVHN (.mat files) from ``data_dir``."""
    return datasets.load_dataset(
        cfg.dataset, cfg.data_dir, cache_dir=cfg.cache_dir, download=download
    )


def resolve_compute_dtype(name: str, device: torch.device) -> torch.dtype:
    """The dtype of the training matmuls for ``TrainConfig.compute_dtype`` ``name`` on
    ``device``: "auto" is bfloat16 on GPUs that support it and on CPUs where oneDNN has fast
    bf16 (AVX-512 BF16 or AMX), float32 elsewhere."""
    if name == "float32":
        return torch.float32
    if name == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    fast_bf16 = (
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )
    return torch.bfloat16 if fast_bf16 else torch.float32


def _labels_to_torch(labels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(labels).astype(np.int64))


@torch.no_grad()
def evaluate_sums(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000
) -> tuple[float, int]:
    """(summed square hinge loss, number of errors) of ``model`` in evaluation mode, on the
    model's device."""
    was_training = model.training
    model.eval()
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    loss_sum, errors = 0.0, 0
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device)
        y = labels[start : start + batch_size].to(device)
        scores = model(x)
        loss_sum += float(square_hinge_loss(scores, y)) * len(x)
        errors += int((scores.argmax(1) != y).sum())
    model.train(was_training)
    return loss_sum, errors


def evaluate(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000
) -> tuple[float, float]:
    """(mean square hinge loss, error rate) of ``model`` in evaluation mode."""
    loss_sum, errors = evaluate_sums(model, images, labels, batch_size)
    n = max(len(images), 1)
    return loss_sum / n, errors / n


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.lr, glorot=cfg.glorot_lr, pow2=cfg.glorot_pow2)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    return ShiftAdaMax(groups, lr=cfg.lr)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler | None:
    if cfg.lr_final is not None:
        gamma = (cfg.lr_final / cfg.lr) ** (1.0 / cfg.epochs)
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)
    if cfg.lr_halve_every is not None:
        return torch.optim.lr_scheduler.StepLR(optimizer, cfg.lr_halve_every, gamma=0.5)
    return None


def _require_same(
    saved: dict[str, Any], cfg: TrainConfig, keys: tuple[str, ...], what: str
) -> None:
    """Raise ValueError naming the first of ``keys`` where a checkpoint's config differs."""
    current = dataclasses.asdict(cfg)
    for key in keys:
        if saved.get(key) != current.get(key):
            raise ValueError(
                f"{what}: it was trained with {key}={saved.get(key)!r} "
                f"but this run has {key}={current.get(key)!r}"
            )


def _check_model_fits(model: nn.Module, name: str, splits: datasets.Splits) -> None:
    """Raise ValueError (before anything is written) unless ``model`` takes the images of
    ``splits`` and has one output per class: two training images through it in eval mode,
    which changes no state (no batch statistics, no dropout, no random draw)."""
    x = images_to_torch(splits.train.images[:2])
    device = next(model.parameters()).device
    shape = list(x.shape[1:])
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            scores = model(x.to(device))
    except RuntimeError:
        takes = list(MODELS[name].input_shape) if name in MODELS else "other"
        raise ValueError(
            f"model {name} does not fit the dataset {splits.name}: its images are "
            f"{shape} per example, the model takes {takes} (choose a model for the dataset)"
        ) from None
    finally:
        model.train(was_training)
    if scores.shape[1] != splits.n_classes:
        raise ValueError(
            f"model {name} has {scores.shape[1]} outputs but {splits.name} has "
            f"{splits.n_classes} classes"
        )


def _ddp_no_buffer_sync() -> dict[str, Any]:
    """DistributedDataParallel's switch for "do not broadcast buffers in forward" (synced BN
    keeps them identical): ``forward_sync_buffers`` where torch has it (it deprecated
    ``broadcast_buffers`` with a FutureWarning), ``broadcast_buffers`` before."""
    params = inspect.signature(nn.parallel.DistributedDataParallel).parameters
    if "forward_sync_buffers" in params:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(row) + "\n" for row in rows)
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


def _epoch_line(row: dict[str, Any]) -> str:
    return (
        f"epoch {row['epoch']:4d}  lr {row['lr']:.3g}  train loss {row['train_loss']:.4f} "
        f"err {100 * row['train_error']:.2f}%  valid err {100 * row['valid_error']:.2f}%  "
        f"test err {100 * row['test_error']:.2f}%  ({row['epoch_seconds']:.1f} s)"
    )


class _StopRequest:
    """Turns SIGINT / SIGTERM into a flag checked between batches (restored on exit)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Outside the main thread signal() raises ValueError: signals stay with their owner.
            with contextlib.suppress(ValueError):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:  # second Ctrl-C: stop right away
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Trainer:
    """Trains ``cfg`` on ``splits`` into ``out_dir``; ``run(resume=True)`` continues ``last.pt``.

    ``on_batch(trainer)``, if given, is called after every optimizer step (tests use it to
    interrupt a run at a chosen point).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        splits: datasets.Splits,
        out_dir: str | Path,
        progress: bool = True,
        on_batch: Callable[[Trainer], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.on_batch = on_batch
        self.splits = splits
        if len(splits.train) < 2:
            raise ValueError(f"the training split has {len(splits.train)} images; need at least 2")
        self.preprocessor: PixelScaling | GCNZCA | None = None
        self._train_images: np.ndarray | None = None  # uint8 NHWC, kept for augmentation
        self.dist: Dist = setup(cfg.device)
        self.progress = progress and self.dist.is_main  # one progress bar, not one per process
        if cfg.batch_size % self.dist.world_size:
            raise ValueError(
                f"the global batch size {cfg.batch_size} must be divisible by the number of "
                f"processes ({self.dist.world_size})"
            )
        torch.manual_seed(cfg.seed)  # the same initial model in every process
        self.model = build_model(cfg.model, **cfg.model_kwargs).to(self.dist.device)
        _check_model_fits(self.model, cfg.model, splits)
        torch.manual_seed(cfg.seed + self.dist.rank)  # dropout / stochastic units differ per rank
        self.compute_dtype = resolve_compute_dtype(cfg.compute_dtype, self.dist.device)
        set_compute_dtype(self.model, self.compute_dtype)
        self.train_model: nn.Module = self.model
        if self.dist.enabled:
            sync_batchnorm_(self.model)
            self.train_model = nn.parallel.DistributedDataParallel(
                self.model, **_ddp_no_buffer_sync()
            )
        self.optimizer = build_optimizer(self.model, cfg)
        self.epoch_signs = latent_signs(self.model)  # sign(W) at the last epoch boundary
        self.scheduler = build_scheduler(self.optimizer, cfg)
        self.epoch = 0  # completed epochs
        self.batch = 0  # next batch within the current epoch
        self.accum = {"loss_sum": 0.0, "errors": 0, "seen": 0}
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {}
        self.elapsed = 0.0
        self.stop = _StopRequest()

    # -- state ---------------------------------------------------------------------------------
    def _prepare_data(self, saved_preprocessor: dict[str, Any] | None) -> None:
        """Fit (or restore) the preprocessor on the training split, turn every split into the
        network's uint8 input once, and move it to torch tensors in the model's layout."""
        splits = self.splits
        train, valid, test = splits.train.images, splits.valid.images, splits.test.images
        if saved_preprocessor is not None:
            self.preprocessor = load_preprocessor(saved_preprocessor)
        elif self.cfg.preprocess is not None:
            self.preprocessor = PREPROCESSORS[self.cfg.preprocess]().fit(train)
        if self.preprocessor is not None:
            train, valid, test = (self.preprocessor.transform(x) for x in (train, valid, test))
        self._train_images = train if self.cfg.augment else None
        self.train_x, self.train_y = images_to_torch(train), _labels_to_torch(splits.train.labels)
        self.valid_x, self.valid_y = images_to_torch(valid), _labels_to_torch(splits.valid.labels)
        self.test_x, self.test_y = images_to_torch(test), _labels_to_torch(splits.test.labels)

    def _init_from_checkpoint(self, path: str | Path) -> None:
        """Start from the model weights (and fitted preprocessor) of another run's checkpoint.

        Only the network carries over: the optimizer, the LR schedule, the epoch count and the
        RNG start afresh from this run's configuration (fine-tuning, e.g. a second stage with
        augmentation or another schedule). The checkpoint must hold the same network on the
        same dataset behind the same preprocessing.
        """
        state = load_checkpoint(path)
        saved = state.get("config")
        if not isinstance(saved, dict) or "model_state" not in state:
            raise ValueError(f"{path} is not a binarynet training checkpoint (best.pt / last.pt)")
        keys = ("model", "model_kwargs", "dataset", "preprocess")
        _require_same(saved, self.cfg, keys, f"cannot initialise from {path}")
        self._prepare_data(state.get("preprocess"))
        self.model.load_state_dict(state["model_state"])
        self.epoch_signs = latent_signs(self.model)

    def state_dict(self) -> dict[str, Any]:
        """What ``last.pt`` holds: the model part
        (:func:`binarynet.training.checkpoint.checkpoint_state`) and everything resuming needs.
        Collective: every process contributes its RNG state."""
        training = {
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": self.scheduler.state_dict() if self.scheduler else None,
            "rng_state": self.dist.gather(torch.get_rng_state()),  # one per process
            "batch": self.batch,
            "accum": dict(self.accum),
            "history": list(self.history),
            "best": dict(self.best),
            "elapsed": self.elapsed,
            "epoch_signs": {k: torch.from_numpy(v) for k, v in self.epoch_signs.items()},
            "torch_version": str(torch.__version__),
        }
        return checkpoint_state(
            dataclasses.asdict(self.cfg),
            self.model,
            self.preprocessor,
            epoch=self.epoch,
            training=training,
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        keys = ("model", "model_kwargs", "optimizer", "batch_size", "dataset", "seed", "preprocess")
        _require_same(state["config"], self.cfg, keys, "cannot resume from the checkpoint")
        self.model.load_state_dict(state["model_state"])
        self.optimizer.load_state_dict(state["optimizer_state"])
        if self.scheduler is not None and state["scheduler_state"] is not None:
            self.scheduler.load_state_dict(state["scheduler_state"])
        rng = state["rng_state"]
        rng = rng if isinstance(rng, list) else [rng]
        torch.set_rng_state(rng[self.dist.rank] if self.dist.rank < len(rng) else rng[0])
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self.accum = dict(state["accum"])
        self.history = list(state["history"])
        self.best = dict(state["best"])
        self.elapsed = float(state["elapsed"])
        saved_signs = state.get("epoch_signs")  # absent in checkpoints of older versions
        if saved_signs is not None:
            self.epoch_signs = {k: v.numpy() for k, v in saved_signs.items()}
        else:
            self.epoch_signs = latent_signs(self.model)

    def _save_last(self) -> None:
        state = self.state_dict()  # collective: every process contributes its RNG state
        if self.dist.is_main:
            save_checkpoint(self.out_dir / "last.pt", state)

    # -- loop ----------------------------------------------------------------------------------
    def _epoch_order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.train_x), generator=g)

    def _batch(self, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.cfg.batch_size
        idx = order[self.batch * b : (self.batch + 1) * b]
        if self._train_images is None:
            images, labels = self.train_x[idx], self.train_y[idx]
        else:
            # Augmentation draws from a generator seeded by (seed, epoch, batch): resumable, and
            # the same in every process, whatever the number of processes.
            rng = np.random.default_rng((self.cfg.seed, self.epoch, self.batch))
            images = images_to_torch(augment(self._train_images[idx.numpy()], rng))
            labels = self.train_y[idx]
        share = b // self.dist.world_size  # this process's contiguous part of the global batch
        part = slice(self.dist.rank * share, (self.dist.rank + 1) * share)
        device = self.dist.device
        return images[part].to(device), labels[part].to(device)

    def _num_batches(self) -> int:
        # Full global batches only (as the paper's code): the incomplete last one is dropped.
        return len(self.train_x) // self.cfg.batch_size

    def _train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int, int]:
        """One optimizer step on this process's share; returns its (loss sum, errors, images)."""
        scores = self.train_model(x)
        loss = square_hinge_loss(scores, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        clip_weights_(self.model)
        errors = int((scores.detach().argmax(1) != y).sum())
        return float(loss.detach()) * len(x), errors, len(x)

    def _step_and_agree(self, order: torch.Tensor, want_save: bool) -> tuple[bool, bool]:
        """Train one global batch, add the global metrics, and agree across processes on
        whether to stop (a signal reached any process) and to checkpoint (rank 0's clock)."""
        loss_sum, n_errors, n_seen = self._train_step(*self._batch(order))
        errors, seen = float(n_errors), float(n_seen)
        stop = float(self.stop.signal is not None)
        save = float(want_save and self.dist.is_main)
        loss_sum, errors, seen, stop, save = self.dist.all_reduce_sum(
            [loss_sum, errors, seen, stop, save]
        )
        self.accum["loss_sum"] += loss_sum
        self.accum["errors"] += int(errors)
        self.accum["seen"] += int(seen)
        return stop > 0, save > 0

    def _evaluate(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
        """Loss and error on a split, each process evaluating its contiguous shard."""
        n, world, rank = len(images), self.dist.world_size, self.dist.rank
        lo, hi = n * rank // world, n * (rank + 1) // world
        sums = evaluate_sums(self.model, images[lo:hi], labels[lo:hi], self.cfg.eval_batch_size)
        loss_sum, errors = self.dist.all_reduce_sum(list(sums))
        return loss_sum / max(n, 1), errors / max(n, 1)

    def _finish_epoch(self, epoch_seconds: float) -> dict[str, Any]:
        eval_start = time.monotonic()
        valid_loss, valid_err = self._evaluate(self.valid_x, self.valid_y)
        test_loss, test_err = self._evaluate(self.test_x, self.test_y)
        signs = latent_signs(self.model)
        flips = sign_flip_fractions(self.epoch_signs, signs)
        self.epoch_signs = signs
        self.elapsed += time.monotonic() - eval_start
        seen = max(self.accum["seen"], 1)
        row = {
            "epoch": self.epoch + 1,
            "lr": self.optimizer.param_groups[-1]["lr"],
            "train_loss": self.accum["loss_sum"] / seen,
            "train_error": self.accum["errors"] / seen,
            "valid_loss": valid_loss,
            "valid_error": valid_err,
            "test_loss": test_loss,
            "test_error": test_err,
            "epoch_seconds": epoch_seconds + time.monotonic() - eval_start,
            "elapsed_seconds": self.elapsed,
            "sign_flips": flips,  # per binary layer: fraction of sign(W) changed this epoch
        }
        self.history.append(row)
        if not self.best or valid_err <= self.best["valid_error"]:
            self.best = {k: row[k] for k in ("epoch", "valid_error", "test_error")}
        if self.best["epoch"] == row["epoch"] and self.dist.is_main:
            state = checkpoint_state(
                dataclasses.asdict(self.cfg),
                self.model,
                self.preprocessor,
                epoch=row["epoch"],
                metrics=row,
            )
            save_checkpoint(self.out_dir / "best.pt", state)
        if self.scheduler is not None:
            self.scheduler.step()
        self.epoch += 1
        self.batch = 0
        self.accum = {"loss_sum": 0.0, "errors": 0, "seen": 0}
        self._save_last()
        if self.dist.is_main:
            _write_jsonl(self.out_dir / "metrics.jsonl", self.history)
        return row

    def run(self, resume: bool = False) -> dict[str, Any]:
        """Train until ``cfg.epochs`` epochs are done (or a stop signal); returns the summary."""
        cfg = self.cfg
        if resume:
            state = load_checkpoint(self.out_dir / "last.pt")
            self._prepare_data(state.get("preprocess"))
            self.load_state_dict(state)
            for stale in self.out_dir.glob(".*.tmp"):  # partial writes of a killed run
                stale.unlink(missing_ok=True)
        elif (self.out_dir / "last.pt").exists() and self.dist.is_main:
            raise FileExistsError(
                f"{self.out_dir} already holds a run (last.pt); pass resume=True (--resume) to "
                "continue it or choose another output directory"
            )
        elif cfg.init_from is not None:
            self._init_from_checkpoint(cfg.init_from)
        else:
            self._prepare_data(None)
        # Created only now: a run that fails to start (a checkpoint of another network, data
        # the preprocessor cannot fit) leaves no empty run directory behind.
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.dist.is_main:
            _write_json(self.out_dir / "config.json", dataclasses.asdict(cfg))
        previous_threads = torch.get_num_threads()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        try:
            with self.stop:
                interrupted = self._loop()
        finally:
            torch.set_num_threads(previous_threads)
        return self._summary(interrupted)

    def _loop(self) -> bool:
        cfg = self.cfg
        num_batches = self._num_batches()
        if num_batches == 0:
            raise ValueError(
                f"the training split ({len(self.train_x)} images) is smaller than one batch "
                f"({cfg.batch_size})"
            )
        self.model.train()
        last_save = time.monotonic()
        while self.epoch < cfg.epochs:
            order = self._epoch_order(self.epoch)
            epoch_start = time.monotonic()
            bar = tqdm(
                total=num_batches,
                initial=self.batch,
                desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
                disable=not self.progress,
                leave=False,
                dynamic_ncols=True,
            )
            while self.batch < num_batches:
                t0 = time.monotonic()
                want_save = time.monotonic() - last_save > cfg.checkpoint_every
                stop, save = self._step_and_agree(order, want_save)
                self.elapsed += time.monotonic() - t0
                self.batch += 1
                bar.update(1)
                if self.batch % 10 == 0 or self.batch == num_batches:
                    seen = max(self.accum["seen"], 1)
                    bar.set_postfix(
                        loss=f"{self.accum['loss_sum'] / seen:.4f}",
                        err=f"{100 * self.accum['errors'] / seen:.2f}%",
                    )
                if self.on_batch is not None:
                    self.on_batch(self)
                    stop = stop or self.stop.signal is not None
                if stop:
                    bar.close()
                    self._save_last()
                    self._say(
                        f"stopped by signal {self.stop.signal} at epoch {self.epoch + 1}, batch "
                        f"{self.batch}/{num_batches}; state saved to {self.out_dir / 'last.pt'} "
                        "(continue with --resume)"
                    )
                    return True
                if save and self.batch < num_batches:
                    self._save_last()
                    last_save = time.monotonic()
            bar.close()
            row = self._finish_epoch(time.monotonic() - epoch_start)
            last_save = time.monotonic()
            self._say(_epoch_line(row))  # one line per epoch, with or without the bar
            # A signal that arrived during the end-of-epoch evaluation stops here: last.pt was
            # just written at the epoch boundary.
            (stop_votes,) = self.dist.all_reduce_sum([float(self.stop.signal is not None)])
            if stop_votes and self.epoch < cfg.epochs:
                self._say(
                    f"stopped by a signal after epoch {self.epoch}; state saved to "
                    f"{self.out_dir / 'last.pt'} (continue with --resume)"
                )
                return True
        return False

    def _say(self, line: str) -> None:
        """Print ``line`` once: from rank 0 only under torchrun (tqdm-safe)."""
        if self.dist.is_main:
            tqdm.write(line)

    def _summary(self, interrupted: bool) -> dict[str, Any]:
        summary = {
            "recipe": self.cfg.recipe,
            "model": self.cfg.model,
            "epochs_done": self.epoch,
            "interrupted": interrupted,
            "best_epoch": self.best.get("epoch"),
            "best_valid_error": self.best.get("valid_error"),
            "test_error_at_best_valid": self.best.get("test_error"),
            "train_seconds": self.elapsed,
            "compute_dtype": str(self.compute_dtype).removeprefix("torch."),
        }
        if not interrupted and self.dist.is_main:
            _write_json(self.out_dir / "result.json", summary)
            if self.history:
                from binarynet.training.plots import plot_learning_curves

                plot_learning_curves(self.history, self.out_dir / "curves.png")
        return summary
