"""PGD with the Carlini-Wagner margin loss (rnnlab.attacks.margin_loss).

On a linear model ``z = W x + b`` the margin ``max_{j != y} z_j - z_y`` has the known
gradient ``W[j*] - W[y]`` (``j*`` the runner-up class), so one PGD step from ``x`` without a
random start is ``x + eps * sign(W[j*] - W[y])``. A model whose softmax saturates shows why the
margin matters: the cross-entropy gradient underflows to exactly zero and PGD-CE stands still,
while PGD-CW still finds the adversarial example. Parity: ``-torchattacks.CW.f`` (3.5.1).
"""

import pytest
import torch
from torch import nn

from rnnlab.attacks import margin_loss, pgd
from rnnlab.evaluation.robustness import robust_accuracy, robust_correct


def _linear(scale: float = 1.0) -> nn.Module:
    torch.manual_seed(4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 5)).eval()
    with torch.no_grad():
        model[1].weight.mul_(scale)
        model[1].bias.mul_(scale)
    return model


def _batch(n: int = 10):
    g = torch.Generator().manual_seed(5)
    return torch.rand(n, 1, 4, 4, generator=g), torch.randint(0, 5, (n,), generator=g)


def test_margin_loss_values():
    z = torch.tensor([[1.0, 3.0, 2.0], [5.0, -1.0, 0.5]])
    y = torch.tensor([1, 0])
    torch.testing.assert_close(margin_loss(z, y), torch.tensor([-1.0, -4.5]))
    torch.testing.assert_close(margin_loss(z, torch.tensor([0, 1])), torch.tensor([2.0, 6.0]))
    torch.testing.assert_close(
        margin_loss(z, torch.tensor([0, 1]), kappa=3.0), torch.tensor([2.0, 3.0])
    )
    with pytest.raises(ValueError, match=r"\(B, C\) with C >= 2"):
        margin_loss(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long))


def test_margin_gradient_on_a_linear_model():
    model = _linear()
    x, y = _batch()
    w = model[1].weight.detach()
    x_req = x.clone().requires_grad_(True)
    logits = model(x_req)
    (grad,) = torch.autograd.grad(margin_loss(logits, y).sum(), x_req)
    runner_up = logits.detach().scatter(1, y[:, None], float("-inf")).argmax(1)
    expected = (w[runner_up] - w[y]).reshape_as(x)
    torch.testing.assert_close(grad, expected)
    eps = 0.05
    step = pgd(model, x, y, eps, alpha=eps, steps=1, random_start=False, clip=None,
               loss_fn=margin_loss)  # fmt: skip
    torch.testing.assert_close(step, x + eps * expected.sign())


def test_kappa_stops_the_push():
    model = _linear()
    x, y = _batch()
    x_req = x.clone().requires_grad_(True)
    logits = model(x_req)
    kappa = float(margin_loss(logits, y).detach().min()) - 1.0  # every example already past kappa
    (grad,) = torch.autograd.grad(margin_loss(logits, y, kappa=kappa).sum(), x_req)
    assert torch.count_nonzero(grad) == 0


def test_cw_finds_what_saturated_cross_entropy_misses():
    """Logits scaled by 1e4: softmax is one-hot in float32, d CE / dx == 0 exactly."""
    model = _linear(scale=1e4)
    x, _ = _batch(256)
    with torch.no_grad():
        logits = model(x)
    y = logits.argmax(1)  # every example correctly classified...
    keep = margin_loss(logits, y) < -200  # ...with exp(margin) below float32's smallest
    x, y = x[keep], y[keep]
    assert len(y) >= 32
    eps = 0.3
    kw = {"steps": 10, "random_start": False, "clip": (0.0, 1.0)}
    ce = pgd(model, x, y, eps, **kw)
    assert torch.equal(ce, x)  # no gradient: PGD-CE never moves
    cw = pgd(model, x, y, eps, loss_fn=margin_loss, **kw)
    assert (model(cw).argmax(1) != y).float().mean() > 0.5
    acc_ce = robust_accuracy(model, (x, y), "pgd", eps=eps, **kw)
    acc_cw = robust_accuracy(model, (x, y), "pgd", eps=eps, loss_fn=margin_loss, **kw)
    assert acc_ce == 1.0 and acc_cw < 0.5


def test_robust_correct_is_per_example_and_ands_to_the_worst_case():
    model = _linear(scale=3.0)
    x, y = _batch(40)
    g = torch.Generator().manual_seed(0)
    a = robust_correct(model, (x, y), "pgd", batch_size=7, eps=0.2, steps=5, generator=g)
    assert a.dtype == torch.bool and a.shape == (40,)
    g = torch.Generator().manual_seed(0)
    acc = robust_accuracy(model, (x, y), "pgd", batch_size=7, eps=0.2, steps=5, generator=g)
    assert acc == pytest.approx(a.float().mean().item())
    b = robust_correct(model, (x, y), "pgd", eps=0.2, steps=5, loss_fn=margin_loss)
    both = a & b
    assert both.float().mean() <= min(a.float().mean(), b.float().mean())


def test_margin_matches_torchattacks_cw_f():
    torchattacks = pytest.importorskip("torchattacks")
    model = _linear()
    x, y = _batch(32)
    cw = torchattacks.CW(model, kappa=2.0)
    logits = model(x).detach() + 50.0  # torchattacks masks the true class by a 0 (not -inf):
    # its runner-up is wrong unless some other logit is positive, so shift them all positive
    torch.testing.assert_close(margin_loss(logits, y, kappa=2.0), -cw.f(logits, y))
