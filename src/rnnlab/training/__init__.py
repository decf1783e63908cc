"""Training: configs and presets, the one generic loop, step functions, checkpoints, DDP.

Import submodules directly (``from rnnlab.training.loop import fit``); this package keeps
its import light so ``rnnlab.training.tbptt`` stays cheap.
"""
