"""What binarization buys, measured on a model: parameters, memory, operations, energy.

    >>> from binarynet.analysis.summary import summary
    >>> s = summary(mnist_mlp())            # a torch model, a .bnn file or a checkpoint path
    >>> print(s)                            # a rich table; s.to_dict() for scripts
    >>> s.compression, s.macs, s.energy().ratio

Per layer: the output shape, the trainable parameters, the stored values by bit width as deployed,
the memory if the network were float32 and as deployed (exactly the bytes the ``.bnn`` file
stores), and the multiply-accumulates split by kind:

``binary``
    ±1 activations × ±1 weights: XNOR-popcount (``bgemm`` / ``bconv2d`` in the engine);
``int8``
    the first layer, 8-bit fixed-point input × ±1 weights (Algorithm 5: exact integer sums
    Σ pᵢwᵢ, which the engine computes with a byte GEMM, u8 × ±1);
``float``
    real-valued operands: the float layers (``nn.Linear``, ``nn.Conv2d``) of a float network.

Where the numbers come from: a ``.bnn`` file's rows are its ops' costs
(:meth:`binarynet.graph.ops.Op.cost`: each op knows its stored bits, bytes and operations). A torch
model with binarynet binary layers is exported in memory (:func:`binarynet.export.build_graph`,
the one exporter) and gets the same op costs, mapped back to its modules through the ops'
``source``; only torch-side facts (trainable parameters, float32 bytes, shapes) come from the
modules. A model that cannot be exported has no deployed sizes (``ValueError``). A torch model
without binary layers is summarised as the float32 network it is.

Counting rules
--------------
A layer with K inputs per output (K = in_features, or C·k_h·k_w for a convolution) and n output
values does n·K MACs. Memory, float32: 4 bytes per weight and bias, and every batch norm folded
into a per-channel scale and shift (2 × 4 bytes per channel), as a float inference engine would
store it. Memory, deployed (:mod:`binarynet.export`): sign bits packed into 64-bit words along the
reduction axis (the first layer and dense layers over a vector: O·⌈K/64⌉ words; layers over
[H, W, C] bits: one group of ⌈C/64⌉ words per tap or position), each hidden batch norm + sign as
two int32 thresholds per channel (a bias before it is folded in), the last batch norm as a
float32 scale and shift per class (plus the bias, if any). Trainable parameters count the
batch-norm γ and β, not the running statistics.

Energy estimate
---------------
An *estimate* per inference (one image), from the 45 nm figures of M. Horowitz, "Computing's
energy problem (and what we can do about it)", ISSCC 2014, as reproduced in Tables 2 and 3 of the
BNN paper (Courbariaux, Hubara, Soudry, El-Yaniv, Bengio, arXiv:1602.02830):

    operation        add      multiply         memory, per 64-bit access
    8-bit int        0.03 pJ  0.2 pJ           8 KB SRAM    10 pJ
    32-bit int       0.1 pJ   3.1 pJ           32 KB SRAM   20 pJ
    16-bit float     0.4 pJ   1.1 pJ           1 MB SRAM   100 pJ
    32-bit float     0.9 pJ   3.7 pJ           DRAM       1.3–2.6 nJ (1.3 nJ used)

The float network is the same architecture computed in float32: every MAC is a float32 multiply
and add (4.6 pJ), batch norm a multiply and an add per value, max-pooling a float32 compare (an
add) per extra window element. The binary network as deployed:

- XNOR-popcount has no entry in the table. **Assumption**: per 64-bit word, the 64 XNOR gates
  cost at most 8 8-bit adds (an adder bit is several gates), the popcount is an adder tree of
  32 + 32 + 24 + 16 + 10 + 6 = 120 full-adder bits ≈ 15 8-bit adds, and accumulating the count is
  one 32-bit add: 23 × 0.03 + 0.1 = 0.79 pJ per 64 binary MACs;
- an 8-bit × ±1 MAC of the first layer is a signed add into a 32-bit accumulator (0.1 pJ);
- a threshold (batch norm + sign) is two 32-bit compares (2 × 0.1 pJ), max-pooling a 32-bit
  compare per extra window element, the last layer's scale and shift float32 (4.6 pJ per class).

Memory traffic, the same rule for both networks: every stored weight word is read once per
inference, from the smallest memory level that holds all of the network's parameters (8 KB,
32 KB, 1 MB SRAM, else DRAM); the input image is read once, and every activation between layers
(the binary network: packed ±1 bits; the float one: float32) is written once and read once, from
the smallest level that holds that activation. Caches, reuse across a batch, control and data
movement inside the datapath are ignored: the numbers compare the two networks under one simple
model, they are not a measurement of any chip.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from binarynet import filekind
from binarynet.analysis.filters import FilterRepetitions, mean_repetitions
from binarynet.graph.ops import OpCost, Role

__all__ = [
    "ENERGY_PJ",
    "MAC_KINDS",
    "MEMORY_LEVELS",
    "EnergyEstimate",
    "LayerSummary",
    "Summary",
    "summary",
]

MAC_KINDS = ("binary", "int8", "float")
"""Kinds of multiply-accumulate, see the module docstring."""

ENERGY_PJ: dict[str, float] = {
    "int8_add": 0.03,
    "int8_mult": 0.2,
    "int32_add": 0.1,
    "int32_mult": 3.1,
    "float16_add": 0.4,
    "float16_mult": 1.1,
    "float32_add": 0.9,
    "float32_mult": 3.7,
}
"""Energy per operation at 45 nm (Horowitz, ISSCC 2014; Table 2 of arXiv:1602.02830), pJ."""

MEMORY_LEVELS: tuple[tuple[str, float, float], ...] = (
    ("8 KB SRAM", 8 * 1024, 10.0),
    ("32 KB SRAM", 32 * 1024, 20.0),
    ("1 MB SRAM", 1024 * 1024, 100.0),
    ("DRAM", math.inf, 1300.0),
)
"""(name, capacity in bytes, pJ per 64-bit access) (Horowitz, ISSCC 2014; Table 3 of
arXiv:1602.02830, DRAM at the low end of its 1.3–2.6 nJ)."""

XNOR_WORD_PJ = 8 * ENERGY_PJ["int8_add"]
"""Assumption: 64 XNOR gates cost at most 8 8-bit adds."""
POPCOUNT_WORD_PJ = 15 * ENERGY_PJ["int8_add"]
"""Assumption: a 64-bit popcount is an adder tree of 120 full-adder bits ≈ 15 8-bit adds."""
BINARY_WORD_PJ = XNOR_WORD_PJ + POPCOUNT_WORD_PJ + ENERGY_PJ["int32_add"]
"""XNOR + popcount of one 64-bit word and the 32-bit accumulation of the count (0.79 pJ)."""

_FLOAT_MAC_PJ = ENERGY_PJ["float32_mult"] + ENERGY_PJ["float32_add"]


def memory_level(nbytes: float) -> tuple[str, float]:
    """(name, pJ per 64-bit access) of the smallest memory level holding ``nbytes``."""
    for name, capacity, pj in MEMORY_LEVELS:
        if nbytes <= capacity:
            return name, pj
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class LayerSummary:
    """One row of a :class:`Summary`.

    Attributes:
        name: the torch module's name, or the ``.bnn`` op's source module.
        type: the module class, or the op type.
        output_shape: per-example output shape, torch order ((C, H, W) or (F,)).
        params: trainable parameters (weights, biases, batch-norm γ and β).
        bits: {bit width: number of values stored as deployed}.
        float32_bytes: memory of this layer's parameters in a float32 network.
        deployed_bytes: memory as deployed (the bytes of the ``.bnn`` tensors).
        macs: {kind: multiply-accumulates} over :data:`MAC_KINDS`.
        ops: other per-value operations: ``threshold`` (batch norm + sign), ``affine``
            (a float batch norm or the last layer's scores), ``compare`` (max-pooling).
        activation: (float32 bytes, deployed bytes) of the value this layer writes to memory for
            the next one, or None when its output stays inside a fused stage.
        note: how the layer is deployed, in words.
    """

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int = 0
    bits: dict[int, int] = field(default_factory=dict)
    float32_bytes: int = 0
    deployed_bytes: int = 0
    macs: dict[str, int] = field(default_factory=dict)
    ops: dict[str, int] = field(default_factory=dict)
    activation: tuple[int, int] | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "output_shape": list(self.output_shape),
            "params": self.params,
            "bits": {str(k): v for k, v in sorted(self.bits.items())},
            "float32_bytes": self.float32_bytes,
            "deployed_bytes": self.deployed_bytes,
            "macs": {k: self.macs.get(k, 0) for k in MAC_KINDS},
            "ops": dict(self.ops),
            "activation_bytes": (
                None
                if self.activation is None
                else {"float32": self.activation[0], "deployed": self.activation[1]}
            ),
            "note": self.note,
        }


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy per inference in pJ, for the float32 network and as deployed (see the module
    docstring for the model); each a breakdown {"arithmetic", "weights", "activations"}."""

    float32: dict[str, float]
    deployed: dict[str, float]
    weight_level: tuple[str, str]  # (float32, deployed) memory level of the weights
    batch: int = 1  # images per weight read

    @property
    def float32_total(self) -> float:
        return sum(self.float32.values())

    @property
    def deployed_total(self) -> float:
        return sum(self.deployed.values())

    @property
    def ratio(self) -> float:
        """How many times less energy the deployed network needs (float32 / deployed)."""
        return self.float32_total / self.deployed_total if self.deployed_total else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": True,
            "unit": "pJ per inference",
            "batch": self.batch,
            "float32": {**self.float32, "total": self.float32_total},
            "deployed": {**self.deployed, "total": self.deployed_total},
            "ratio": self.ratio,
            "weights_memory_level": {
                "float32": self.weight_level[0],
                "deployed": self.weight_level[1],
            },
            "source": "M. Horowitz, ISSCC 2014, 45 nm (Tables 2-3 of arXiv:1602.02830)",
            "table_pj": dict(ENERGY_PJ),
            "memory_pj_per_64bit_access": {name: pj for name, _, pj in MEMORY_LEVELS},
            "assumptions": {
                "binary_word_pj": BINARY_WORD_PJ,
                "binary_word": "XNOR of 64 bits = 8 int8 adds, popcount = 15 int8 adds, "
                "accumulate = 1 int32 add",
                "int8_mac": "1 int32 add",
                "threshold": "2 int32 compares (adds)",
                "memory": "weights read once from the smallest level holding all of them; "
                "input read once; each activation written and read once from the smallest "
                "level holding it",
            },
        }


