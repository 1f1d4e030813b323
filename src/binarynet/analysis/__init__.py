"""What a model costs and how it behaves: summary (bits, bytes, MACs, energy), filters, bench.

Imports :mod:`binarynet.graph` and the backends; torch and the training code only lazily, for a
torch model.
"""
