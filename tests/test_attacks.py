"""FGSM / BIM / PGD (rnnlab.attacks): ball and box constraints, exact identities, loss ascent,
targeted descent, restarts, model-state hygiene, recurrent models, input validation."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.attacks import bim, fgsm, pgd

ATTACKS = {
    "fgsm": lambda m, x, y, eps, **kw: fgsm(m, x, y, eps, **kw),
    "bim": lambda m, x, y, eps, **kw: bim(m, x, y, eps, alpha=eps / 4, steps=5, **kw),
    "pgd": lambda m, x, y, eps, **kw: pgd(m, x, y, eps, steps=5, **kw),
}


def _linear():
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()


def _mlp():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 3)).eval()
    with torch.no_grad():  # sharper than the default init: small eps flips some predictions
        for p in model.parameters():
            p.mul_(4)
    return model


def _batch(n=8):
    g = torch.Generator().manual_seed(3)
    return torch.rand(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


class RowLSTM(nn.Module):
    """Tiny row-by-row sequence classifier: (B, T, I) -> logits (B, C)."""

    def __init__(self, inputs=4, hidden=6, classes=3):
        super().__init__()
        self.rnn = nn.LSTM(inputs, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        _, (h, _) = self.rnn(x)
        return self.head(h[-1])


def _per_example_loss(model, x, y):
    with torch.no_grad():
        return F.cross_entropy(model(x), y, reduction="none")


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_linf_ball_and_box(name):
    model, (x, y) = _mlp(), _batch()
    x_adv = ATTACKS[name](model, x, y, 0.1)
    assert x_adv.shape == x.shape and not x_adv.requires_grad
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert not torch.equal(x_adv, x)


def test_l2_ball_and_box():
    model, (x, y) = _mlp(), _batch()
    for random_start in (True, False):
        x_adv = pgd(model, x, y, 0.5, steps=5, norm="l2", random_start=random_start)
        assert ((x_adv - x).flatten(1).norm(dim=1) <= 0.5 + 1e-5).all()
        assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
        assert (_per_example_loss(model, x_adv, y) > _per_example_loss(model, x, y)).any()


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_eps_zero_is_identity(name):
    model, (x, y) = _mlp(), _batch()
    assert torch.equal(ATTACKS[name](model, x, y, 0.0), x)
    assert torch.equal(pgd(model, x, y, 0, norm="l2", restarts=2), x)


@pytest.mark.parametrize("targeted", [False, True])
def test_one_step_pgd_equals_fgsm(targeted):
    model, (x, y) = _mlp(), _batch()
    a = fgsm(model, x, y, 0.07, targeted=targeted)
    b = pgd(model, x, y, 0.07, alpha=0.07, steps=1, random_start=False, targeted=targeted)
    assert torch.equal(a, b)
    assert torch.equal(a, (x + 0.07 * _sign_grad(model, x, y, targeted)).clamp(0, 1))


def _sign_grad(model, x, y, targeted):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)
    return -g.sign() if targeted else g.sign()


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_loss_increases(name):
    # Cross-entropy of a linear model is convex in x: every sign-ascent step raises it.
    model, (x, y) = _linear(), _batch()
    x_adv = ATTACKS[name](model, x, y, 0.05)
    assert (_per_example_loss(model, x_adv, y) >= _per_example_loss(model, x, y) - 1e-6).all()
    mlp = _mlp()
    x_adv = ATTACKS[name](mlp, x, y, 0.05)
    assert _per_example_loss(mlp, x_adv, y).mean() > _per_example_loss(mlp, x, y).mean()


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_targeted_raises_target_probability(name):
    model, (x, y) = _mlp(), _batch()
    target = (y + 1) % 3
    x_adv = ATTACKS[name](model, x, target, 0.1, targeted=True)
    with torch.no_grad():
        p0 = model(x).softmax(1).gather(1, target[:, None])
        p1 = model(x_adv).softmax(1).gather(1, target[:, None])
    assert (p1 > p0).all()


def test_restarts_never_lose_successes():
    model, (x, y) = _mlp(), _batch(32)
    with torch.no_grad():
        y = model(x).argmax(1)  # all clean-correct, so success = flipped prediction
    kw = {"steps": 1, "alpha": 0.02}
    one = pgd(model, x, y, 0.15, generator=torch.Generator().manual_seed(5), **kw)
    many = pgd(model, x, y, 0.15, restarts=4, generator=torch.Generator().manual_seed(5), **kw)
    with torch.no_grad():
        fooled_one, fooled_many = model(one).argmax(1) != y, model(many).argmax(1) != y
    assert 0 < fooled_one.sum() < len(y)  # a partly successful attack: the test has teeth
    assert (fooled_many | ~fooled_one).all() and fooled_many.sum() >= fooled_one.sum()
    assert ((many - x).abs().max() <= 0.15 + 1e-6) and many.min() >= 0 and many.max() <= 1


def test_generator_makes_random_start_reproducible():
    model, (x, y) = _mlp(), _batch()
    a = pgd(model, x, y, 0.1, steps=2, generator=torch.Generator().manual_seed(7))
    b = pgd(model, x, y, 0.1, steps=2, generator=torch.Generator().manual_seed(7))
    c = pgd(model, x, y, 0.1, steps=2, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_model_state_untouched(name):
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(16, 12), nn.Dropout(0.5), nn.BatchNorm1d(12), nn.Linear(12, 3)
    )
    model.train()
    model[3].eval()  # mixed modes must come back as they were
    model[1].weight.requires_grad_(False)
    model[4].weight.grad = torch.full_like(model[4].weight, 7.0)
    stats = model[3].running_mean.clone()
    x, y = _batch()
    a = ATTACKS[name](model, x, y, 0.1)
    b = ATTACKS[name](model, x, y, 0.1, clip=None)
    assert model.training and model[2].training and not model[3].training
    assert [p.requires_grad for p in model.parameters()] == [False, True, True, True, True, True]
    assert torch.equal(model[4].weight.grad, torch.full_like(model[4].weight, 7.0))
    assert all(p.grad is None for i, p in enumerate(model.parameters()) if i != 4)
    assert torch.equal(model[3].running_mean, stats)
    assert (b - x).abs().max() <= 0.1 + 1e-6
    if name != "pgd":  # attacked in eval mode: dropout off, so deterministic
        assert torch.equal(a, ATTACKS[name](model, x, y, 0.1))


def test_eval_mode_lstm_sequence_classifier():
    torch.manual_seed(4)
    model = RowLSTM().eval()
    g = torch.Generator().manual_seed(6)
    x, y = torch.rand(6, 5, 4, generator=g), torch.randint(0, 3, (6,), generator=g)
    for name, attack in ATTACKS.items():
        x_adv = attack(model, x, y, 0.1)
        assert x_adv.shape == (6, 5, 4), name
        assert (x_adv - x).abs().max() <= 0.1 + 1e-6
        assert _per_example_loss(model, x_adv, y).mean() > _per_example_loss(model, x, y).mean()
    assert not model.training and all(p.grad is None for p in model.parameters())


def test_works_inside_no_grad_and_custom_loss():
    model, (x, y) = _mlp(), _batch()
    with torch.no_grad():
        a = fgsm(model, x, y, 0.1)
    b = fgsm(model, x, y, 0.1, loss_fn=lambda logits, t: F.cross_entropy(logits, t))
    assert torch.equal(a, b)  # mean vs sum: same signs
    c = pgd(model, x, y, 0.1, steps=2, restarts=2, loss_fn=F.cross_entropy)
    assert (c - x).abs().max() <= 0.1 + 1e-6


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m, x, y: fgsm(m, x, y, -0.1), ValueError, "`eps`"),
        (lambda m, x, y: fgsm(m, x, y, float("nan")), ValueError, "`eps`"),
        (lambda m, x, y: fgsm(m, x, y, True), TypeError, "`eps`"),
        (lambda m, x, y: bim(m, x, y, 0.1, 0.01, 0), ValueError, "`steps`"),
        (lambda m, x, y: bim(m, x, y, 0.1, -0.01, 3), ValueError, "`alpha`"),
        (lambda m, x, y: pgd(m, x, y, 0.1, steps=2.5), TypeError, "`steps`"),
        (lambda m, x, y: pgd(m, x, y, 0.1, restarts=0), ValueError, "`restarts`"),
        (lambda m, x, y: pgd(m, x, y, 0.1, norm="l1"), ValueError, "`norm`.*'l1'"),
        (lambda m, x, y: pgd(m, x, y, 0.1, generator=3), TypeError, "`generator`"),
        (lambda m, x, y: fgsm(m, x, y[:-1], 0.1), ValueError, "batch size.*8 and 7"),
        (lambda m, x, y: fgsm(m, x, y.float(), 0.1), TypeError, "`y`"),
        (lambda m, x, y: fgsm(m, (x * 255).long(), y, 0.1), TypeError, "`x`"),
        (lambda m, x, y: fgsm(m, x * 3, y, 0.1), ValueError, "outside clip"),
        (lambda m, x, y: fgsm(m, x, y, 0.1, clip=(1.0, 0.0)), ValueError, "`clip`"),
        (lambda m, x, y: fgsm(m, x, y + 3, 0.1), ValueError, r"`y`.*\[0, 3\)"),
        (lambda m, x, y: fgsm(lambda t: t, x, y, 0.1), TypeError, "`model`"),
        (lambda m, x, y: fgsm(nn.Identity(), x, y, 0.1), TypeError, r"logits of shape \(B, C\)"),
        (lambda m, x, y: fgsm(m, x, y, 0.1, loss_fn=lambda o, t: o), ValueError, "`loss_fn`"),
    ],
)
def test_bad_inputs_name_the_argument(call, error, match):
    model, (x, y) = _mlp(), _batch()
    with pytest.raises(error, match=match):
        call(model, x, y)


@pytest.mark.gpu
def test_eval_mode_lstm_on_cuda_despite_cudnn():
    # cuDNN's RNN backward refuses eval mode; the attack must switch cuDNN off around it.
    torch.manual_seed(4)
    model = RowLSTM().cuda().eval()
    x, y = torch.rand(6, 5, 4, device="cuda"), torch.randint(0, 3, (6,), device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    x_adv = pgd(model, x, y, 0.1, steps=3, restarts=2, generator=g)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert torch.backends.cudnn.enabled and not model.training
