"""Training in PyTorch: quantizers, layers, batch norms, optimizers, losses, models, the trainer.
Imports torch, :mod:`binarynet.data` and the registries; never export, back-ends or analysis.
"""
