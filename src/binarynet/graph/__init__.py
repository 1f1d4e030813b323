"""The deployable graph: value kinds, op classes, bit packing, the ``.bnn`` file format.
Imports NumPy, safetensors and :mod:`binarynet.data.preprocess`; never torch or the training code.
"""
