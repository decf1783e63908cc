"""Checkpoints: weights_only loading, RNG round trip, atomic writes survive a crash, and
``--resume`` ends bit-identical to an uninterrupted run (deterministic mode, CPU)."""

import os
import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rnnlab.training import checkpoint
from rnnlab.training.checkpoint import (
    CheckpointError,
    RunDir,
    export_safetensors,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from rnnlab.training.config import apply_overrides, load_preset
from rnnlab.training.experiment import train


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    save_checkpoint(tmp_path / "rng.pt", {"rng": get_rng_state()})
    expected = (random.random(), np.random.randn(), torch.rand(3))
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    got = (random.random(), np.random.randn(), torch.rand(3))
    assert got[0] == expected[0] and got[1] == expected[1] and torch.equal(got[2], expected[2])


def test_a_crash_during_the_write_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"w": torch.ones(3), "epoch": 1})

    def crash(src, dst):
        raise OSError("simulated crash during rename")

    monkeypatch.setattr(checkpoint.os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(path, {"w": torch.zeros(3), "epoch": 2})
    monkeypatch.undo()
    ckpt = load_checkpoint(path)
    assert ckpt["epoch"] == 1 and torch.equal(ckpt["w"], torch.ones(3))
    assert os.listdir(tmp_path) == ["last.pt"]  # no temporary file left behind


def test_loading_refuses_pickled_code_and_names_the_file(tmp_path):
    torch.save({"f": print}, tmp_path / "evil.pt")  # pickles a reference to a callable
    with pytest.raises(CheckpointError, match="evil.pt is unreadable"):
        load_checkpoint(tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_safetensors_export_holds_the_weights(tmp_path):
    model = torch.nn.Linear(3, 2)
    export_safetensors(model, tmp_path / "m.safetensors")
    loaded = load_file(tmp_path / "m.safetensors")
    assert torch.equal(loaded["weight"], model.weight.detach())


def test_an_aborted_run_leaves_nothing(tmp_path):
    run = RunDir.create(tmp_path, "r", {}, [])
    run.abort()
    assert list(tmp_path.iterdir()) == []


def _cfg(tmp_path, name, epochs):
    flags = [
        f"--run.out_dir={tmp_path}", f"--run.name={name}", f"--epochs={epochs}",
        "--deterministic=true", "--device=cpu", "--data.limit=160", "--batch_size=32",
        "--hidden_size=8", "--dropout=0.2", "--head_dropout=0.2", "--schedule=onecycle",
    ]  # fmt: skip
    return apply_overrides(load_preset("digits-lstm"), flags)


def test_resume_after_an_interruption_is_bit_identical(tmp_path):
    quiet = {"log": lambda s: None, "progress": False}
    train(_cfg(tmp_path, "whole", 3), **quiet)

    def ctrl_c_after_epoch_1(line):  # the epoch line is printed after its checkpoint
        if line.startswith("epoch 1/3"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_cfg(tmp_path, "split", 3), log=ctrl_c_after_epoch_1, progress=False)
    assert len(RunDir.open(tmp_path / "split").metrics()) == 1
    train(_cfg(tmp_path, "split", 3), resume_from=tmp_path / "split", **quiet)
    whole = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")
    split = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert whole["fit"] == split["fit"]
    for key, value in whole["model"].items():
        assert torch.equal(value, split["model"][key]), key
    assert [r.get("train_loss") for r in RunDir.open(tmp_path / "split").metrics()] == [
        r.get("train_loss") for r in RunDir.open(tmp_path / "whole").metrics()
    ]
