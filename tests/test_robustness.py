"""Robustness evaluation (rnnlab.evaluation.robustness): robust accuracy over tensors and
loaders, accuracy falling with eps on a trained separable problem, PNG figures, validation."""

import os

import matplotlib.image
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from rnnlab.attacks import fgsm, pgd
from rnnlab.evaluation.robustness import (
    accuracy_vs_epsilon,
    panda_figure,
    plot_robustness_curves,
    robust_accuracy,
)

EPSILONS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3]


def _separable(n=128, seed=0):
    """Two classes of 4x4 images in [0, 1]: a +-0.15 pattern around grey, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    pattern = torch.where(torch.arange(16) % 2 == 0, 1.0, -1.0).view(1, 1, 4, 4)
    sign = (2.0 * y - 1).view(-1, 1, 1, 1)
    x = 0.5 + 0.15 * sign * pattern + 0.05 * torch.randn(n, 1, 4, 4, generator=g)
    return x.clamp(0, 1), y


@pytest.fixture(scope="module")
def trained():
    """A linear classifier trained a few dozen Adam steps on the separable problem."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    x, y = _separable()
    for _ in range(40):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    return model.eval(), _separable(64, seed=1)


def test_accuracy_falls_as_eps_rises(trained):
    model, (x, y) = trained
    curve = accuracy_vs_epsilon(model, x, y, EPSILONS, "fgsm", batch_size=16)
    assert [p["eps"] for p in curve] == EPSILONS
    acc = [p["accuracy"] for p in curve]
    assert acc[0] == pytest.approx(robust_accuracy(model, (x, y), None)) and acc[0] >= 0.95
    # Binary linear model: FGSM moves along one fixed direction, so the margin falls with eps.
    assert all(a >= b for a, b in zip(acc, acc[1:], strict=False)), acc
    assert acc[-1] <= 0.1
    for method, kw in [("bim", {"steps": 3}), ("pgd", {"steps": 3, "restarts": 2})]:
        other = accuracy_vs_epsilon(model, x, y, [0.0, 0.2], method, **kw)
        assert other[0]["accuracy"] == acc[0] and other[1]["accuracy"] <= acc[0]


def test_robust_accuracy_tensors_loader_and_callable(trained):
    model, (x, y) = trained
    loader = DataLoader(TensorDataset(x, y), batch_size=10)
    a = robust_accuracy(model, (x, y), "fgsm", batch_size=7, eps=0.1)
    assert a == pytest.approx(robust_accuracy(model, loader, "fgsm", eps=0.1))
    assert a == pytest.approx(robust_accuracy(model, (x, y), fgsm, eps=0.1))
    assert robust_accuracy(model, [(x, y)], "none") == robust_accuracy(model, (x, y), None)
    g = torch.Generator().manual_seed(0)
    strong = robust_accuracy(model, (x, y), pgd, eps=0.1, steps=5, generator=g)
    assert 0.0 <= strong <= 1.0


def test_model_mode_and_grads_restored(trained):
    model, (x, y) = trained
    model.train()
    try:
        robust_accuracy(model, (x, y), "pgd", eps=0.1, steps=2)
        assert model.training and all(
            p.grad is None and p.requires_grad for p in model.parameters()
        )
    finally:
        model.eval()


def test_plot_robustness_curves_writes_png(trained, tmp_path):
    model, (x, y) = trained
    curves = {
        "linear / fgsm": accuracy_vs_epsilon(model, x, y, EPSILONS),
        "linear / pgd": accuracy_vs_epsilon(model, x, y, EPSILONS, "pgd", steps=3),
    }
    path = tmp_path / "sub" / "curves.png"
    out = plot_robustness_curves(curves, path)
    assert out == str(path)
    image = matplotlib.image.imread(out)
    assert image.shape == (400, 550, 4)
    plot_robustness_curves({"again": curves["linear / fgsm"]}, path)  # overwrite in place
    assert os.listdir(tmp_path / "sub") == ["curves.png"]  # no temp files left behind


class RowLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(4, 6, batch_first=True)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


