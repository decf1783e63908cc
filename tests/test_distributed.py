"""DDP: two CPU processes (gloo, launched by torchrun) end within 1e-6 of one process that
sees the same global batches."""

import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from rnnlab.training.config import apply_overrides, load_preset
from rnnlab.training.experiment import train

FLAGS = [
    "--device=cpu", "--data.limit=256", "--batch_size=64", "--val_fraction=0", "--epochs=2",
    "--hidden_size=16", "--schedule=none", "--eval_batch_size=100",
]  # fmt: skip


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "rnnlab", "train", "digits-lstm", *FLAGS, f"--run.out_dir={tmp_path}",
        "--run.name=ddp", "--no-progress",
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on cpu x 2 processes" in done.stdout
    cfg = apply_overrides(load_preset("digits-lstm"), [*FLAGS, f"--run.out_dir={tmp_path}",
                                                      "--run.name=one"])  # fmt: skip
    one = train(cfg, log=lambda s: None, progress=False)
    a = load_file(tmp_path / "ddp" / "checkpoints" / "model.safetensors")
    b = load_file(tmp_path / "one" / "checkpoints" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    ddp_test = [line for line in done.stdout.splitlines() if line.startswith("test_accuracy")]
    assert ddp_test and f"{one['test_accuracy']:.4f}" in ddp_test[0]
