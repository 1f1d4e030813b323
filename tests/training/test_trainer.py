"""Training loop: run files, recipes, checkpoints, resume, CLI."""

import json
import math
import signal

import numpy as np
import pytest
import torch

from binarynet.cli import main
from binarynet.data import Split, Splits, mnist_sample
from binarynet.training.trainer import (
    RECIPES,
    Trainer,
    build_optimizer,
    build_scheduler,
    evaluate,
    load_model,
    recipe_config,
)


@pytest.fixture(scope="module")
def small_splits() -> Splits:
    s = mnist_sample()
    return Splits(
        Split(s.train.images[:600], s.train.labels[:600]),
        Split(s.valid.images[:200], s.valid.labels[:200]),
        Split(s.test.images[:200], s.test.labels[:200]),
        name="mnist-sample-small",
    )


def tiny_config(**overrides):
    values = dict(
        model="mnist-mlp",
        model_kwargs={
            "hidden": 48,
            "depth": 2,
            "shift_bn": True,
            "stochastic": True,
            "dropout_hidden": 0.1,
        },
        optimizer="shift-adamax",
        lr=2.0**-8,
        lr_halve_every=1,
        batch_size=50,
        epochs=3,
        seed=3,
        compute_dtype="float32",
    )
    values.update(overrides)
    return recipe_config(None, **values)


def test_run_writes_metrics_checkpoints_and_plot(tmp_path, small_splits):
    summary = Trainer(tiny_config(epochs=2), small_splits, tmp_path, progress=False).run()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["lr"] == pytest.approx(rows[0]["lr"] / 2)  # halved every epoch
    for r in rows:
        assert 0 <= r["train_error"] <= 1 and 0 <= r["test_error"] <= 1
        assert set(r["sign_flips"]) == {"2", "6", "10"}  # the three binary layers
        assert all(0 <= f <= 1 for f in r["sign_flips"].values())
    assert any(f > 0 for f in rows[0]["sign_flips"].values())  # training does flip signs
    best = min(rows, key=lambda r: (r["valid_error"], -r["epoch"]))
    assert summary["best_epoch"] == best["epoch"]
    assert summary["test_error_at_best_valid"] == best["test_error"]
    assert json.loads((tmp_path / "result.json").read_text())["best_epoch"] == best["epoch"]
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = load_model(tmp_path / "best.pt")
    x = torch.from_numpy(small_splits.test.images)
    y = torch.from_numpy(small_splits.test.labels)
    assert evaluate(model, x, y)[1] == pytest.approx(best["test_error"])
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind


def test_evaluate_counts_errors():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Identity())
    x = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.2, 0.1]])
    loss, err = evaluate(model, x, torch.tensor([1, 1, 0]), batch_size=2)
    assert err == pytest.approx(1 / 3)
    # ±1 targets [−1, 1], [−1, 1], [1, −1]; max(0, 1 − t·y)² per entry:
    # [1, 0], [4, 1], [0.64, 1.21] → mean over the 6 entries
    assert loss == pytest.approx((1 + 0 + 4 + 1 + 0.64 + 1.21) / 6)


@pytest.mark.parametrize("stop_at", [(0, 3), (1, 12), (2, 1)])
def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, small_splits, stop_at):
    reference = Trainer(tiny_config(), small_splits, tmp_path / "ref", progress=False)
    reference.run()

    def interrupt(trainer):
        if (trainer.epoch, trainer.batch) == stop_at:
            trainer.stop.signal = signal.SIGINT

    first = Trainer(
        tiny_config(), small_splits, tmp_path / "run", progress=False, on_batch=interrupt
    )
    summary = first.run()
    assert summary["interrupted"] and (first.epoch, first.batch) == stop_at
    assert not (tmp_path / "run" / "result.json").exists()
    torch.manual_seed(12345)  # the resumed run must not depend on the process's RNG state
    resumed = Trainer(tiny_config(), small_splits, tmp_path / "run", progress=False)
    resumed.run(resume=True)
    ref_state, state = reference.model.state_dict(), resumed.model.state_dict()
    for key in ref_state:
        assert torch.equal(ref_state[key], state[key]), key
    assert resumed.history == [
        {**row, "epoch_seconds": r2["epoch_seconds"], "elapsed_seconds": r2["elapsed_seconds"]}
        for row, r2 in zip(reference.history, resumed.history, strict=True)
    ]


