"""A deployable graph: the input spec, the ops in order, the class count, and the stage grammar.

Roles (:class:`~binarynet.graph.ops.Role`) give the grammar ``(layer pool* (activation |
scores))+``, scores last; :meth:`Graph.infer` checks that values chain from the input to the
scores, :meth:`Graph.stages` splits the ops into stages for the back-ends that group them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from binarynet.graph.ops import OP_TYPES, Op, Role, op_label
from binarynet.graph.values import (
    MAX_EXACT,
    MAX_OPS,
    MAX_VALUE_BYTES,
    GraphError,
    InputSpec,
    Tensors,
    ValueInfo,
    check_keys,
    fail,
    json_int,
)

__all__ = ["PREPROCESS_PREFIX", "Graph", "StageSpan", "undeployable_preprocessor"]

PREPROCESS_PREFIX = "preprocess."
"""Tensors named ``preprocess.<key>`` hold the preprocessor's arrays, beside the ops' tensors."""


@dataclass(frozen=True)
class StageSpan:
    """The ops of one stage, by index: a layer op, the pool ops after it, and its tail (an
    activation or the scores). The grammar of the roles makes every valid graph a sequence of
    such spans; back-ends that group ops into stages walk :meth:`Graph.stages`."""

    layer: int
    pools: tuple[int, ...]
    tail: int


@dataclass(frozen=True)
class Graph:
    """A model's graph: input spec, ops in order, class count and provenance."""

    input: InputSpec
    ops: tuple[Op, ...]
    num_classes: int
    provenance: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The graph's JSON object (the ``.bnn`` file adds its format and version)."""
        return {
            "input": self.input.to_json(),
            "preprocess": self.preprocess,
            "num_classes": self.num_classes,
            "ops": [op.to_json() for op in self.ops],
            "provenance": self.provenance,
        }

    @classmethod
    def from_json(cls, obj: Any) -> Graph:
        if not isinstance(obj, dict):
            raise GraphError(f"the graph must be a JSON object, got {type(obj).__name__}")
        # (the file's format and version are checked by binarynet.graph.bnnfile)
        check_keys(
            obj,
            ("input", "preprocess", "num_classes", "ops", "provenance"),
            "graph",
        )
        spec = InputSpec.from_json(obj.get("input"))
        num_classes = json_int(obj, "num_classes", "graph", 1, MAX_EXACT)
        ops_json = obj.get("ops")
        if not isinstance(ops_json, list) or not 1 <= len(ops_json) <= MAX_OPS:
            raise GraphError(f"graph: 'ops' must be a list of 1..{MAX_OPS} ops")
        ops: list[Op] = []
        for i, op in enumerate(ops_json):
            where = f"op {i}"
            if not isinstance(op, dict):
                raise fail(where, f"must be an object, got {type(op).__name__}")
            kind = op.get("type")
            if not isinstance(kind, str) or kind not in OP_TYPES:
                raise fail(where, f"unknown op type {kind!r}; expected one of {sorted(OP_TYPES)}")
            ops.append(OP_TYPES[kind].from_json(op, where))
        provenance = obj.get("provenance", {})
        if not isinstance(provenance, dict):
            raise GraphError(f"graph: 'provenance' must be an object, got {provenance!r}")
        preprocess = obj.get("preprocess")
        if preprocess is not None and not isinstance(preprocess, dict):
            raise GraphError(f"graph: 'preprocess' must be an object or null, got {preprocess!r}")
        return cls(spec, tuple(ops), num_classes, provenance, preprocess)

    def infer(self, tensors: Tensors) -> list[ValueInfo]:
        """Check that shapes chain from the input to the scores; the value before each op and
        after the last one (``len(ops) + 1`` entries). ``tensors`` maps names to
        (safetensors dtype, shape); every tensor must be used by exactly one op field."""
        value = ValueInfo("u8", self.input.shape)
        values = [value]
        used: dict[str, str] = {}
        for i, op in enumerate(self.ops):
            where = op_label(i, op)
            try:
                value = op.infer(value, self.input, tensors)
            except GraphError as exc:
                raise fail(where, str(exc)) from None
            if value.nbytes > MAX_VALUE_BYTES:
                raise fail(
                    where,
                    f"its output {value.describe()} needs {value.nbytes} bytes per example, "
                    f"more than the limit of {MAX_VALUE_BYTES}",
                )
            for name in op.tensors().values():
                if name in used:
                    raise fail(where, f"tensor {name!r} is already used by another op")
                used[name] = op.type
            if value.kind == "float32" and i != len(self.ops) - 1:
                raise fail(where, "'scores' must be the last op")
            values.append(value)
        if value.kind != "float32":
            raise GraphError(
                f"the graph ends with {value.describe()}; expected float32 scores from a "
                "'scores' op"
            )
        if value.shape != (self.num_classes,):
            raise GraphError(
                f"the graph produces {value.shape[0]} scores but num_classes is {self.num_classes}"
            )
        unused = sorted(
            name
            for name in set(tensors) - set(used)
            if self.preprocess is None or not name.startswith(PREPROCESS_PREFIX)
        )
        if unused:
            raise GraphError(f"tensors not used by any op: {unused}")
        return values

    def stages(self) -> list[StageSpan]:
        """The graph as stages, ``(layer pool* (activation | scores))+`` (see :class:`Role`);
        :class:`GraphError` where an op breaks the grammar (not after :meth:`infer`)."""
        spans = []
        i, n = 0, len(self.ops)
        while i < n:
            if self.ops[i].role is not Role.LAYER:
                raise GraphError(f"{op_label(i, self.ops[i])} does not follow a layer")
            j = i + 1
            while j < n and self.ops[j].role is Role.POOL:
                j += 1
            if j == n or self.ops[j].role not in (Role.ACTIVATION, Role.SCORES):
                raise GraphError(
                    f"{op_label(i, self.ops[i])}: its stage ends without an activation or scores"
                )
            spans.append(StageSpan(i, tuple(range(i + 1, j)), j))
            i = j + 1
        return spans

    def check_values(self, values: list[ValueInfo], tensors: Mapping[str, np.ndarray]) -> None:
        """Each op's checks on its tensors' contents (zero padding bits in packed weights,
        finite floats), after :meth:`infer` gave ``values``."""
        for i, op in enumerate(self.ops):
            op.check_values(values[i], tensors, op_label(i, op))


def undeployable_preprocessor(graph: Graph, target: str) -> str | None:
    """None when ``target`` (a back-end, in words) can run what the model's images go
    through: nothing, or ``pixels`` (the identity on uint8 images). Otherwise one line saying
    why it cannot and how to train a model that it can."""
    kind = (graph.preprocess or {}).get("kind")
    if kind in (None, "pixels"):
        return None
    if kind == "gcn-zca":
        h, w, c = graph.input.shape if len(graph.input.shape) == 3 else (0, 0, 0)
        d = h * w * c
        return (
            f"the model's images go through the {kind!r} preprocessor (GCN + ZCA whitening: a "
            f"{d}×{d} float32 matrix product per image, {4 * d * d / 2**20:.0f} MiB of weights "
            f"and {d * d / 1e6:.0f} M float multiply-adds), which {target} cannot run; train the "
            "model with --preprocess pixels"
        )
    return (
        f"{target} cannot run the {kind!r} preprocessor; train the model with --preprocess pixels"
    )
