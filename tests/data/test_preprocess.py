"""Tests of binarynet.data.preprocess: GCN, ZCA, the 8-bit quantiser, the two preprocessors, their
serialisation. All on synthetic data (fast). The augmentation's tests are in test_augment.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from binarynet.data import preprocess
from binarynet.data.preprocess import (
    GCNZCA,
    PixelScaling,
    Quantizer,
    global_contrast_normalize,
    load_preprocessor,
    zca_fit,
)


def random_images(n: int, shape=(6, 6, 3), seed: int = 0) -> np.ndarray:
    """uint8 images with correlated pixels (a smooth random field plus noise), so that
    whitening has something to do."""
    rng = np.random.default_rng(seed)
    base = rng.normal(128, 40, size=(n, 1, 1, shape[-1]))
    gradient = rng.normal(0, 20, size=(n, 1, 1, 1)) * np.linspace(-1, 1, shape[1])[:, None]
    noise = rng.normal(0, 15, size=(n, *shape))
    return np.clip(base + gradient + noise, 0, 255).astype(np.uint8)


def pylearn2_gcn(x, scale, subtract_mean, use_std, sqrt_bias, min_divisor):
    """pylearn2's global_contrast_normalize, transcribed loop by loop (the reference)."""
    out = np.empty(x.shape)
    for i, row in enumerate(np.asarray(x, dtype=np.float64)):
        centred = row - row.mean() if subtract_mean else row.copy()
        if use_std:
            divisor = math.sqrt(sqrt_bias + np.var(centred, ddof=1)) / scale
        else:
            divisor = math.sqrt(sqrt_bias + float(np.sum(centred**2))) / scale
        out[i] = centred / (1.0 if divisor < min_divisor else divisor)
    return out


# --------------------------------------------------------------------------------------------
# Global contrast normalisation
# --------------------------------------------------------------------------------------------


def test_gcn_default_gives_zero_mean_and_norm_55() -> None:
    x = random_images(50).reshape(50, -1)
    g = global_contrast_normalize(x)
    np.testing.assert_allclose(g.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(g, axis=1), 55.0, rtol=1e-12)
    # i.e. a per-pixel RMS of 55/sqrt(D): about 1 for CIFAR-10's D = 3072
    assert g.dtype == np.float64


