"""Hyper-parameter search over presets with Optuna (``rnnlab tune``, :mod:`rnnlab.cli.tune`).

:mod:`.space` reads and checks a SPACE.toml against its preset; :mod:`.study` runs the
study (storage, workers that die with their parent, resume); :mod:`.report` writes the
best-trials table, importances, history plot and ``best.toml``. This package sits above
``training`` and ``evaluation`` in the layering and below the CLI.
"""
