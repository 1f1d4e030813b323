"""What a model costs and how it behaves: summary (bits, bytes, MACs, energy), filters, bench.
Imports the graph and the back-ends; torch and the training code only lazily, for torch models.
"""
