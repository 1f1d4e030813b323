"""Capture: the ATen graph that a torch model's evaluation forward runs, with every value that
does not depend on the input computed.

:func:`capture` runs ``torch.export.export`` on the model in evaluation mode, under
``torch.no_grad()``, with a uint8 example input of the model's input shape. Its graph is the
ATen ops actually run: a custom ``forward``, a Sequential subclass, a layer subclass, a block
used twice and functional calls (``torch.sign``, ``F.max_pool2d``, ``x.flatten(1)``) all appear
as what they compute, and each node carries the module stack it ran in
(``node.meta["nn_module_stack"]``) and its Python source line (``node.meta["stack_trace"]``).

Why ``torch.export`` and not ``torch.fx.symbolic_trace``: fx traces with proxies and stops at
the first Python branch on a traced value, and binarynet's own layers branch on their input
(``FixedPointInput`` checks the dtype, the binary layers ask whether to binarize their input),
so fx can only treat them as opaque leaves, whose ``forward`` it would then trust; that is the
mistake of walking the module tree again. ``torch.export`` runs the Python code with fake
tensors and records the ATen ops underneath, custom autograd functions (the straight-through
sign) included.

The graph's parameters and buffers are lifted to placeholders. :class:`Captured` splits the
nodes into *data* nodes (those that depend on the input) and *constants* (the rest: binarized
weights, batch norm's ``scale`` and ``shift``), and holds every constant's value, computed by
running the graph once on the model's real parameters.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["Captured", "capture", "locate"]

_TORCH_DIR = os.path.dirname(torch.__file__)


@dataclass
class Captured:
    """A captured model.

    Attributes:
        program: the ``torch.export.ExportedProgram``.
        path: the data nodes from the input placeholder to the output value, in graph order
            (the input first; only those the output depends on).
        data: every node that depends on the input.
        values: the concrete value of every node (constants: exact; data: on the example input).
        output: the node whose value the model returns.
    """

    program: Any
    path: list[torch.fx.Node]
    data: set[torch.fx.Node]
    values: dict[torch.fx.Node, Any]
    output: torch.fx.Node


def locate(node: torch.fx.Node) -> str:
    """Where a node came from, for one-line messages: ``model.3: XnorLinear, net.py:41`` (the
    innermost module it ran in, and the innermost source line outside torch's own files)."""
    parts = []
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        path, cls = list(stack.values())[-1]
        name = cls.rsplit(".", 1)[-1] if isinstance(cls, str) else getattr(cls, "__name__", "?")
        parts.append(f"{'model.' + path if path else 'model'}: {name}")
    line = _source_line(node.meta.get("stack_trace") or "")
    if line:
        parts.append(line)
    return ", ".join(parts) if parts else "model"


def module_path(node: torch.fx.Node) -> str | None:
    """The path of the innermost module a node ran in (``"3"``, ``"body.0"``), None for the
    model's own ``forward``."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return None
    path = list(stack.values())[-1][0]
    return path or None


def _source_line(trace: str) -> str | None:
    found = None
    for line in trace.splitlines():
        line = line.strip()
        if not line.startswith('File "'):
            continue
        file = line[6 : line.index('"', 6)]
        if file.startswith(_TORCH_DIR):
            continue
        number = line.split(", line ", 1)[1].split(",", 1)[0] if ", line " in line else "?"
        found = f"{os.path.basename(file)}:{number}"
    return found


def _modes(model: nn.Module) -> list[tuple[nn.Module, bool]]:
    return [(m, m.training) for m in model.modules()]


def capture(model: nn.Module, input_shape: tuple[int, ...], error: type[Exception]) -> Captured:
    """Capture ``model``'s evaluation forward on uint8 input ``[2, *input_shape]``; the model's
    modes are restored afterwards and nothing in it changes. ``error``: the exception raised
    when torch cannot capture the model (one line)."""
    example = torch.zeros((2, *input_shape), dtype=torch.uint8)
    modes = _modes(model)
    # torch logs a failed shape propagation as an error line of its own before raising; the
    # exception says it once, in our one line.
    quiet = logging.getLogger("torch._subclasses.fake_tensor")
    level = quiet.level
    try:
        quiet.setLevel(logging.CRITICAL)
        model.eval()
        with torch.no_grad():
            try:
                program = torch.export.export(model, (example,), strict=False)
            except Exception as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise error(
                    f"export: torch.export could not capture the model's evaluation forward on "
                    f"uint8 input {[2, *input_shape]} (is that its input? see input_shape=): "
                    f"{type(exc).__name__}: {first}"
                ) from None
            values = _run(program, example)
    finally:
        quiet.setLevel(level)
        for module, training in modes:
            module.training = training
    graph = program.graph
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    user = [
        n
        for n, spec in zip(placeholders, program.graph_signature.input_specs, strict=True)
        if spec.kind == torch.export.graph_signature.InputKind.USER_INPUT
    ]
    data: set[torch.fx.Node] = set(user)
    for node in graph.nodes:
        if node.op == "call_function" and any(a in data for a in node.all_input_nodes):
            data.add(node)
    out_node = next(n for n in graph.nodes if n.op == "output")
    outputs = out_node.args[0]
    if not isinstance(outputs, (tuple, list)) or len(outputs) != 1:
        raise error(
            f"export: the model must return one tensor of class scores, it returns "
            f"{len(outputs) if isinstance(outputs, (tuple, list)) else 'another'} outputs"
        )
    output = outputs[0]
    if not isinstance(output, torch.fx.Node) or output not in data:
        raise error("export: the model's output does not depend on its input")
    needed: set[torch.fx.Node] = set()
    todo = [output]
    while todo:
        node = todo.pop()
        if node in needed or node not in data:
            continue
        needed.add(node)
        todo.extend(node.all_input_nodes)
    path = [n for n in graph.nodes if n in needed]
    return Captured(program, path, data, values, output)


def _run(program: Any, example: torch.Tensor) -> dict[torch.fx.Node, Any]:
    """Every node's value, from one run of the captured graph on the real parameters."""
    args = []
    for spec in program.graph_signature.input_specs:
        kind = spec.kind
        if kind == torch.export.graph_signature.InputKind.USER_INPUT:
            args.append(example)
        elif kind in (
            torch.export.graph_signature.InputKind.PARAMETER,
            torch.export.graph_signature.InputKind.BUFFER,
        ):
            args.append(program.state_dict[spec.target])
        else:
            args.append(program.constants[spec.target])
    values: dict[torch.fx.Node, Any] = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> Any:
            result = super().run_node(n)
            values[n] = result
            return result

    Recorder(program.graph_module).run(*args)
    return values
