"""A family written outside the package trains through the one engine: its own data view
(a Loader of consecutive chunks, as a stateful language model reads a stream), a Step with
an epoch hook, the one update path, checkpoints and an exact resume."""

import pytest
import torch
from torch import nn

from rnnlab.training import families
from rnnlab.training.checkpoint import load_checkpoint
from rnnlab.training.config import Config, ConfigError, apply_overrides
from rnnlab.training.experiment import train
from rnnlab.training.families import Data, Family
from rnnlab.training.loop import Step


class Stream:
    """Consecutive (x, y) chunks of one long series, in order (a Loader)."""

    def __init__(self, series: torch.Tensor, chunk: int) -> None:
        self.x, self.chunk, self.epochs = series, chunk, 0

    def __len__(self) -> int:
        return (len(self.x) - 1) // self.chunk

    def __iter__(self):
        self.epochs += 1
        for i in range(len(self)):
            s = slice(i * self.chunk, (i + 1) * self.chunk)
            yield (
                self.x[s][None, :, None],
                self.x[i * self.chunk + 1 : (i + 1) * self.chunk + 1][None, :, None],
            )

    def state_dict(self) -> dict:
        return {"epochs": torch.tensor(self.epochs)}

    def load_state_dict(self, state: dict) -> None:
        self.epochs = int(state["epochs"])


class Stateful(Step):
    """Carries the GRU state across chunks; resets it at each epoch's start."""

    def __init__(self, update) -> None:
        self.update, self.state, self.starts = update, None, []

    def on_epoch_start(self, epoch: int, steps: int) -> None:
        self.state = None
        self.starts.append((epoch, steps))

    def __call__(self, model, batch, optimizer):
        x, y = batch
        out, state = model.gru(x, self.state)
        self.state = state.detach()
        loss = nn.functional.mse_loss(model.head(out), y)
        return {"loss": loss.item(), **self.update(loss, model, optimizer)}


class Forecaster(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru, self.head = nn.GRU(1, 8, batch_first=True), nn.Linear(8, 1)


def _data(cfg, dry_run):
    series = torch.sin(torch.arange(400) / 7.0)
    test = (series[:-1].reshape(1, -1, 1), series[1:].reshape(1, -1, 1))
    return Data(Stream(series, 20), None, test, 0, "a sine wave", example=series[:20, None])


@torch.no_grad()
def _eval(model, batch):
    x, y = batch
    return {"loss": nn.functional.mse_loss(model.head(model.gru(x)[0]), y).item()}


@pytest.fixture
def stream_family():
    steps = {}

    def make_steps(cfg, ctx):
        steps["train"] = Stateful(ctx.update)
        return steps["train"], _eval

    family = Family(name="stream", kinds=("gru",), datasets=("sine",), build_data=_data,
                    build_model=lambda cfg, spec: Forecaster(), steps=make_steps,
                    keys=frozenset({"model.hidden_size"}))  # fmt: skip
    families.register(family)
    yield steps
    families.unregister("stream")


def _cfg(tmp_path, *flags):
    base = ["--model.family=stream", "--model.kind=gru", "--data.dataset=sine",
            "--data.val_fraction=0", f"--run.out_dir={tmp_path}", "--train.lr=0.01"]  # fmt: skip
    return apply_overrides(Config(), [*base, *flags])


def test_a_registered_family_with_its_own_loader_trains_and_resumes_exactly(
    stream_family, tmp_path
):
    whole = train(_cfg(tmp_path, "--run.name=whole", "--epochs=3"), log=lambda _: None)
    assert stream_family["train"].starts == [(0, 19), (1, 19), (2, 19)]
    assert whole["test_loss"] < 0.5
    train(_cfg(tmp_path, "--run.name=split", "--epochs=2"), log=lambda _: None)
    train(_cfg(tmp_path, "--run.name=split", "--epochs=3"), resume_from=tmp_path / "split",
          log=lambda _: None)  # fmt: skip
    a, b = (load_checkpoint(tmp_path / n / "checkpoints" / "last.pt") for n in ("whole", "split"))
    assert a["data"] == b["data"] == {"epochs": torch.tensor(3)}
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k


def test_a_registered_family_refuses_keys_it_does_not_read(stream_family, tmp_path):
    _cfg(tmp_path, "--model.hidden_size=4")  # listed in its keys
    with pytest.raises(ConfigError, match="`model.dropout` is not used by family 'stream'"):
        _cfg(tmp_path, "--model.dropout=0.5")
    with pytest.raises(ValueError, match="already registered"):
        families.register(families.get("stream"))