def test_gcn_use_std_gives_unit_scaled_std() -> None:
    x = random_images(50).reshape(50, -1)
    g = global_contrast_normalize(x, scale=1.0, use_std=True)
    np.testing.assert_allclose(g.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(g.std(axis=1, ddof=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("subtract_mean", [True, False])
@pytest.mark.parametrize("use_std", [True, False])
@pytest.mark.parametrize("sqrt_bias", [0.0, 10.0])
def test_gcn_matches_pylearn2(subtract_mean: bool, use_std: bool, sqrt_bias: float) -> None:
    x = random_images(20, seed=1).reshape(20, -1)
    kwargs = dict(
        scale=55.0, subtract_mean=subtract_mean, use_std=use_std, sqrt_bias=sqrt_bias,
        min_divisor=1e-8,
    )  # fmt: skip
    np.testing.assert_allclose(
        global_contrast_normalize(x, **kwargs), pylearn2_gcn(x, **kwargs), rtol=1e-12
    )


def test_gcn_constant_image_stays_finite() -> None:
    x = np.full((3, 12), 77, dtype=np.uint8)
    g = global_contrast_normalize(x)
    np.testing.assert_array_equal(g, 0)


# --------------------------------------------------------------------------------------------
# ZCA
# --------------------------------------------------------------------------------------------


def correlated_gaussian(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(100).normal(size=(d, d))  # same distribution for all seeds
    return rng.normal(size=(n, d)) @ mixing + 5.0


def test_zca_whitens_its_training_data_exactly() -> None:
    # With filter_bias = 0, P C P = I is an algebraic identity on the fitted data, so the
    # only error is float64 rounding.
    x = correlated_gaussian(2000)
    mean, p = zca_fit(x, filter_bias=0.0)
    white = (x - mean) @ p
    np.testing.assert_allclose(np.cov(white.T, bias=True), np.eye(8), atol=1e-10)
    np.testing.assert_allclose(p, p.T, atol=0)  # symmetric: ZCA, not just any whitening


def test_zca_whitens_held_out_data_approximately() -> None:
    # Fitted on n = 20 000 samples, the covariance of fresh samples is I up to sampling error:
    # each entry of a sample covariance of n white samples has standard deviation ~1/sqrt(n)
    # (√2/√n ≈ 0.010 on the diagonal), and the estimated P adds an error of the same order;
    # 0.06 is about 4 standard deviations of the sum, far above what a fixed seed produces.
    mean, p = zca_fit(correlated_gaussian(20_000, seed=1), filter_bias=0.0)
    fresh = (correlated_gaussian(20_000, seed=2) - mean) @ p
    np.testing.assert_allclose(np.cov(fresh.T, bias=True), np.eye(8), atol=0.06)
    # ... whereas the raw data is far from white
    assert np.abs(np.cov(correlated_gaussian(20_000, seed=2).T) - np.eye(8)).max() > 1


def test_zca_filter_bias_shrinks_eigenvalues() -> None:
    # With bias b the whitened covariance is C (C + b I)⁻¹: eigenvalues λ / (λ + b).
    x = correlated_gaussian(3000, seed=3)
    cov = np.cov(x.T, bias=True)
    mean, p = zca_fit(x, filter_bias=0.5)
    white_eigs = np.linalg.eigvalsh(np.cov(((x - mean) @ p).T, bias=True))
    lam = np.linalg.eigvalsh(cov)
    np.testing.assert_allclose(white_eigs, lam / (lam + 0.5), rtol=1e-9)


def test_zca_is_permutation_equivariant() -> None:
    # Why flattening NHWC instead of pylearn2's CHW changes nothing.
    x = correlated_gaussian(1000, seed=4)
    perm = np.random.default_rng(0).permutation(8)
    mean, p = zca_fit(x, 0.1)
    mean_perm, p_perm = zca_fit(x[:, perm], 0.1)
    np.testing.assert_allclose(mean_perm, mean[perm])
    np.testing.assert_allclose(p_perm, p[np.ix_(perm, perm)], atol=1e-12)


def test_zca_rejects_singular_covariance() -> None:
    with pytest.raises(ValueError, match="not positive definite"):
        zca_fit(correlated_gaussian(5), filter_bias=0.0)  # 5 examples of 8 features
    with pytest.raises(ValueError, match="N ≥ 2"):
        zca_fit(np.zeros((1, 4)))


# --------------------------------------------------------------------------------------------
# Quantizer
# --------------------------------------------------------------------------------------------


def test_quantizer_round_trip_p_to_f_to_p() -> None:
    q = Quantizer(scale=0.0371)
    p = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(q.quantize(q.dequantize(p)), p)
    np.testing.assert_allclose(q.dequantize(p), (np.arange(256) - 128) * 0.0371, rtol=1e-6)
    assert q.quantize(np.array([0.0]))[0] == 128  # 0 ↔ the network's 0 = (128 − 128)·2⁻⁷


def test_quantizer_f_to_p_to_f_error_is_half_a_step() -> None:
    f = np.random.default_rng(0).normal(size=10_000)
    q = Quantizer(percentile=100).fit(f)  # nothing clipped
    assert q.clip_fraction == 0
    err = np.abs(q.dequantize(q.quantize(f)) - f)
    assert err.max() <= q.scale / 2 * (1 + 1e-6)
    assert q.quantize(f).max() == 255 or q.quantize(f).min() <= 1  # the range is used


def test_quantizer_percentile_sets_the_clipping_fraction() -> None:
    f = np.random.default_rng(1).standard_t(df=3, size=200_000)  # heavy tails
    for percentile, expected in ((99.0, 0.01), (99.9, 0.001)):
        q = Quantizer(percentile).fit(f)
        manual = np.mean((np.rint(f / q.scale) > 127) | (np.rint(f / q.scale) < -128))
        assert q.clip_fraction == pytest.approx(manual)
        assert q.clip_fraction == pytest.approx(expected, rel=0.1)
        assert np.percentile(np.abs(f), percentile) == pytest.approx(127 * q.scale)


def test_quantizer_clips_and_rounds_half_to_even() -> None:
    q = Quantizer(scale=0.5)
    f = np.array([-1000.0, 1000.0, 0.25, 0.75, -0.25, 63.5, -64.0, -64.5])
    np.testing.assert_array_equal(q.quantize(f), [0, 255, 128, 130, 128, 255, 0, 0])
    # 0.25/0.5 = 0.5 → 0 (even); 0.75/0.5 = 1.5 → 2; 63.5/0.5 = 127 → 255; −64/0.5 = −128 → 0


def test_quantizer_pow2() -> None:
    f = np.random.default_rng(2).normal(size=5_000)
    plain, pow2 = Quantizer(99.0).fit(f), Quantizer(99.0, pow2=True).fit(f)
    assert math.log2(pow2.scale) == round(math.log2(pow2.scale))
    assert plain.scale <= pow2.scale < 2 * plain.scale
    assert pow2.clip_fraction <= plain.clip_fraction


def test_quantizer_errors() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        Quantizer().quantize(np.zeros(3))
    with pytest.raises(ValueError, match="percentile"):
        Quantizer(percentile=0)
    with pytest.raises(ValueError, match="uint8"):
        Quantizer(scale=1.0).dequantize(np.zeros(3, dtype=np.int16))


# --------------------------------------------------------------------------------------------
# GCNZCA
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted() -> tuple[GCNZCA, np.ndarray, np.ndarray]:
    train, test = random_images(3000, seed=10), random_images(500, seed=11)
    return GCNZCA(quantizer_images=1000).fit(train), train, test


def test_gcnzca_output_is_uint8_of_the_same_shape(fitted) -> None:
    pre, train, test = fitted
    for images in (train, test):
        out = pre.transform(images)
        assert out.dtype == np.uint8 and out.shape == images.shape
    assert pre.image_shape == (6, 6, 3)
    assert pre.mean.shape == (108,) and pre.whitening.shape == (108, 108)
    assert pre.mean.dtype == pre.whitening.dtype == np.float32


def test_gcnzca_features_are_whitened(fitted) -> None:
    pre, train, _ = fitted
    f = pre.features(train).reshape(len(train), -1).astype(np.float64)
    np.testing.assert_allclose(f.mean(axis=0), 0, atol=1e-3)
    # Covariance C (C + 0.1 I)⁻¹: eigenvalues λ/(λ + 0.1) ≤ 1, and 0 for the direction GCN
    # removed (the per-image mean); float32 features, hence the tolerances.
    eigs = np.linalg.eigvalsh(np.cov(f.T, bias=True))
    assert eigs.max() < 1 + 1e-3 and eigs.min() > -1e-3
    g = global_contrast_normalize(train.reshape(len(train), -1)) - pre.mean
    lam = np.linalg.eigvalsh(np.cov(g.T, bias=True))
    np.testing.assert_allclose(np.sort(eigs), np.sort(lam / (lam + 0.1)), atol=2e-4)


def test_gcnzca_is_one_function_for_train_and_test(fitted) -> None:
    pre, train, test = fitted
    out_test = pre.transform(test)
    np.testing.assert_array_equal(out_test, pre.quantizer.quantize(pre.features(test)))
    # per image: no batch statistics (a BLAS may round a batch of a different size
    # differently in the last bit, which can move a value by one step at most)
    together = pre.transform(np.concatenate([train[:100], test]))
    diff = np.abs(together[100:].astype(int) - out_test.astype(int))
    assert diff.max() <= 1 and np.mean(diff == 0) > 0.999
    # fitting does not depend on the test set: refitting on the same training set is the same
    again = GCNZCA(quantizer_images=1000).fit(train)
    np.testing.assert_array_equal(again.whitening, pre.whitening)
    assert again.quantizer.scale == pre.quantizer.scale


def test_gcnzca_quantisation_error_and_clipping(fitted) -> None:
    pre, _, test = fitted
    f = pre.features(test)
    p = pre.transform(test)
    s = pre.quantizer.scale
    inside = (p > 0) & (p < 255)
    assert np.abs((p.astype(np.float64) - 128) * s - f)[inside].max() <= s / 2 * (1 + 1e-4)
    assert pre.quantizer.clip_fraction < 5e-4  # percentile 99.99: about 1e-4
    assert 0 < np.mean(~inside) < 2e-3
    # the network sees (p − 128)·2⁻⁷ ≈ f / (128 s): a global scale
    x = (p.astype(np.float64) - 128) / 128
    np.testing.assert_allclose(x[inside], f[inside] / (128 * s), atol=1 / 256 + 1e-6)


def test_gcnzca_chunking_does_not_matter(fitted, monkeypatch: pytest.MonkeyPatch) -> None:
    pre, _, test = fitted
    whole = pre.features(test)
    monkeypatch.setattr(preprocess, "_CHUNK", 7)
    np.testing.assert_allclose(pre.features(test), whole, rtol=1e-5, atol=1e-5)


def test_gcnzca_state_dict_round_trip(fitted) -> None:
    pre, _, test = fitted
    state = pre.state_dict()
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    config = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    assert sorted(arrays) == ["zca_mean", "zca_whitening"]
    # the non-array part survives JSON; the arrays survive a tensor store (here .npy bytes)
    config = json.loads(json.dumps(config))
    assert config["kind"] == "gcn-zca" and config["image_shape"] == [6, 6, 3]
    assert config["gcn_scale"] == 55.0 and config["zca_filter_bias"] == 0.1
    loaded = load_preprocessor({**config, **{k: v.copy() for k, v in arrays.items()}})
    assert isinstance(loaded, GCNZCA)
    np.testing.assert_array_equal(loaded.transform(test), pre.transform(test))
    assert loaded.quantizer.scale == pre.quantizer.scale
    assert loaded.quantizer.clip_fraction == pre.quantizer.clip_fraction


def test_gcnzca_state_through_safetensors(fitted, tmp_path) -> None:
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    pre, _, test = fitted
    state = pre.state_dict()
    arrays = {f"preprocess.{k}": v for k, v in state.items() if isinstance(v, np.ndarray)}
    config = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    path = tmp_path / "model.safetensors"
    safetensors_numpy.save_file(arrays, path, metadata={"preprocess": json.dumps(config)})
    loaded_arrays = safetensors_numpy.load_file(path)
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        loaded_config = json.loads(f.metadata()["preprocess"])
    state2 = {
        **loaded_config,
        **{k.removeprefix("preprocess."): v for k, v in loaded_arrays.items()},
    }
    np.testing.assert_array_equal(load_preprocessor(state2).transform(test), pre.transform(test))


def test_gcnzca_state_accepts_torch_tensors(fitted) -> None:
    torch = pytest.importorskip("torch")
    pre, _, test = fitted
    state = {
        k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
        for k, v in pre.state_dict().items()
    }
    np.testing.assert_array_equal(load_preprocessor(state).transform(test), pre.transform(test))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "zca"}, "unknown preprocessor kind 'zca'"),
        ({"version": 2}, "version 2 is not supported"),
        ({"image_shape": [6, 6, -3]}, "image_shape must be"),
        ({"quant_scale": 0.0}, "quant_scale must be > 0"),
        ({"quant_scale": float("nan")}, "quant_scale must be a finite number"),
        ({"gcn_scale": True}, "gcn_scale must be a finite number"),
        ({"gcn_use_std": "no"}, "gcn_use_std must be true or false"),
        (
            {"zca_mean": np.zeros(107, np.float32)},
            r"zca_mean must be a float array of shape \[108\]",
        ),
        ({"zca_whitening": np.zeros((108, 108), np.int32)}, "zca_whitening must be a float array"),
        ({"zca_mean": np.full(108, np.inf, np.float32)}, "zca_mean holds NaN or infinite"),
    ],
)
def test_gcnzca_state_is_validated(fitted, change: dict, message: str) -> None:
    pre, _, _ = fitted
    with pytest.raises(ValueError, match=message):
        load_preprocessor({**pre.state_dict(), **change})