@pytest.mark.parametrize("kind", ["gray", "rgb", "sequence"])
def test_panda_figure_writes_png(kind, tmp_path, trained):
    if kind == "gray":
        model, (x, y) = trained[0], (trained[1][0][:5], trained[1][1][:5])
        names = ["stripes-", "stripes+"]
    elif kind == "rgb":
        model = nn.Sequential(nn.Flatten(), nn.Linear(48, 3)).eval()
        x, y, names = torch.rand(5, 3, 4, 4), torch.randint(0, 3, (5,)), None
    else:
        model = RowLSTM().eval()
        x, y, names = torch.rand(5, 7, 4), torch.randint(0, 3, (5,)), ["a", "b", "c"]
    x_adv = fgsm(model, x, y, 0.1)
    out = panda_figure(model, x, y, x_adv, names, tmp_path / f"{kind}.png", max_rows=3)
    assert matplotlib.image.imread(out).shape == (750, 750, 4)
    assert os.listdir(tmp_path) == [f"{kind}.png"]
    out = panda_figure(model, x[:2], y[:2], x[:2], names, tmp_path / "zero.png", eps=0.1)
    assert matplotlib.image.imread(out).shape == (500, 750, 4)  # zero perturbation is fine


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m, x, y, p: robust_accuracy(m, (x, y), "cw"), ValueError, "`attack`"),
        (lambda m, x, y, p: robust_accuracy(m, (x, y), 3), TypeError, "`attack`"),
        (lambda m, x, y, p: robust_accuracy(m, (x, y), batch_size=0), ValueError, "`batch_size`"),
        (lambda m, x, y, p: robust_accuracy(m, 5), TypeError, "`data`"),
        (lambda m, x, y, p: robust_accuracy(m, (x, y[:-1])), ValueError, "`data`"),
        (lambda m, x, y, p: robust_accuracy(m, []), ValueError, "`data`"),
        (lambda m, x, y, p: robust_accuracy(None, (x, y)), TypeError, "`model`"),
        (lambda m, x, y, p: robust_accuracy(m, (x, y), eps=-1.0), ValueError, "`eps`"),
        (lambda m, x, y, p: accuracy_vs_epsilon(m, x, y, [0.1], "l1"), ValueError, "`method`"),
        (lambda m, x, y, p: accuracy_vs_epsilon(m, x, y, []), ValueError, "`epsilons`"),
        (lambda m, x, y, p: accuracy_vs_epsilon(m, x, y, 0.1), ValueError, "`epsilons`"),
        (lambda m, x, y, p: accuracy_vs_epsilon(m, x, y, [-0.1]), ValueError, "`epsilons`"),
        (lambda m, x, y, p: plot_robustness_curves({}, p), ValueError, "`curves`"),
        (
            lambda m, x, y, p: plot_robustness_curves({"m": [{"eps": 0.1}]}, p),
            ValueError,
            r"`curves\['m'\]`",
        ),
        (lambda m, x, y, p: panda_figure(m, x, y, x[:-1], None, p), ValueError, "`x_adv`"),
        (lambda m, x, y, p: panda_figure(m, x, y[:-1], x, None, p), ValueError, "`y`"),
        (lambda m, x, y, p: panda_figure(m, x, y, x, ["only one"], p), ValueError, "`class_n"),
        (lambda m, x, y, p: panda_figure(m, x, y, x, None, p, max_rows=0), ValueError, "`max_"),
        (lambda m, x, y, p: panda_figure(m, x, y, x, None, p, eps=-1), ValueError, "`eps`"),
        (
            lambda m, x, y, p: panda_figure(m, x.view(8, 16), y, x.view(8, 16), None, p),
            ValueError,
            "`x` must be images",
        ),
    ],
)
def test_bad_inputs_name_the_argument(call, error, match, trained, tmp_path):
    model, (x, y) = trained
    with pytest.raises(error, match=match):
        call(model, x[:8], y[:8], tmp_path / "f.png")
    assert not os.listdir(tmp_path)
