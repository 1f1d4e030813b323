"""Killing `binarynet train` never corrupts a checkpoint, and --resume ends where an
uninterrupted run ends (SIGKILL during an epoch and during a checkpoint write; Ctrl-C)."""

import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from binarynet.training.checkpoint import load_checkpoint

ARGS = [
    "train",
    "--hidden",
    "24",
    "--depth",
    "1",
    "--epochs",
    "2",
    "--batch-size",
    "400",
    "--lr-halve-every",
    "1",
    "--stochastic",
    "--dropout-hidden",
    "0.2",
    "--seed",
    "5",
    "--compute-dtype",
    "float32",
    "--checkpoint-every",
    "0",
    "--no-progress",
    "--threads",
    "1",
]

# Runs the CLI in a child process after patching in a fault: `die_at_batch` SIGKILLs the process
# right after training batch N (counted over the whole run); `die_in_write` SIGKILLs it in the
# middle of writing checkpoint number N (after half of the bytes reached the temporary file).
RUNNER = textwrap.dedent("""
    import os, signal, sys
    import binarynet.training.checkpoint as ckpt
    import binarynet.training.trainer as train
    from binarynet.cli import main

    mode, n = sys.argv[1], int(sys.argv[2])
    counter = {"batches": 0, "writes": 0}

    if mode == "die_at_batch":
        step = train.Trainer._train_step
        def killing_step(self, x, y):
            result = step(self, x, y)
            counter["batches"] += 1
            if counter["batches"] == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        train.Trainer._train_step = killing_step
    elif mode == "die_in_write":
        save = ckpt.torch.save
        def half_save(obj, f):
            counter["writes"] += 1
            if counter["writes"] == n:
                import io
                buf = io.BytesIO()
                save(obj, buf)
                f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            save(obj, f)
        ckpt.torch.save = half_save
    sys.exit(main(sys.argv[3:]))
""")


def run_cli(args, fault=("none", 0)):
    cmd = [sys.executable, "-c", RUNNER, fault[0], str(fault[1]), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    done = run_cli([*ARGS, "--out", str(out)])
    assert done.returncode == 0, done.stderr
    return load_checkpoint(out / "last.pt")["model_state"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize(
    "fault",
    # 8 000 sample images / batch 400 = 20 batches per epoch. With --checkpoint-every 0, last.pt
    # is written after batches 1..19 (writes 1..19), then best.pt (20) and last.pt (21) at the
    # end of epoch 1.
    [("die_at_batch", 7), ("die_at_batch", 20), ("die_in_write", 5), ("die_in_write", 21)],
    ids=["kill-mid-epoch-1", "kill-mid-epoch-2", "kill-in-write-mid-epoch", "kill-in-write-end"],
)
def test_sigkill_then_resume_gives_uninterrupted_weights(tmp_path, reference, fault):
    out = tmp_path / "run"
    killed = run_cli([*ARGS, "--out", str(out)], fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # Whatever was on disk at the kill is a complete, loadable checkpoint (or none yet).
    if (out / "last.pt").exists():
        load_checkpoint(out / "last.pt")
    if fault[0] == "die_in_write":
        assert list(out.glob(".*.tmp")), "the kill should have left a partial temporary file"
    resumed = run_cli([*ARGS, "--out", str(out), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert not list(out.glob(".*.tmp"))  # stale partial files are cleaned up on resume
    assert_same_weights(load_checkpoint(out / "last.pt")["model_state"], reference)
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_ctrl_c_saves_and_exits_cleanly(tmp_path, reference):
    out = tmp_path / "run"
    # SIGINT delivered by the process to itself right after batch 9: handled like Ctrl-C.
    runner = RUNNER.replace("signal.SIGKILL", "signal.SIGINT")
    cmd = [sys.executable, "-c", runner, "die_at_batch", "9", *ARGS, "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 130, done.stderr
    assert "continue with --resume" in done.stdout + done.stderr
    state = load_checkpoint(out / "last.pt")
    assert (state["epoch"], state["batch"]) == (0, 9)  # stopped after batch 9 of epoch 1
    resumed = run_cli([*ARGS, "--out", str(out), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(load_checkpoint(out / "last.pt")["model_state"], reference)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"PK\x03\x04 not really a checkpoint")
    with pytest.raises(ValueError, match="not a readable binarynet checkpoint"):
        load_checkpoint(path)
    torch.save({"format": "something-else"}, path)
    with pytest.raises(ValueError, match="not a binarynet checkpoint"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match=r"missing\.pt"):
        load_checkpoint(tmp_path / "missing.pt")
