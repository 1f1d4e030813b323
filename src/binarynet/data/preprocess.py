"""Input preprocessing for the ConvNets: pixel scaling, or global contrast normalisation + ZCA
whitening quantised back to 8 bits. These are the deployable preprocessors: fitted on the
training split, stored in checkpoints and ``.bnn`` files, applied by the engine. Training-time
augmentation (random crops and flips) is apart, in :mod:`binarynet.training.augment`.

Whatever reaches the network's first layer is an 8-bit fixed-point number, so that the deployed
first layer can run on the bit planes of its input (Algorithm 5 of Courbariaux et al. 2016).
:class:`~binarynet.training.nn.FixedPointInput` maps a uint8 ``p`` to x = (p − 128)·2⁻⁷ ∈ [−1, 1). A
preprocessor therefore turns uint8 images into uint8 images of the same shape (NHWC), and
training, evaluation and the engine all consume those uint8 arrays.

Two preprocessors, both NumPy-only (torch-free, so the engine can use them):

- :class:`PixelScaling` — the released BinaryNet Theano code (``Train-time/cifar10.py`` and
  ``svhn.py``): pixels scaled to [−1, 1] by x/255·2 − 1. As uint8 this is the identity: the
  network's (p − 128)/128 is that same map up to a factor 255/256 and an offset of −1/256,
  which the first layer's batch norm absorbs (exactly, except for the offset at zero-padded
  borders: a shift of 1/256 of the input range).
- :class:`GCNZCA` — global contrast normalisation then ZCA whitening, the preprocessing of
  BinaryConnect (``cifar10.py`` loads pylearn2's ``pylearn2_gcn_whitened`` CIFAR-10), of
  Goodfellow et al.'s maxout networks, and what the BinaryNet author recalls using for CIFAR-10
  (github.com/MatthieuCourbariaux/BinaryNet/issues/23); quantised to uint8 by a :class:`Quantizer`.

For one image x ∈ {0..255}^D (D = H·W·C, flattened in NHWC order), :class:`GCNZCA` computes::

    GCN    c = x − mean(x)                                  (subtract_mean)
           σ = sqrt(sqrt_bias + Σⱼ cⱼ²)                       (use_std=False: the norm)
             = sqrt(sqrt_bias + Σⱼ cⱼ² / (D − 1))             (use_std=True, ddof=1)
           g = c · scale / σ                                  (g = c where σ/scale < min_divisor)
    ZCA    f = (g − μ) P,      P = V (Λ + b I)^(−1/2) Vᵀ      where (1/N) Σₙ (gₙ − μ)(gₙ − μ)ᵀ
                                                              = V Λ Vᵀ over the N training images
    8-bit  p = clip(rint(f / s) + 128, 0, 255)                s fitted on training features

and the network sees x = (p − 128)·2⁻⁷ ≈ f / (128 s): a global scale, which batch norm absorbs.
The defaults are pylearn2's for CIFAR-10: ``make_cifar10_gcn_whitened.py`` builds
``CIFAR10(which_set='train', gcn=55.)``, i.e. ``global_contrast_normalize(X, scale=55.)`` with
its defaults ``subtract_mean=True, use_std=False, sqrt_bias=0., min_divisor=1e-8`` (every
centred image gets L2 norm 55, so about unit RMS over its 3 072 values), then ``ZCA()`` with its
defaults ``filter_bias=0.1`` and all components kept. Two deliberate differences: the ZCA is
fitted on the training split only (pylearn2 fitted it on all 50 000 training images,
validation included), and pylearn2 flattens images channel-major (CHW) where we flatten NHWC —
GCN and ZCA are equivariant under a permutation of the features, so the result is the same.

The ZCA is preprocessing, not part of the binary network: a float matrix product applied to the
raw uint8 image before quantisation. The engine applies it as it is (NumPy, float32) and feeds
the resulting uint8 image to the bit-plane first layer. Float rounding may differ between BLAS
libraries, so a value that falls within a rounding error of a quantisation boundary may come
out one step apart on another machine; bit-exact comparisons between the torch model and the
engine must feed both the same uint8 arrays.

Fitted preprocessors serialise without pickle: :meth:`GCNZCA.state_dict` returns a flat dict
whose NumPy-array values are the tensors (for safetensors, or ``torch.from_numpy`` in a
checkpoint) and whose other values are JSON scalars and lists (for the JSON metadata);
:func:`load_preprocessor` rebuilds either class from such a dict, validating it (a model file is
untrusted input).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "GCNZCA",
    "PREPROCESSORS",
    "PixelScaling",
    "Quantizer",
    "global_contrast_normalize",
    "load_preprocessor",
    "zca_fit",
]

STATE_VERSION = 1
"""Version of the layout of :meth:`PixelScaling.state_dict` / :meth:`GCNZCA.state_dict`."""

_CHUNK = 2048  # images per block when computing features: bounds memory to ~50 MB per block
ZERO_POINT = 128
"""The uint8 that stands for 0 in the network's input (FixedPointInput's zero point)."""
_QMAX = 127  # largest positive step: p = 255 ↔ f = 127 s


# --------------------------------------------------------------------------------------------
# Global contrast normalisation and ZCA whitening, as functions
# --------------------------------------------------------------------------------------------


def global_contrast_normalize(
    x: np.ndarray,
    *,
    scale: float = 55.0,
    subtract_mean: bool = True,
    use_std: bool = False,
    sqrt_bias: float = 0.0,
    min_divisor: float = 1e-8,
) -> np.ndarray:
    """Global contrast normalisation of each row of ``x`` (pylearn2's
    ``global_contrast_normalize``; the formula is in the module docstring).

    Args:
        x: ``[N, D]`` design matrix, one example per row (any real dtype).
        scale: the norm (``use_std=False``) or standard deviation (``use_std=True``) that each
            row is given.
        subtract_mean: subtract each row's mean first.
        use_std: divide by the row's standard deviation (ddof = 1, as pylearn2 and MATLAB)
            instead of its L2 norm.
        sqrt_bias: added inside the square root (10 with ``use_std=True`` is Coates et al.'s
            setting; pylearn2's CIFAR-10 ``gcn=55.`` uses 0).
        min_divisor: a row whose divisor σ/scale is below this is left unscaled (constant
            images stay all-zero instead of blowing up).

    Returns:
        float64 ``[N, D]``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"global_contrast_normalize needs a 2-D [N, D] array, got {x.shape}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    if not (math.isfinite(sqrt_bias) and sqrt_bias >= 0):
        raise ValueError(f"sqrt_bias must be a non-negative number, got {sqrt_bias!r}")
    centred = x - x.mean(axis=1, keepdims=True) if subtract_mean else x.copy()
    if use_std:  # the variance about the row mean, whether or not it was subtracted
        spread = centred.var(axis=1, ddof=1 if x.shape[1] > 1 else 0)
    else:
        spread = np.einsum("ij,ij->i", centred, centred)
    divisor = np.sqrt(sqrt_bias + spread) / scale
    divisor[divisor < min_divisor] = 1.0
    centred /= divisor[:, None]
    return centred


def zca_fit(x: np.ndarray, filter_bias: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Fit ZCA whitening to the rows of ``x``: returns ``(mean [D], P [D, D])``, float64, such
    that ``(x − mean) @ P`` has covariance C (C + b I)⁻¹ (the identity when b = 0).

    C = (1/N) Σ (xₙ − μ)(xₙ − μ)ᵀ (the biased estimate, as pylearn2) is accumulated block by
    block in float64; P = V (Λ + b I)^(−1/2) Vᵀ from ``numpy.linalg.eigh`` of C + b I. P is
    symmetric, so whitening rows (x − μ) P equals whitening columns P (x − μ)ᵀ.

    Raises:
        ValueError: ``x`` is not 2-D with at least 2 rows, is not finite, or C + b I is not
            positive definite (b = 0 with fewer examples than features, or constant features).
    """
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"ZCA needs a 2-D [N, D] array with N ≥ 2, got shape {x.shape}")
    if not (math.isfinite(filter_bias) and filter_bias >= 0):
        raise ValueError(f"filter_bias must be a non-negative number, got {filter_bias!r}")
    n, d = x.shape
    mean = np.zeros(d)
    for lo in range(0, n, _CHUNK):
        mean += np.asarray(x[lo : lo + _CHUNK], dtype=np.float64).sum(axis=0)
    mean /= n
    cov = np.zeros((d, d))
    for lo in range(0, n, _CHUNK):
        block = np.asarray(x[lo : lo + _CHUNK], dtype=np.float64) - mean
        cov += block.T @ block
    if not np.all(np.isfinite(cov)):
        raise ValueError("ZCA: the data holds NaN or infinite values")
    cov /= n
    cov[np.diag_indices(d)] += filter_bias
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    if eigenvalues[0] <= 0:
        raise ValueError(
            f"ZCA: covariance + filter_bias·I is not positive definite (smallest eigenvalue "
            f"{eigenvalues[0]:.3g}); use filter_bias > 0 or more examples than features "
            f"(have {n} examples of {d} features)"
        )
    whitening = (eigenvectors / np.sqrt(eigenvalues)) @ eigenvectors.T
    return mean, (whitening + whitening.T) / 2  # symmetric to the last bit


# --------------------------------------------------------------------------------------------
# 8-bit quantisation
# --------------------------------------------------------------------------------------------


class Quantizer:
    """Float features → the network's 8-bit fixed-point input, as uint8.

    p = clip(rint(f / s) + 128, 0, 255) (``numpy.rint``: ties to even), so that the network's
    (p − 128)·2⁻⁷ is f/(128 s) rounded to 8 bits. The scale s is fitted on training features so
    that the ``percentile``-th percentile of |f| maps to ±127 steps: about (100 − percentile)%
    of training values are clipped (fewer with ``pow2``, which rounds s up to a power of two).
    :meth:`dequantize` maps p back to (p − 128)·s; for unclipped values |f − (p − 128)·s| ≤ s/2.

    The default, 99.99, was chosen on CIFAR-10 (JPEG copy) GCN + ZCA features, whose tails are
    heavy (max |f| ≈ 18 standard deviations): fitted on the training split it clips 1.2·10⁻⁴ of
    the test values and leaves a signal-to-error ratio of 32.0 dB, where 99.9 gives 27.2 dB
    (clipping dominates), 100 (no clipping) 28.6 dB (rounding dominates) and the best, near
    99.999, 32.8 dB.

    Args:
        percentile: percentile of |f| that maps to the largest step, in (0, 100].
        pow2: round s up to a power of two.
        scale: s, for a quantizer already fitted (e.g. loaded).
    """

    def __init__(
        self, percentile: float = 99.99, pow2: bool = False, scale: float | None = None
    ) -> None:
        if not (isinstance(percentile, int | float) and 0 < percentile <= 100):
            raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
        if scale is not None and not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"Quantizer scale must be a positive finite number, got {scale!r}")
        self.percentile = float(percentile)
        self.pow2 = bool(pow2)
        self.scale = None if scale is None else float(scale)
        self.clip_fraction: float | None = None
        """Fraction of the fitting values clipped to 0 or 255 (measured by :meth:`fit`)."""

    def fit(self, features: np.ndarray) -> Quantizer:
        """Choose s from training ``features`` (any shape); records :attr:`clip_fraction`."""
        magnitudes = np.abs(np.asarray(features, dtype=np.float64)).ravel()
        if magnitudes.size == 0 or not np.all(np.isfinite(magnitudes)):
            raise ValueError("Quantizer.fit needs a non-empty array of finite features")
        top = float(np.percentile(magnitudes, self.percentile))
        if top <= 0:
            top = float(magnitudes.max()) or 1.0  # degenerate data: all (or most) zeros
        scale = top / _QMAX
        if self.pow2:
            scale = 2.0 ** math.ceil(math.log2(scale))
        self.scale = scale
        self.clip_fraction = self.clipped_fraction(features)
        return self

    def quantize(self, features: np.ndarray) -> np.ndarray:
        """uint8 p = clip(rint(f / s) + 128, 0, 255), same shape as ``features``."""
        steps = np.rint(np.asarray(features, dtype=np.float64) / self._fitted_scale())
        return np.clip(steps + ZERO_POINT, 0, 255).astype(np.uint8)

    def dequantize(self, p: np.ndarray) -> np.ndarray:
        """float32 (p − 128)·s: the value each uint8 step stands for."""
        p = np.asarray(p)
        if p.dtype != np.uint8:
            raise ValueError(f"dequantize expects uint8 values, got {p.dtype}")
        return ((p.astype(np.float64) - ZERO_POINT) * self._fitted_scale()).astype(np.float32)

    def clipped_fraction(self, features: np.ndarray) -> float:
        """Fraction of ``features`` that :meth:`quantize` clips (to p = 0 or p = 255)."""
        steps = np.rint(np.asarray(features, dtype=np.float64) / self._fitted_scale())
        return float(np.mean((steps < -ZERO_POINT) | (steps > 255 - ZERO_POINT)))

    def _fitted_scale(self) -> float:
        if self.scale is None:
            raise RuntimeError("Quantizer is not fitted: call fit(training_features) first")
        return self.scale

    def __repr__(self) -> str:
        return f"Quantizer(percentile={self.percentile}, pow2={self.pow2}, scale={self.scale})"


# --------------------------------------------------------------------------------------------
# Preprocessors
# --------------------------------------------------------------------------------------------


class PixelScaling:
    """The BinaryNet Theano code's input scaling, x/255·2 − 1, which as uint8 is the identity.

    :meth:`transform` returns the uint8 images unchanged: the network's (p − 128)·2⁻⁷ is the
    same scaling up to a factor 255/256 and an offset of −1/256 (see the module docstring).
    :meth:`features` gives the Theano code's float values, for reference.
    """

    kind: ClassVar[str] = "pixels"

    def fit(self, images: np.ndarray) -> PixelScaling:
        """Nothing to fit; checks that ``images`` are uint8."""
        check_uint8_images(images, "PixelScaling.fit")
        return self

    def features(self, images: np.ndarray) -> np.ndarray:
        """float32 x/255·2 − 1 ∈ [−1, 1], same shape as ``images``."""
        images = check_uint8_images(images, "PixelScaling.features")
        return (images * (2.0 / 255.0) - 1.0).astype(np.float32)  # as Theano: float64, then cast

    def transform(self, images: np.ndarray) -> np.ndarray:
        """The uint8 images themselves (no copy)."""
        return check_uint8_images(images, "PixelScaling.transform")

    def fit_transform(self, images: np.ndarray) -> np.ndarray:
        return self.fit(images).transform(images)

    def state_dict(self) -> dict[str, Any]:
        """``{"kind": "pixels", "version": 1}``: nothing is fitted."""
        return {"kind": self.kind, "version": STATE_VERSION}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> PixelScaling:
        _check_kind(state, cls.kind)
        return cls()

    def __repr__(self) -> str:
        return "PixelScaling()"


class GCNZCA:
    """Global contrast normalisation, ZCA whitening fitted on the training split, and 8-bit
    quantisation (formulas and the source of the defaults in the module docstring).

    Example::

        pre = GCNZCA().fit(splits.train.images)          # uint8 [N, 32, 32, 3]
        train_u8 = pre.transform(splits.train.images)    # uint8, same shape
        test_u8 = pre.transform(splits.test.images)      # the same function
        state = pre.state_dict()                         # arrays + JSON scalars
        same = load_preprocessor(state)

    Args:
        scale, subtract_mean, use_std, sqrt_bias, min_divisor: global contrast normalisation
            (see :func:`global_contrast_normalize`).
        filter_bias: b, added to the covariance's eigenvalues before inverting their square
            root; damps the directions of smallest variance (pylearn2's default 0.1).
        percentile: see :class:`Quantizer`: the percentile of the training features' |f|
            that maps to ±127 steps.
        pow2: round the quantisation step up to a power of two.
        quantizer_images: the quantisation step is fitted on the features of at most this
            many training images, evenly spaced through the training set (a percentile of
            30 M values is as good as one of 138 M, and much cheaper).

    Attributes (after :meth:`fit` or :meth:`from_state_dict`):
        image_shape: ``(H, W, C)`` (or ``(H, W)``) of the images.
        mean: float32 ``[D]``, the training mean of the GCN'd images.
        whitening: float32 ``[D, D]``, the symmetric ZCA matrix P.
        quantizer: the fitted :class:`Quantizer`.
    """

    kind: ClassVar[str] = "gcn-zca"

    def __init__(
        self,
        *,
        scale: float = 55.0,
        subtract_mean: bool = True,
        use_std: bool = False,
        sqrt_bias: float = 0.0,
        min_divisor: float = 1e-8,
        filter_bias: float = 0.1,
        percentile: float = 99.99,
        pow2: bool = False,
        quantizer_images: int = 10_000,
    ) -> None:
        for name, value in (("scale", scale), ("min_divisor", min_divisor)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"GCNZCA: {name} must be a positive number, got {value!r}")
        for name, value in (("sqrt_bias", sqrt_bias), ("filter_bias", filter_bias)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"GCNZCA: {name} must be a non-negative number, got {value!r}")
        if isinstance(quantizer_images, bool) or not (
            isinstance(quantizer_images, int) and quantizer_images > 0
        ):
            raise ValueError(
                f"GCNZCA: quantizer_images must be a positive int, got {quantizer_images!r}"
            )
        self.scale = float(scale)
        self.subtract_mean = bool(subtract_mean)
        self.use_std = bool(use_std)
        self.sqrt_bias = float(sqrt_bias)
        self.min_divisor = float(min_divisor)
        self.filter_bias = float(filter_bias)
        self.quantizer_images = quantizer_images
        self.quantizer = Quantizer(percentile, pow2)
        self.image_shape: tuple[int, ...] | None = None
        self.mean: np.ndarray | None = None
        self.whitening: np.ndarray | None = None

    # -- fitting and applying ------------------------------------------------------------------

    def fit(self, images: np.ndarray) -> GCNZCA:
        """Fit the ZCA and the quantisation step on the training ``images`` (uint8
        ``[N, H, W, C]`` or ``[N, H, W]``), and only on them."""
        images = check_uint8_images(images, "GCNZCA.fit")
        if len(images) < 2:
            raise ValueError(f"GCNZCA.fit needs at least 2 images, got {len(images)}")
        flat = images.reshape(len(images), -1)
        # float32 storage halves the memory (553 MB for CIFAR-10); zca_fit sums in float64.
        gcn = np.empty(flat.shape, dtype=np.float32)
        for lo in range(0, len(flat), _CHUNK):
            gcn[lo : lo + _CHUNK] = self._gcn(flat[lo : lo + _CHUNK])
        mean, whitening = zca_fit(gcn, self.filter_bias)
        del gcn
        self.image_shape = tuple(int(d) for d in images.shape[1:])
        self.mean = mean.astype(np.float32)
        self.whitening = whitening.astype(np.float32)
        step = max(1, math.ceil(len(images) / self.quantizer_images))
        self.quantizer.fit(self.features(images[::step]))
        return self

    def features(self, images: np.ndarray) -> np.ndarray:
        """The whitened float32 features f of ``images``, shaped like the images (before
        quantisation)."""
        mean, whitening, shape = self._fitted()
        images = check_uint8_images(images, "GCNZCA.features", shape)
        flat = images.reshape(len(images), -1)
        out = np.empty(flat.shape, dtype=np.float32)
        for lo in range(0, len(flat), _CHUNK):
            out[lo : lo + _CHUNK] = self._whiten(flat[lo : lo + _CHUNK], mean, whitening)
        return out.reshape(images.shape)

    def transform(self, images: np.ndarray) -> np.ndarray:
        """uint8 images of the same shape: p = clip(rint(f / s) + 128, 0, 255)."""
        mean, whitening, shape = self._fitted()
        images = check_uint8_images(images, "GCNZCA.transform", shape)
        flat = images.reshape(len(images), -1)
        out = np.empty(flat.shape, dtype=np.uint8)
        for lo in range(0, len(flat), _CHUNK):
            block = self._whiten(flat[lo : lo + _CHUNK], mean, whitening)
            out[lo : lo + _CHUNK] = self.quantizer.quantize(block)
        return out.reshape(images.shape)

    def fit_transform(self, images: np.ndarray) -> np.ndarray:
        return self.fit(images).transform(images)

    def _gcn(self, flat: np.ndarray) -> np.ndarray:
        return global_contrast_normalize(
            flat,
            scale=self.scale,
            subtract_mean=self.subtract_mean,
            use_std=self.use_std,
            sqrt_bias=self.sqrt_bias,
            min_divisor=self.min_divisor,
        )

    def _whiten(self, flat: np.ndarray, mean: np.ndarray, whitening: np.ndarray) -> np.ndarray:
        """float32 (GCN(x) − μ) P for a block of flattened images."""
        centred = (self._gcn(flat) - mean).astype(np.float32)
        return centred @ whitening

    def _fitted(self) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
        if self.mean is None or self.whitening is None or self.image_shape is None:
            raise RuntimeError(
                "GCNZCA is not fitted: call fit(training_images) or load a state with "
                "load_preprocessor(state)"
            )
        return self.mean, self.whitening, self.image_shape

    # -- serialisation -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild this fitted preprocessor, without pickle.

        Arrays (``np.ndarray``, float32): ``zca_mean [D]``, ``zca_whitening [D, D]``. Every
        other value is a JSON scalar or list: ``kind`` (``"gcn-zca"``), ``version``,
        ``image_shape``, the GCN parameters (``gcn_scale``, ``gcn_subtract_mean``,
        ``gcn_use_std``, ``gcn_sqrt_bias``, ``gcn_min_divisor``), ``zca_filter_bias``, and the
        quantiser's ``quant_scale`` (s), ``quant_percentile``, ``quant_pow2``,
        ``quant_clip_fraction`` (measured at fit time; informative). The arrays are copies.
        """
        mean, whitening, shape = self._fitted()
        return {
            "kind": self.kind,
            "version": STATE_VERSION,
            "image_shape": list(shape),
            "gcn_scale": self.scale,
            "gcn_subtract_mean": self.subtract_mean,
            "gcn_use_std": self.use_std,
            "gcn_sqrt_bias": self.sqrt_bias,
            "gcn_min_divisor": self.min_divisor,
            "zca_filter_bias": self.filter_bias,
            "quant_scale": self.quantizer.scale,
            "quant_percentile": self.quantizer.percentile,
            "quant_pow2": self.quantizer.pow2,
            "quant_clip_fraction": self.quantizer.clip_fraction,
            "zca_mean": mean.copy(),
            "zca_whitening": whitening.copy(),
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> GCNZCA:
        """Rebuild from :meth:`state_dict` (arrays may be anything ``numpy.asarray`` accepts,
        e.g. torch tensors), checking every entry."""
        _check_kind(state, cls.kind)
        missing = sorted(_GCNZCA_KEYS - state.keys())
        if missing:
            raise ValueError(f"{cls.kind} state lacks {', '.join(missing)}")
        shape = state["image_shape"]
        if not (
            isinstance(shape, list | tuple)
            and len(shape) in (2, 3)
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        ):
            raise ValueError(f"{cls.kind} state: image_shape must be [H, W, C], got {shape!r}")
        d = math.prod(shape)
        pre = cls(
            scale=_state_number(state, "gcn_scale"),
            subtract_mean=_state_bool(state, "gcn_subtract_mean"),
            use_std=_state_bool(state, "gcn_use_std"),
            sqrt_bias=_state_number(state, "gcn_sqrt_bias"),
            min_divisor=_state_number(state, "gcn_min_divisor"),
            filter_bias=_state_number(state, "zca_filter_bias"),
            percentile=_state_number(state, "quant_percentile"),
            pow2=_state_bool(state, "quant_pow2"),
        )
        pre.quantizer.scale = _state_number(state, "quant_scale", positive=True)
        if state["quant_clip_fraction"] is not None:
            pre.quantizer.clip_fraction = _state_number(state, "quant_clip_fraction")
        pre.image_shape = tuple(shape)
        pre.mean = _state_array(state, "zca_mean", (d,))
        pre.whitening = _state_array(state, "zca_whitening", (d, d))
        return pre

    def __repr__(self) -> str:
        fitted = f", image_shape={self.image_shape}" if self.image_shape else ", not fitted"
        return (
            f"GCNZCA(scale={self.scale}, use_std={self.use_std}, sqrt_bias={self.sqrt_bias}, "
            f"filter_bias={self.filter_bias}, {self.quantizer!r}{fitted})"
        )


_GCNZCA_KEYS = {
    "image_shape",
    "gcn_scale",
    "gcn_subtract_mean",
    "gcn_use_std",
    "gcn_sqrt_bias",
    "gcn_min_divisor",
    "zca_filter_bias",
    "quant_scale",
    "quant_percentile",
    "quant_pow2",
    "quant_clip_fraction",
    "zca_mean",
    "zca_whitening",
}

PREPROCESSORS: dict[str, type[PixelScaling] | type[GCNZCA]] = {
    PixelScaling.kind: PixelScaling,
    GCNZCA.kind: GCNZCA,
}
"""The preprocessors by name (``kind``): ``"pixels"`` and ``"gcn-zca"``."""


def load_preprocessor(state: Mapping[str, Any]) -> PixelScaling | GCNZCA:
    """Rebuild the preprocessor whose :meth:`state_dict` is ``state`` (dispatching on its
    ``kind``), validating every entry: a state read from a model file is untrusted input.

    To store a state, put its ``np.ndarray`` values in the tensor store (safetensors, or
    ``torch.from_numpy`` in a checkpoint) and the rest in JSON; to load, merge them back into
    one dict.

    Raises:
        ValueError: unknown ``kind`` or ``version``, a missing entry, an array of the wrong
            shape or with non-finite values, a scalar out of range.
    """
    if not isinstance(state, Mapping):
        raise ValueError(f"a preprocessor state must be a dict, got {type(state).__name__}")
    kind = state.get("kind")
    if kind not in PREPROCESSORS:
        raise ValueError(
            f"unknown preprocessor kind {kind!r}; expected one of {sorted(PREPROCESSORS)}"
        )
    return PREPROCESSORS[kind].from_state_dict(state)


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def check_uint8_images(
    images: np.ndarray, where: str, shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """``images`` as an ndarray, checked to be uint8 ``[N, H, W(, C)]`` (of ``shape`` if given)."""
    images = np.asarray(images)
    ok = images.dtype == np.uint8 and images.ndim in (3, 4)
    if ok and shape is not None:
        ok = images.shape[1:] == tuple(shape)
    if not ok:
        want = "[N, H, W, C] or [N, H, W]" if shape is None else str(["N", *shape])
        raise ValueError(
            f"{where}: expected uint8 images {want}, got {images.dtype} of shape "
            f"{list(images.shape)}"
        )
    return images


def _check_kind(state: Mapping[str, Any], kind: str) -> None:
    if not isinstance(state, Mapping) or state.get("kind") != kind:
        found = state.get("kind") if isinstance(state, Mapping) else type(state).__name__
        raise ValueError(f"not a {kind!r} preprocessor state (kind {found!r})")
    if state.get("version") != STATE_VERSION:
        raise ValueError(
            f"{kind} state version {state.get('version')!r} is not supported "
            f"(this binarynet reads version {STATE_VERSION})"
        )


def _state_number(state: Mapping[str, Any], key: str, positive: bool = False) -> float:
    value = state[key]
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"preprocessor state: {key} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"preprocessor state: {key} must be > 0, got {value!r}")
    return float(value)


def _state_bool(state: Mapping[str, Any], key: str) -> bool:
    value = state[key]
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"preprocessor state: {key} must be true or false, got {value!r}")
    return bool(value)


def _state_array(state: Mapping[str, Any], key: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(state[key])
    except (TypeError, ValueError) as e:
        raise ValueError(f"preprocessor state: {key} is not an array ({e})") from e
    if array.shape != shape or array.dtype.kind != "f":
        raise ValueError(
            f"preprocessor state: {key} must be a float array of shape {list(shape)}, got "
            f"{array.dtype} of shape {list(array.shape)}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"preprocessor state: {key} holds NaN or infinite values")
    return np.array(array, dtype=np.float32)  # a copy, detached from the caller's buffer
