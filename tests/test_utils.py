"""rnnlab.utils.atomic_write: every writer kind lands whole or not at all, temp files never
stay behind, and the final file has a plain ``open``'s mode."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnlab.utils import (
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    save_figure,
    save_image_grid,
)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_each_writer_kind_round_trips(tmp_path):
    from safetensors.torch import load_file, save_file

    atomic_write_bytes(tmp_path / "a" / "b.bin", b"\x00\x01")
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"\x00\x01"
    atomic_write_text(tmp_path / "t.txt", "héllo\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo\n"
    with atomic_write(tmp_path / "w.txt", "w") as f:
        f.write("line\r\n")  # newline="" keeps what was written
    assert (tmp_path / "w.txt").read_bytes() == b"line\r\n"
    with atomic_write(tmp_path / "m.pt") as f:
        torch.save({"w": torch.arange(3)}, f)
    assert torch.load(tmp_path / "m.pt", weights_only=True)["w"].tolist() == [0, 1, 2]
    with atomic_write(tmp_path / "x.npy") as f:
        np.save(f, np.eye(2))
    assert np.array_equal(np.load(tmp_path / "x.npy", allow_pickle=False), np.eye(2))
    with atomic_write(tmp_path / "s.safetensors", mode=None) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".s.safetensors.")
        save_file({"v": torch.ones(2)}, str(tmp))
    assert load_file(str(tmp_path / "s.safetensors"))["v"].tolist() == [1.0, 1.0]
    png = save_image_grid(torch.rand(4, 1, 5, 5), tmp_path / "g.png", nrow=2)
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([0, 1])
    assert save_figure(fig, tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "a") == []
    mask = os.umask(0o022)
    os.umask(mask)
    assert (tmp_path / "m.pt").stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize("mode", ["wb", "w", None])
def test_a_failing_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, mode):
    target = tmp_path / "last.pt"
    target.write_bytes(b"old")
    with pytest.raises(OSError) as info, atomic_write(target, mode) as f:
        (f.write(b"half" if mode == "wb" else "half") if mode else f.write_bytes(b"half"))
        raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_a_failed_rename_and_an_interrupt_leave_no_temp(tmp_path, monkeypatch):
    with pytest.raises(KeyboardInterrupt), atomic_write(tmp_path / "k.bin") as f:
        f.write(b"x")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []

    def refuse(src, dst):
        raise OSError(errno.EXDEV, "rename refused")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        atomic_write_bytes(tmp_path / "r.bin", b"x")
    assert list(tmp_path.iterdir()) == []


def test_mode_must_be_one_of_three(tmp_path):
    with pytest.raises(ValueError, match="`mode` must be"), atomic_write(tmp_path / "a", "a"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_check_choice_returns_the_value_or_names_key_choices_and_value():
    from rnnlab.models.autoencoders import DenoisingAutoencoder
    from rnnlab.utils import check_choice

    assert check_choice("kind", "lstm", ("lstm", "gru")) == "lstm"
    with pytest.raises(ValueError, match=r"^`kind` must be one of lstm, gru; got 'rnn'$"):
        check_choice("kind", "rnn", ("lstm", "gru"))
    with pytest.raises(ValueError, match="`noise` must be one of gaussian, masking; got 'salt'"):
        DenoisingAutoencoder(4, 2, noise="salt")
