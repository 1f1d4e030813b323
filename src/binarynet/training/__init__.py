"""Training in PyTorch: quantizers, layers, batch norms, optimizers, losses, models, the trainer.

Imports torch, :mod:`binarynet.data` and :mod:`binarynet.graph`; nothing else of binarynet.
"""