def test_mid_epoch_checkpoints(tmp_path, small_splits):
    seen = []

    def look(trainer):
        path = tmp_path / "last.pt"
        if path.exists():
            seen.append(torch.load(path, weights_only=True)["batch"])

    Trainer(
        tiny_config(epochs=1, checkpoint_every=0.0),
        small_splits,
        tmp_path,
        progress=False,
        on_batch=look,
    ).run()
    assert seen[:3] == [1, 2, 3]  # saved after every batch when checkpoint_every = 0


def test_refuses_to_overwrite_and_checks_config_on_resume(tmp_path, small_splits):
    Trainer(tiny_config(epochs=1), small_splits, tmp_path, progress=False).run()
    with pytest.raises(FileExistsError, match="--resume"):
        Trainer(tiny_config(epochs=1), small_splits, tmp_path, progress=False).run()
    other = tiny_config(epochs=2, batch_size=40)
    with pytest.raises(ValueError, match="batch_size=50"):
        Trainer(other, small_splits, tmp_path, progress=False).run(resume=True)


def test_recipes():
    theano = recipe_config("mnist-theano")
    assert theano.optimizer == "adam" and theano.lr == 3e-3 and theano.lr_final == 3e-7
    assert theano.model_kwargs == {
        "hidden": 4096,
        "depth": 3,
        "dropout_in": 0.2,
        "dropout_hidden": 0.5,
    }
    torch7 = recipe_config("mnist-torch7", epochs=7, model_kwargs={"hidden": 64})
    assert torch7.epochs == 7 and torch7.model_kwargs["hidden"] == 64
    assert torch7.model_kwargs["shift_bn"] and torch7.optimizer == "shift-adamax"
    assert RECIPES["mnist-torch7"]["model_kwargs"]["hidden"] == 2048  # preset not mutated
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe_config("imagenet")
    with pytest.raises(ValueError, match="choose one schedule"):
        recipe_config("mnist-theano", lr_halve_every=5)


def test_exponential_schedule_reaches_final_lr():
    cfg = recipe_config("mnist-theano", epochs=10, model_kwargs={"hidden": 8, "depth": 1})
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg)
    for _ in range(10):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(3e-7, rel=1e-6)


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"optimizer": "sgd"}, "optimizer"),
        ({"lr": math.inf}, "lr"),
        ({"compute_dtype": "float16"}, "compute_dtype"),
    ],
)
def test_config_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        tiny_config(**bad)


def test_cli_train_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "--hidden",
        "32",
        "--depth",
        "1",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--no-progress",
        "--compute-dtype",
        "float32",
    ]
    assert main(args) == 0
    assert "test error at that epoch" in capsys.readouterr().out
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", "--no-progress"]) == 0
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2
    assert (
        main(["train", "--model", "mnist-mlp", "--width", "2", "--out", str(tmp_path / "x")]) == 2
    )
    assert "does not take width" in capsys.readouterr().err


def test_bundled_sample_split_sizes_feed_the_trainer():
    s = mnist_sample()
    assert s.train.images.dtype == np.uint8 and len(s.train) > len(s.valid) > 0


def colour_splits(n_train=120, size=32, seed=0) -> Splits:
    rng = np.random.default_rng(seed)

    def split(n):
        labels = rng.integers(0, 10, n)
        # class-dependent colour so that a few steps can learn something
        images = rng.integers(0, 64, (n, size, size, 3)) + 16 * labels[:, None, None, None]
        return Split(images.astype(np.uint8), labels.astype(np.int64))

    return Splits(split(n_train), split(40), split(40), name="synthetic-colour")


def convnet_config(**overrides):
    values = dict(
        model="cifar10-convnet",
        model_kwargs={"width": 0.0625, "fc_width": 32, "shift_bn": True},
        dataset="cifar10",
        preprocess="pixels",
        augment=True,
        optimizer="adam",
        lr=1e-3,
        lr_final=1e-4,
        batch_size=40,
        epochs=2,
        seed=1,
        compute_dtype="float32",
    )
    values.update(overrides)
    return recipe_config(None, **values)


