"""QONNX: the graph as ONNX with QONNX's quantization ops and FINN's MultiThreshold (for FPGAs).
Imports :mod:`binarynet.graph`, NumPy and ``onnx`` (optional extra); never torch or training.
"""

from binarynet.backends.qonnx.writer import (
    QONNX_DOMAIN,
    TARGETS,
    threshold_steps,
    to_qonnx,
    write_qonnx,
)

__all__ = ["QONNX_DOMAIN", "TARGETS", "threshold_steps", "to_qonnx", "write_qonnx"]
