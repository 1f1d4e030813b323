"""The targets a graph runs on, one package each: engine/, c/, qonnx/, gpu/ (visitors of the ops).
Each imports :mod:`binarynet.graph` and NumPy (and its own target's tools); never torch or training.
"""