def test_convnet_training_with_augmentation_resumes_exactly(tmp_path):
    splits = colour_splits()
    reference = Trainer(convnet_config(), splits, tmp_path / "ref", progress=False)
    reference.run()

    def interrupt(trainer):
        if (trainer.epoch, trainer.batch) == (1, 1):
            trainer.stop.signal = signal.SIGINT

    Trainer(convnet_config(), splits, tmp_path / "run", progress=False, on_batch=interrupt).run()
    resumed = Trainer(convnet_config(), splits, tmp_path / "run", progress=False)
    resumed.run(resume=True)
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    # the torch model takes NCHW; the data is NHWC
    assert resumed.train_x.shape == (120, 3, 32, 32)
    assert torch.equal(
        resumed.train_x[0].permute(1, 2, 0), torch.from_numpy(splits.train.images[0])
    )
    model = load_model(tmp_path / "run" / "best.pt")
    assert model.preprocessor is not None and model.preprocessor.kind == "pixels"


@pytest.fixture
def any_image_size(monkeypatch):
    """Trainers whose model need not take the images: tests of data preparation alone, on
    4×4 images (48 features: a fast ZCA) that the ConvNet could not train on."""
    import binarynet.training.trainer

    monkeypatch.setattr(binarynet.training.trainer, "_check_model_fits", lambda *args: None)


def test_gcn_zca_preprocessor_is_fitted_on_train_and_saved(tmp_path, any_image_size):
    splits = colour_splits(n_train=200, size=4)  # 48 features: a fast ZCA
    cfg = convnet_config(preprocess="gcn-zca", augment=False)
    trainer = Trainer(cfg, splits, tmp_path, progress=False)
    trainer._prepare_data(None)
    pre = trainer.preprocessor
    assert trainer.train_x.dtype == torch.uint8
    expected = pre.transform(splits.test.images)
    assert torch.equal(trainer.test_x, torch.from_numpy(expected).permute(0, 3, 1, 2))
    from binarynet.data.preprocess import GCNZCA, load_preprocessor
    from binarynet.training.checkpoint import save_checkpoint

    refit = GCNZCA().fit(splits.train.images)  # fitted on the training split only
    assert np.array_equal(refit.transform(splits.valid.images), pre.transform(splits.valid.images))
    save_checkpoint(tmp_path / "p.pt", trainer.state_dict())
    restored = load_preprocessor(torch.load(tmp_path / "p.pt", weights_only=True)["preprocess"])
    assert np.array_equal(restored.transform(splits.test.images), expected)


def test_colour_dataset_needs_a_data_dir():
    from binarynet.training.trainer import load_splits

    with pytest.raises(ValueError, match="needs a data directory"):
        load_splits(convnet_config())


def test_signal_during_evaluation_stops_at_the_epoch_boundary(tmp_path, small_splits):
    import binarynet.training.trainer as train_module

    trainer = Trainer(tiny_config(epochs=3), small_splits, tmp_path, progress=False)
    evaluate_split = trainer._evaluate

    def evaluate_then_signal(images, labels):
        result = evaluate_split(images, labels)
        trainer.stop.signal = signal.SIGINT  # as if Ctrl-C came during the evaluation
        return result

    trainer._evaluate = evaluate_then_signal
    summary = trainer.run()
    assert summary["interrupted"] and trainer.epoch == 1 and trainer.batch == 0
    state = train_module.load_checkpoint(tmp_path / "last.pt")
    assert (state["epoch"], state["batch"]) == (1, 0)