@dataclass(frozen=True)
class Summary:
    """The summary of a model: rows per layer, totals, filter repetitions, energy estimate.

    ``str(summary)`` renders the rich table as text; :meth:`print` writes it to a terminal with
    colours; :meth:`to_dict` gives everything as JSON-serialisable values.
    """

    name: str
    source: str  # "torch" or ".bnn"
    input_shape: tuple[int, ...]
    layers: tuple[LayerSummary, ...]
    filters: tuple[FilterRepetitions, ...] = ()
    preprocess_bytes: int = 0
    file_bytes: int | None = None
    batch: int = 1  # images per weight read in the energy estimate

    # -- totals --
    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def bits(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for layer in self.layers:
            for width, n in layer.bits.items():
                out[width] = out.get(width, 0) + n
        return dict(sorted(out.items()))

    @property
    def float32_bytes(self) -> int:
        return sum(layer.float32_bytes for layer in self.layers)

    @property
    def deployed_bytes(self) -> int:
        return sum(layer.deployed_bytes for layer in self.layers)

    @property
    def compression(self) -> float:
        """float32 memory / deployed memory of the parameters."""
        return self.float32_bytes / self.deployed_bytes if self.deployed_bytes else math.nan

    @property
    def macs(self) -> dict[str, int]:
        return {k: sum(layer.macs.get(k, 0) for layer in self.layers) for k in MAC_KINDS}

    @property
    def ops(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for layer in self.layers:
            for k, n in layer.ops.items():
                out[k] = out.get(k, 0) + n
        return out

    def energy(self, batch: int | None = None) -> EnergyEstimate:
        """The energy estimate per inference (see the module docstring).

        ``batch``: images that share one read of the weights (default: ``self.batch``, 1); the
        weights' energy per image is divided by it, the rest is per image.
        """
        batch = self.batch if batch is None else batch
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive integer, got {batch!r}")
        macs, ops = self.macs, self.ops
        affine = ops.get("affine", 0)
        threshold = ops.get("threshold", 0)
        compare = ops.get("compare", 0)
        float_arith = (
            sum(macs.values()) * _FLOAT_MAC_PJ
            + (affine + threshold) * _FLOAT_MAC_PJ
            + compare * ENERGY_PJ["float32_add"]
        )
        deployed_arith = (
            macs["binary"] * BINARY_WORD_PJ / 64
            + macs["int8"] * ENERGY_PJ["int32_add"]
            + macs["float"] * _FLOAT_MAC_PJ
            + threshold * 2 * ENERGY_PJ["int32_add"]
            + affine * _FLOAT_MAC_PJ
            + compare * ENERGY_PJ["int32_add"]
        )
        level_f, pj_f = memory_level(self.float32_bytes)
        level_d, pj_d = memory_level(self.deployed_bytes)
        weights_f = -(-self.float32_bytes // 8) * pj_f / batch
        weights_d = -(-self.deployed_bytes // 8) * pj_d / batch
        act_f = act_d = 0.0
        first = True
        for layer in self.layers:
            if layer.activation is None:
                continue
            accesses = 1 if first else 2  # the input is only read; the others written + read
            first = False
            for nbytes, is_float in ((layer.activation[0], True), (layer.activation[1], False)):
                cost = accesses * -(-nbytes // 8) * memory_level(nbytes)[1]
                if is_float:
                    act_f += cost
                else:
                    act_d += cost
        return EnergyEstimate(
            {"arithmetic": float_arith, "weights": weights_f, "activations": act_f},
            {"arithmetic": deployed_arith, "weights": weights_d, "activations": act_d},
            (level_f, level_d),
            batch,
        )

    # -- output --
    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-serialisable (what ``binarynet summary --json`` prints)."""
        macs = self.macs
        total_macs = sum(macs.values())
        return {
            "name": self.name,
            "source": self.source,
            "input_shape": list(self.input_shape),
            "layers": [layer.to_dict() for layer in self.layers],
            "totals": {
                "params": self.params,
                "bits": {str(k): v for k, v in self.bits.items()},
                "float32_bytes": self.float32_bytes,
                "deployed_bytes": self.deployed_bytes,
                "compression": self.compression,
                "macs": macs,
                "mac_fractions": {
                    k: (v / total_macs if total_macs else 0.0) for k, v in macs.items()
                },
                "ops": self.ops,
                "preprocess_bytes": self.preprocess_bytes,
                "file_bytes": self.file_bytes,
            },
            "energy": self.energy().to_dict(),
            "filters": {
                "layers": [f.to_dict() for f in self.filters],
                "mean": mean_repetitions(self.filters),
                "paper_unique_2d_sign": 0.42,
            },
        }

    def renderables(self) -> list[Any]:
        """The rich renderables: the layer table, the totals, the filter table (if any)."""
        return _renderables(self)

    def print(self, console: Any = None) -> None:
        """Print the tables to ``console`` (default: a rich Console on stdout)."""
        from rich.console import Console

        if console is None:  # a pipe or file gets 160 columns rather than rich's 80
            console = Console(width=None if sys.stdout.isatty() else 160)
        for item in self.renderables():
            console.print(item)

    def __str__(self) -> str:
        from rich.console import Console

        console = Console(width=160, color_system=None, force_terminal=False)
        with console.capture() as capture:
            self.print(console)
        return capture.get()


# --------------------------------------------------------------------------------------------
# From a torch model
# --------------------------------------------------------------------------------------------


def _numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def _leaves(model: Any) -> list[tuple[str, Any]]:
    """The modules without children (the ones a forward pass runs), by name."""
    return [(name, m) for name, m in model.named_modules() if not list(m.children())]


def _default_input_shape(model: Any) -> tuple[int, ...]:
    from torch import nn

    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            raise ValueError(
                "pass input_shape=(C, H, W): a convolutional model's input size is not "
                "determined by its layers (the paper's ConvNets take (3, 32, 32))"
            )
        if isinstance(module, nn.Linear):
            return (module.in_features,)
    raise ValueError("pass input_shape: the model has no Linear or Conv2d layer to infer it from")


def _trace(model: Any, input_shape: tuple[int, ...]) -> list[tuple[str, Any, tuple, tuple]]:
    """(name, module, per-example input shape, output shape) of every leaf, in call order."""
    import torch

    from binarynet.training.nn import FixedPointInput

    calls: list[tuple[str, Any, tuple, tuple]] = []
    hooks = []

    def hook(name: str):
        def record(module, inputs, output):
            shape_in = tuple(inputs[0].shape[1:]) if inputs else ()
            calls.append((name, module, shape_in, tuple(output.shape[1:])))

        return record

    for name, module in _leaves(model):
        hooks.append(module.register_forward_hook(hook(name)))
    leaves = _leaves(model)
    dtype = torch.uint8 if leaves and isinstance(leaves[0][1], FixedPointInput) else torch.float32
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), dtype=dtype))
    except Exception as exc:
        raise ValueError(
            f"a forward pass with input shape {list(input_shape)} failed ({exc}); pass the "
            "model's per-example input shape, e.g. input_shape=(3, 32, 32)"
        ) from exc
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return calls


def _cost_row(cost: OpCost) -> dict[str, Any]:
    """The :class:`LayerSummary` fields of an op's :class:`~binarynet.graph.ops.OpCost`."""
    return {f.name: getattr(cost, f.name) for f in dataclasses.fields(cost)}


def _torch_layers(model: Any, input_shape: tuple[int, ...]) -> list[LayerSummary]:
    """One row per leaf module. A model with binarynet binary layers is exported in memory
    (:func:`binarynet.export.build_graph`) and its deployed facts (bits, bytes, MACs, other
    operations, packed activations) are the graph's ops' :meth:`~binarynet.graph.ops.Op.cost`,
    mapped back to the modules by the ops' ``source``; the modules give what only torch knows
    (trainable parameters with the batch-norm γ and β, float32 bytes, output shapes)."""
    from binarynet.training.nn import BinaryConv2d, BinaryLinear

    calls = _trace(model, input_shape)
    if not any(isinstance(m, (BinaryLinear, BinaryConv2d)) for _, m, _, _ in calls):
        return _float_layers(calls)
    from binarynet.export import ExportError, build_graph
    from binarynet.graph.bnnfile import tensor_table

    try:
        # Nothing is written or deployed: the sizes need the graph, not the export's self-check.
        graph, tensors = build_graph(model, input_shape, self_check=False)
    except ExportError as exc:
        raise ValueError(
            f"the model cannot be deployed, so it has no deployed sizes: {exc}"
        ) from None
    values = graph.infer(tensor_table(tensors))
    costs: dict[str | None, OpCost] = {
        op.source: op.cost(values[i], values[i + 1], tensors) for i, op in enumerate(graph.ops)
    }  # the scores op (the last batch norm's) has no source: key None
    return _binary_rows(calls, costs)


def _binary_rows(
    calls: list[tuple[str, Any, tuple, tuple]], costs: Mapping[str | None, OpCost]
) -> list[LayerSummary]:
    from torch import nn
    from torch.nn.modules.batchnorm import _BatchNorm

    from binarynet.training.nn import BinaryActivation, FixedPointInput

    passthrough = (nn.Flatten, nn.Dropout, nn.Identity)
    meaningful = [(name, m) for name, m, _, _ in calls if not isinstance(m, passthrough)]
    following = dict(zip([n for n, _ in meaningful], [*meaningful[1:], (None, None)], strict=True))
    rows: list[LayerSummary] = []
    for name, module, _shape_in, shape_out in calls:
        n_out = _numel(shape_out)
        params = sum(p.numel() for p in module.parameters(recurse=False))
        row: dict[str, Any] = {}
        if isinstance(module, FixedPointInput):
            row = {"activation": (n_out, n_out), "note": "8-bit fixed-point input"}
        elif isinstance(module, _BatchNorm):
            # Folded into the op after it: the next BinaryActivation's threshold (whose packed
            # output that module's row shows), or else the scores (the op without a source).
            next_name, next_module = following[name]
            thresholded = isinstance(next_module, BinaryActivation)
            cost = costs[next_name if thresholded else None]
            c = module.num_features
            row = _cost_row(cost) | {
                "params": params,
                "float32_bytes": 8 * c,
                "activation": None if thresholded else cost.activation,
                "note": "→ int32 thresholds lo, hi"
                if thresholded
                else "→ float32 scale, shift" + (" (+ bias)" if cost.params > 2 * c else ""),
            }
        elif isinstance(module, BinaryActivation):
            row = {"activation": costs[name].activation, "note": "sign → packed bits"}
        elif name in costs:  # a binary layer or a pool: its op
            row = _cost_row(costs[name])
            if row["params"]:  # a layer: its trainable weights (and bias) in float32
                row |= {"params": params, "float32_bytes": 4 * params}
        elif not isinstance(module, passthrough):  # pragma: no cover - export refuses it
            raise AssertionError(f"module {name} ({type(module).__name__}) became no op")
        rows.append(
            LayerSummary(name=name, type=type(module).__name__, output_shape=shape_out, **row)
        )
    return rows


def _float_layers(calls: list[tuple[str, Any, tuple, tuple]]) -> list[LayerSummary]:
    """One row per leaf module of a model without binary layers: the float32 network it is
    (``nn.Linear`` / ``nn.Conv2d`` with float MACs, batch norm as a float32 affine), the
    baseline that binary networks are compared with. Nothing here is deployed as a ``.bnn``."""
    from torch import nn
    from torch.nn.modules.batchnorm import _BatchNorm

    from binarynet.training.nn import FixedPointInput

    passthrough = (nn.Flatten, nn.Dropout, nn.Identity)
    rows: list[LayerSummary] = []
    for i, (name, module, _shape_in, shape_out) in enumerate(calls):
        n_out = _numel(shape_out)
        params = sum(p.numel() for p in module.parameters(recurse=False))
        row: dict[str, Any] = {}
        if isinstance(module, FixedPointInput):
            row = {"activation": (n_out, n_out), "note": "8-bit fixed-point input"}
        elif isinstance(module, passthrough):
            pass
        elif isinstance(module, (nn.Linear, nn.Conv2d)):
            if isinstance(module, nn.Linear):
                k = module.in_features
            else:
                kh, kw = module.kernel_size
                k = module.in_channels // module.groups * kh * kw
            n = module.weight.numel() + (module.bias.numel() if module.bias is not None else 0)
            row = {
                "params": params,
                "bits": {32: n},
                "float32_bytes": 4 * n,
                "deployed_bytes": 4 * n,
                "macs": {"float": n_out * k},
                "note": "float32",
            }
        elif isinstance(module, _BatchNorm):
            c = module.num_features
            row = {
                "params": params,
                "bits": {32: 2 * c},
                "float32_bytes": 8 * c,
                "deployed_bytes": 8 * c,
                "ops": {"affine": n_out},
                "note": "→ float32 scale, shift",
            }
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            size = module.kernel_size
            window = size * size if isinstance(size, int) else _numel(size)
            row = {"ops": {"compare": n_out * (window - 1)}}
        else:  # any activation function or other module: a float32 value
            row = {"params": params, "activation": (4 * n_out, 4 * n_out)}
            if params:
                row["bits"] = {32: params}
                row["float32_bytes"] = row["deployed_bytes"] = 4 * params
        if i == len(calls) - 1 and row.get("activation") is None:
            row["activation"] = (4 * n_out, 4 * n_out)  # the scores
        rows.append(
            LayerSummary(name=name, type=type(module).__name__, output_shape=shape_out, **row)
        )
    return rows


# --------------------------------------------------------------------------------------------
# From a .bnn file
# --------------------------------------------------------------------------------------------


def _torch_order(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape


def _bnn_layers(bnn: Any) -> list[LayerSummary]:
    """The input, then one row per op: the op's :meth:`~binarynet.graph.ops.Op.cost`."""
    graph, values, tensors = bnn.graph, bnn.values, bnn.tensors
    x0 = values[0]
    n0 = _numel(x0.shape)
    rows = [
        LayerSummary(
            "input",
            "uint8 input",
            _torch_order(x0.shape),
            activation=(n0, n0),
            note="8-bit fixed-point input",
        )
    ]
    for i, op in enumerate(graph.ops):
        x, y = values[i], values[i + 1]
        name = op.source or ("output" if op.role is Role.SCORES else f"op {i}")
        cost = op.cost(x, y, tensors)
        rows.append(LayerSummary(name, op.type, _torch_order(y.shape), **_cost_row(cost)))
    return rows


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _preprocess_bytes(preprocessor: Any) -> int:
    if preprocessor is None or not hasattr(preprocessor, "state_dict"):
        return 0
    import numpy as np

    return sum(
        np.asarray(v, dtype=np.float32).nbytes
        for v in preprocessor.state_dict().values()
        if isinstance(v, np.ndarray)
    )


def _when(epoch: Any, batch: Any) -> str:
    """ " (epoch 7)" for best.pt (the epoch it was saved at); " (after 3 epochs and 218 batches)"
    for last.pt, which counts completed epochs and the batches done in the next one."""
    if not isinstance(epoch, int):
        return ""
    if batch is None:
        return f" (epoch {epoch})"
    return f" (after {epoch} epochs" + (f" and {batch} batches)" if batch else ")")


def _from_checkpoint(
    path: Path, input_shape: tuple[int, ...] | None, filters: bool, name: str | None
) -> Summary:
    from binarynet.config import DEFAULT_INPUT_SHAPES
    from binarynet.training.checkpoint import read_checkpoint

    ckpt = read_checkpoint(path)
    cfg = ckpt.config
    if input_shape is None:
        kwargs = cfg.get("model_kwargs", {})
        if "in_features" in kwargs and kwargs["in_features"] != 784:
            input_shape = (int(kwargs["in_features"]),)
        else:
            input_shape = DEFAULT_INPUT_SHAPES.get(str(cfg.get("model")))
    label = name or f"{cfg.get('model', path.name)} {cfg.get('model_kwargs', {}) or ''}".strip()
    label += _when(ckpt.epoch, ckpt.batch)
    s = _summary(ckpt.model, input_shape, label, filters)
    return Summary(
        s.name,
        s.source,
        s.input_shape,
        s.layers,
        s.filters,
        _preprocess_bytes(ckpt.preprocessor),
        None,
    )


def _from_bnn(bnn: Any, filters: bool, name: str | None, file_bytes: int | None) -> Summary:
    from binarynet.analysis.filters import model_repetitions
    from binarynet.graph.graph import PREPROCESS_PREFIX

    prov = bnn.graph.provenance
    label = name or f"{prov.get('model', 'model')} {prov.get('model_kwargs') or ''}".strip()
    last = prov.get("checkpoint") == "last.pt"
    label += _when(prov.get("epoch"), 0 if last else None)
    pre = sum(t.nbytes for n, t in bnn.tensors.items() if n.startswith(PREPROCESS_PREFIX))
    return Summary(
        name=label,
        source=".bnn",
        input_shape=_torch_order(bnn.graph.input.shape),
        layers=tuple(_bnn_layers(bnn)),
        filters=tuple(model_repetitions(bnn)) if filters else (),
        preprocess_bytes=int(pre),
        file_bytes=file_bytes if file_bytes is not None else (bnn.size or None),
    )


def summary(
    model: Any,
    input_shape: Sequence[int] | None = None,
    *,
    name: str | None = None,
    filters: bool = True,
    batch: int = 1,
) -> Summary:
    """Summarise ``model``: per-layer parameters, memory, MACs; totals; energy; filter repetitions.

    Args:
        model: a torch ``nn.Module`` (a binarynet model that :func:`binarynet.export.export`
            accepts, or a float one: any module whose leaves run in order, e.g.
            ``nn.Sequential``), a loaded :class:`binarynet.graph.bnnfile.BNNFile`, or the path of a
            ``.bnn`` file (read without torch) or of a ``binarynet train`` checkpoint
            (``best.pt`` / ``last.pt``).
        input_shape: the per-example torch input shape, e.g. ``(28, 28)`` or ``(3, 32, 32)``.
            Default: ``(in_features,)`` for an MLP; from the checkpoint's model name for a
            checkpoint; from the file for a ``.bnn``. Required for other ConvNets.
        name: a label for the tables (default: from the checkpoint or file, else the class).
        filters: also count filter repetitions of the binary convolutions
            (:mod:`binarynet.analysis.filters`).
        batch: images per read of the weights in the energy estimate (1: one image at a time,
            the worst case for weight traffic).

    Returns:
        A :class:`Summary`; ``print(s)`` or ``s.print()`` shows the tables, ``s.to_dict()``
        the same as JSON-serialisable values.

    Raises:
        ValueError: the input shape is missing or does not fit the model, or a model with
            binary layers cannot be exported (it has no deployed sizes).
        FileNotFoundError: ``model`` is a path that does not exist.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    return dataclasses.replace(_summary(model, input_shape, name, filters), batch=batch)


def _summary(
    model: Any, input_shape: Sequence[int] | None, name: str | None, filters: bool
) -> Summary:
    shape = None if input_shape is None else tuple(int(d) for d in input_shape)
    if shape is not None and (not shape or any(d < 1 for d in shape)):
        raise ValueError(f"input_shape must be positive sizes, got {list(input_shape or ())}")
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if path.is_dir():
            raise ValueError(f"model file {path} is a directory; expected a .bnn or a checkpoint")
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        if filekind.model_kind(path) == filekind.BNN:
            from binarynet.graph import bnnfile

            bnn = bnnfile.load(path)
            if shape is not None and shape != _torch_order(bnn.graph.input.shape):
                raise ValueError(
                    f"{path} takes inputs of shape {list(_torch_order(bnn.graph.input.shape))} "
                    f"(torch order), not {list(shape)}"
                )
            return _from_bnn(bnn, filters, name, path.stat().st_size)
        return _from_checkpoint(path, shape, filters, name)
    if hasattr(model, "graph") and hasattr(model, "tensors"):
        return _from_bnn(model, filters, name, None)
    if not hasattr(model, "named_modules"):
        raise TypeError(f"expected a torch model, a BNNFile or a path, got {type(model).__name__}")
    from binarynet.analysis.filters import model_repetitions

    if shape is None:
        shape = _default_input_shape(model)
    layers = _torch_layers(model, shape)
    return Summary(
        name=name or type(model).__name__,
        source="torch",
        input_shape=shape,
        layers=tuple(layers),
        filters=tuple(model_repetitions(model)) if filters else (),
        preprocess_bytes=_preprocess_bytes(getattr(model, "preprocessor", None)),
    )


# --------------------------------------------------------------------------------------------
# Rendering (rich)
# --------------------------------------------------------------------------------------------


def _count(n: float) -> str:
    if n == 0:
        return ""
    for scale, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{n:g}"


def _bytes(n: float) -> str:
    if n == 0:
        return ""
    for scale, suffix in ((1 << 30, " GiB"), (1 << 20, " MiB"), (1 << 10, " KiB")):
        if n >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{n:g} B"


def _energy(pj: float) -> str:
    for scale, suffix in ((1e12, " J"), (1e9, " mJ"), (1e6, " µJ"), (1e3, " nJ")):
        if pj >= scale:
            return f"{pj / scale:.3g}{suffix}"
    return f"{pj:.3g} pJ"


def _percent(x: float) -> str:
    return f"{100 * x:.1f} %"


def _shape(shape: Sequence[int]) -> str:
    return "×".join(map(str, shape))


def _renderables(s: Summary) -> list[Any]:
    from rich import box
    from rich.table import Table

    widths = sorted(s.bits)
    layers = Table(
        title=f"{s.name}: per layer ({s.source}, input {_shape(s.input_shape)})",
        box=box.SIMPLE_HEAD,
        show_footer=True,
        title_justify="left",
    )
    totals_macs = s.macs
    layers.add_column("layer", footer="total")
    layers.add_column("type")
    layers.add_column("output")
    layers.add_column("params", justify="right", footer=_count(s.params))
    for w in widths:
        layers.add_column(f"{w}-bit", justify="right", footer=_count(s.bits[w]))
    layers.add_column("float32", justify="right", footer=_bytes(s.float32_bytes))
    layers.add_column("deployed", justify="right", footer=_bytes(s.deployed_bytes))
    layers.add_column("binary MACs", justify="right", footer=_count(totals_macs["binary"]))
    layers.add_column("8-bit MACs", justify="right", footer=_count(totals_macs["int8"]))
    layers.add_column("float MACs", justify="right", footer=_count(totals_macs["float"]))
    for layer in s.layers:
        layers.add_row(
            layer.name,
            layer.type,
            _shape(layer.output_shape),
            _count(layer.params),
            *(_count(layer.bits.get(w, 0)) for w in widths),
            _bytes(layer.float32_bytes),
            _bytes(layer.deployed_bytes),
            *(_count(layer.macs.get(k, 0)) for k in MAC_KINDS),
        )

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    bits = ", ".join(f"{w}-bit {_count(n)}" for w, n in s.bits.items())
    grid.add_row("parameters", f"{_count(s.params)} trainable; stored as deployed: {bits}")
    grid.add_row(
        "memory",
        f"float32 {_bytes(s.float32_bytes)} → deployed {_bytes(s.deployed_bytes)}: "
        f"{s.compression:.1f}× smaller",
    )
    if s.file_bytes is not None or s.preprocess_bytes:
        extra = []
        if s.preprocess_bytes:
            extra.append(f"input preprocessing {_bytes(s.preprocess_bytes)} (not the network)")
        if s.file_bytes is not None:
            meta = s.file_bytes - s.deployed_bytes - s.preprocess_bytes
            extra.insert(0, f".bnn file {_bytes(s.file_bytes)}")
            extra.append(f"header and graph {_bytes(meta)}")
        grid.add_row("", "; ".join(extra))
    total = sum(totals_macs.values())
    if total:
        split = " · ".join(
            f"{label} {_percent(totals_macs[k] / total)}"
            for k, label in (
                ("binary", "binary XNOR-popcount"),
                ("int8", "8-bit × 1-bit"),
                ("float", "float"),
            )
        )
        grid.add_row("MACs / inference", f"{_count(total)}: {split}")
    e = s.energy()

    def breakdown(d: Mapping[str, float]) -> str:
        return ", ".join(f"{k} {_energy(v)}" for k, v in d.items())

    grid.add_row(
        "energy / inference" + (f"\n(batch {e.batch})" if e.batch > 1 else ""),
        f"[bold yellow]ESTIMATE[/]  float32 network {_energy(e.float32_total)} "
        f"({breakdown(e.float32)})",
    )
    grid.add_row(
        "",
        f"as deployed {_energy(e.deployed_total)} ({breakdown(e.deployed)}): {e.ratio:.1f}× less",
    )
    grid.add_row(
        "",
        "[dim]Horowitz, ISSCC 2014, 45 nm per-operation energies (Tables 2–3 of "
        "arXiv:1602.02830); XNOR-popcount and memory-traffic assumptions in "
        "binarynet.analysis.summary / docs/summary.md[/]",
    )
    out: list[Any] = [layers, grid]
    if s.filters:
        ft = Table(
            title="filter repetitions of the binary convolutions (fraction unique)",
            box=box.SIMPLE_HEAD,
            show_footer=True,
            title_justify="left",
        )
        mean = mean_repetitions(s.filters)
        ft.add_column("layer", footer="mean over layers")
        ft.add_column("O×C×kh×kw")
        ft.add_column("3-D", justify="right", footer=_percent(mean["unique_3d"]))
        ft.add_column("3-D up to sign", justify="right", footer=_percent(mean["unique_3d_sign"]))
        ft.add_column("2-D per channel", justify="right", footer=_percent(mean["unique_2d"]))
        ft.add_column(
            "2-D up to sign (paper: 42 %)",
            justify="right",
            footer=_percent(mean["unique_2d_sign"]),
        )
        ft.add_column("random signs", justify="right", footer=_percent(mean["random_2d_sign"]))
        ft.add_column("2-D patterns used", justify="right")
        for f in s.filters:
            ft.add_row(
                f.name,
                _shape(f.shape),
                _percent(f.unique_3d),
                _percent(f.unique_3d_sign),
                _percent(f.unique_2d),
                _percent(f.unique_2d_sign),
                _percent(f.random_2d_sign),
                f"{f.patterns_2d} / {2 ** (f.shape[2] * f.shape[3])}",
            )
        out.append(ft)
    return out


class _CallableModule(types.ModuleType):
    """Lets ``binarynet.analysis.summary(model)`` call :func:`summary` (the issue's spelling) while
    ``binarynet.analysis.summary`` stays this module."""

    def __call__(self, *args: Any, **kwargs: Any) -> Summary:
        return summary(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
