"""The visitor protocol of the graph's ops: how every back-end is written.

A back-end is a :class:`GraphVisitor` with one ``visit_<type>(op, x, y)`` method per op type,
called by :meth:`Op.accept <binarynet.graph.ops.Op.accept>`: ``x`` and ``y`` are the op's input
and output values (:meth:`Graph.infer <binarynet.graph.graph.Graph.infer>`), and every method
returns the back-end's own ``R``. One signature for every back-end, so mypy checks each
override; a method this base class provides raises :class:`NotImplementedError` naming the op
and the back-end, so that a back-end that lacks an op fails loudly instead of computing
something else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from binarynet.graph.ops import Conv2d, Dense, MaxPool2d, Op, Scores, Threshold
    from binarynet.graph.values import ValueInfo

__all__ = ["GraphVisitor"]

R = TypeVar("R")


class GraphVisitor(Generic[R]):
    """A back-end: ``visit_<type>(op, x, y) -> R`` for each op type it supports."""

    def unsupported(self, op: Op) -> R:
        raise NotImplementedError(
            f"the {op.type!r} op ({type(op).__name__}) is not supported by "
            f"{type(self).__name__}: add its visit_{op.type} method"
        )

    def visit_dense(self, op: Dense, x: ValueInfo, y: ValueInfo) -> R:
        return self.unsupported(op)

    def visit_conv2d(self, op: Conv2d, x: ValueInfo, y: ValueInfo) -> R:
        return self.unsupported(op)

    def visit_maxpool2d(self, op: MaxPool2d, x: ValueInfo, y: ValueInfo) -> R:
        return self.unsupported(op)

    def visit_threshold(self, op: Threshold, x: ValueInfo, y: ValueInfo) -> R:
        return self.unsupported(op)

    def visit_scores(self, op: Scores, x: ValueInfo, y: ValueInfo) -> R:
        return self.unsupported(op)