def test_init_from_starts_a_new_run_from_another_runs_model(tmp_path, small_splits):
    from binarynet.training.checkpoint import load_checkpoint
    from binarynet.training.sign_flips import latent_signs

    Trainer(tiny_config(epochs=1), small_splits, tmp_path / "first", progress=False).run()
    first = load_checkpoint(tmp_path / "first" / "best.pt")["model_state"]
    second = dict(lr=2.0**-9, lr_halve_every=None, lr_final=2.0**-11, epochs=2, seed=5)

    started = Trainer(
        tiny_config(init_from=str(tmp_path / "first" / "best.pt"), **second),
        small_splits,
        tmp_path / "second",
        progress=False,
    )
    started.run()
    # The same run by hand: a fresh trainer whose model is loaded with the first run's weights.
    by_hand = Trainer(tiny_config(**second), small_splits, tmp_path / "by-hand", progress=False)
    by_hand.model.load_state_dict(first)
    by_hand.epoch_signs = latent_signs(by_hand.model)
    by_hand.run()
    for key, value in by_hand.model.state_dict().items():
        assert torch.equal(value, started.model.state_dict()[key]), key
    assert any(not torch.equal(v, started.model.state_dict()[k]) for k, v in first.items())
    # epochs, schedule and metrics start afresh; sign flips count from the loaded model
    assert [r["epoch"] for r in started.history] == [1, 2]
    assert started.history[0]["lr"] == 2.0**-9
    assert started.history[0]["sign_flips"] == by_hand.history[0]["sign_flips"]
    saved = json.loads((tmp_path / "second" / "config.json").read_text())
    assert saved["init_from"] == str(tmp_path / "first" / "best.pt")

    # interrupted and resumed, the second run ends where the uninterrupted one did
    def interrupt(trainer):
        if (trainer.epoch, trainer.batch) == (1, 2):
            trainer.stop.signal = signal.SIGINT

    cfg = tiny_config(init_from=str(tmp_path / "first" / "best.pt"), **second)
    Trainer(cfg, small_splits, tmp_path / "cut", progress=False, on_batch=interrupt).run()
    resumed = Trainer(cfg, small_splits, tmp_path / "cut", progress=False)
    resumed.run(resume=True)
    for key, value in started.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_init_from_carries_the_fitted_preprocessor(tmp_path, any_image_size):
    from binarynet.training.checkpoint import save_checkpoint

    cfg = convnet_config(preprocess="gcn-zca", augment=False)
    first = Trainer(cfg, colour_splits(n_train=200, size=4), tmp_path / "a", progress=False)
    first._prepare_data(None)
    save_checkpoint(tmp_path / "a.pt", first.state_dict())
    # other training images: a refit would give another whitening
    other = colour_splits(n_train=200, size=4, seed=9)
    second = Trainer(
        convnet_config(preprocess="gcn-zca", augment=False, init_from=str(tmp_path / "a.pt")),
        other,
        tmp_path / "b",
        progress=False,
    )
    second._init_from_checkpoint(tmp_path / "a.pt")
    expected = first.preprocessor.transform(other.test.images)
    refit = type(first.preprocessor)().fit(other.train.images)
    assert not np.array_equal(refit.transform(other.test.images), expected)
    assert np.array_equal(second.preprocessor.transform(other.test.images), expected)
    assert torch.equal(second.test_x, torch.from_numpy(expected).permute(0, 3, 1, 2))


def test_init_from_rejects_another_network_or_a_missing_file(tmp_path, small_splits, capsys):
    Trainer(tiny_config(epochs=1), small_splits, tmp_path / "first", progress=False).run()
    best = str(tmp_path / "first" / "best.pt")
    wider = tiny_config(init_from=best, model_kwargs={"hidden": 64})
    with pytest.raises(ValueError, match=r"cannot initialise from .*best\.pt: .*model_kwargs="):
        Trainer(wider, small_splits, tmp_path / "wider", progress=False).run()
    missing = tiny_config(init_from=str(tmp_path / "nope.pt"))
    with pytest.raises(FileNotFoundError, match=r"checkpoint not found: .*nope\.pt"):
        Trainer(missing, small_splits, tmp_path / "missing", progress=False).run()
    from binarynet.training.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "weights-only.pt", {"preprocess": None})
    foreign = tiny_config(init_from=str(tmp_path / "weights-only.pt"))
    with pytest.raises(ValueError, match=r"weights-only\.pt is not a binarynet training"):
        Trainer(foreign, small_splits, tmp_path / "foreign", progress=False).run()
    rc = main(["train", "--out", str(tmp_path / "first"), "--resume", "--init-from", best])
    assert rc == 2
    assert "--init-from starts a new run" in capsys.readouterr().err