def test_gcnzca_state_missing_entry(fitted) -> None:
    state = fitted[0].state_dict()
    del state["zca_whitening"], state["gcn_scale"]
    with pytest.raises(ValueError, match="lacks gcn_scale, zca_whitening"):
        load_preprocessor(state)


def test_gcnzca_errors(fitted) -> None:
    pre, _, test = fitted
    with pytest.raises(RuntimeError, match="not fitted"):
        GCNZCA().transform(test)
    with pytest.raises(ValueError, match=r"expected uint8 images \['N', 6, 6, 3\]"):
        pre.transform(test.astype(np.float32))
    with pytest.raises(ValueError, match=r"\['N', 6, 6, 3\], got uint8 of shape \[500, 6, 5, 3\]"):
        pre.transform(test[:, :, :5])
    with pytest.raises(ValueError, match="filter_bias must be a non-negative number"):
        GCNZCA(filter_bias=-1)


# --------------------------------------------------------------------------------------------
# PixelScaling
# --------------------------------------------------------------------------------------------


def test_pixel_scaling() -> None:
    images = np.arange(256, dtype=np.uint8).reshape(4, 4, 4, 4)
    pre = PixelScaling().fit(images)
    assert pre.transform(images) is images
    f = pre.features(images)
    assert f.dtype == np.float32 and f.min() == -1 and f.max() == 1
    np.testing.assert_array_equal(f, np.float32(images.astype(np.float64) * (2.0 / 255.0) - 1.0))
    # the network's view of the same uint8 differs by an affine map that batch norm absorbs
    x = (images.astype(np.float64) - 128) / 128
    np.testing.assert_allclose(x, 127.5 / 128 * (f + 1) - 1, atol=1e-6)
    state = pre.state_dict()
    assert json.loads(json.dumps(state)) == {"kind": "pixels", "version": 1}
    assert isinstance(load_preprocessor(state), PixelScaling)
    with pytest.raises(ValueError, match="uint8"):
        pre.transform(images.astype(np.int32))
