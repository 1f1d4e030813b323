"""Data-parallel training with PyTorch's own machinery (``torchrun`` + DistributedDataParallel).

``binarynet train`` started by ``torchrun --nproc_per_node N`` (which sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``) joins a process group (gloo on CPU, NCCL on CUDA) and:

- keeps ``--batch-size`` the **global** batch: each of the N processes takes its contiguous
  1/N of every global batch (the batch size must be divisible by N), so the learning rate, the
  schedule (per epoch) and the number of steps per epoch do not depend on N;
- averages gradients with DistributedDataParallel (each process's loss is the mean over its
  share, so the average is the global mean);
- computes batch-norm statistics over the global batch (``binarynet.training.nn.sync_batchnorm_``:
sums
  all-reduced with a differentiable all-reduce), so the forward pass, the running statistics and
  therefore every process's model are those of one process on the global batch; latent-weight
  clipping then acts on identical weights and keeps them identical;
- reduces the training metrics and shards evaluation, writes checkpoints and metrics from rank 0
  only (with every rank's RNG state), and stops all ranks at the same batch on a signal.

A checkpoint from an N-process run resumes in a run with any number of processes (the model,
optimizer and position do not depend on N; rank r restores RNG state r when it exists).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["Dist", "setup", "teardown"]


@dataclass(frozen=True)
class Dist:
    """Where this process stands: its rank among ``world_size`` and its device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Sum a few numbers over all processes (identity in a single process)."""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order (``[obj]`` in a single process)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        why = (
            f"this torch ({torch.__version__}) is built without CUDA"
            if torch.version.cuda is None
            else "torch sees no CUDA GPU (torch.cuda.is_available() is False)"
        )
        raise ValueError(f"device 'cuda' (--device cuda) was asked for but {why}; use cpu or auto")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {name!r}")
    return torch.device(name)


def setup(device: str = "cpu") -> Dist:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    kind = _resolve_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if kind.type == "cuda" else "gloo")
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1
    if kind.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        kind = torch.device("cuda", local)
    return Dist(rank=rank, world_size=world, device=kind)


def teardown() -> None:
    """Leave the process group (if one was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
