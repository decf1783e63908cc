"""GANs: shapes, losses on known logits, frozen-D phases, minibatch discrimination, VAE-GAN."""

import pytest
import torch
import torch.nn.functional as F

from rnnlab.losses import gan_discriminator_loss, gan_generator_loss
from rnnlab.models.gans import (
    DCGANDiscriminator,
    DCGANGenerator,
    MinibatchDiscrimination,
    MLPDiscriminator,
    MLPGenerator,
)
from rnnlab.models.vaegan import VAEGAN
from rnnlab.training.families.gan import (
    discriminator_phase,
    gan_step,
    generator_phase,
    make_gan_optimizers,
)
from rnnlab.training.families.vaegan import vaegan_step


def _snap(m):
    return [p.detach().clone() for p in m.parameters()]


def _same(m, snap):
    return all(torch.equal(p, q) for p, q in zip(m.parameters(), snap, strict=True))


@pytest.mark.parametrize("conditional", [False, True])
def test_generator_discriminator_shapes(conditional):
    kw = {"n_classes": 10} if conditional else {}
    labels = torch.tensor([0, 3, 9]) if conditional else None
    pairs = [
        (MLPGenerator(8, (1, 28, 28), **kw), MLPDiscriminator((1, 28, 28), **kw), (1, 28, 28)),
        (
            MLPGenerator(8, (1, 8, 8), hidden=(16, 32), **kw),
            MLPDiscriminator((1, 8, 8), **kw),
            (1, 8, 8),
        ),
        (
            DCGANGenerator(8, 1, 28, base_channels=4, **kw),
            DCGANDiscriminator(1, 28, base_channels=4, minibatch=(3, 2), **kw),
            (1, 28, 28),
        ),
        (
            DCGANGenerator(8, 1, 8, base_channels=4, **kw),
            DCGANDiscriminator(1, 8, base_channels=4, **kw),
            (1, 8, 8),
        ),
    ]
    for g, d, shape in pairs:
        x = g(torch.randn(3, 8), labels)
        assert x.shape == (3, *shape)
        assert x.abs().max() <= 1.0  # tanh output
        logits = d(x, labels)
        assert logits.shape == (3,)
        torch.testing.assert_close(d.prob(x, labels), torch.sigmoid(logits))


def test_label_and_shape_errors():
    with pytest.raises(ValueError, match="labels"):
        MLPGenerator(4, n_classes=3)(torch.randn(2, 4))
    with pytest.raises(ValueError, match="labels"):
        MLPDiscriminator()(torch.rand(2, 1, 28, 28), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="z"):
        DCGANGenerator(4, image_size=8, base_channels=2)(torch.randn(2, 5))
    with pytest.raises(ValueError, match="image_size"):
        DCGANDiscriminator(1, 30, n_layers=2)


def test_gan_losses_on_known_logits():
    l = torch.tensor([0.0, 2.0, -1.0])
    ns = torch.log1p(torch.exp(-l)).mean()  # -log sigmoid(l)
    mm = torch.log(1 - torch.sigmoid(l)).mean()  # log(1 - D)
    torch.testing.assert_close(gan_generator_loss(l, "non_saturating"), ns)
    torch.testing.assert_close(gan_generator_loss(l, "minimax"), mm)
    torch.testing.assert_close(gan_generator_loss(torch.zeros(4)), torch.tensor(0.6931472))
    r, f, eps = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.5]), 0.1
    s_r, s_f = torch.sigmoid(r), torch.sigmoid(f)
    want = -((1 - eps) * s_r.log() + eps * (1 - s_r).log()).mean() - (1 - s_f).log().mean()
    torch.testing.assert_close(gan_discriminator_loss(r, f, label_smoothing=eps), want)
    with pytest.raises(ValueError, match="kind"):
        gan_generator_loss(l, "wasserstein")


def test_minimax_saturates_where_non_saturating_does_not():
    l = torch.tensor([-8.0], requires_grad=True)  # D confidently rejects the fake
    (g_mm,) = torch.autograd.grad(gan_generator_loss(l, "minimax"), l)
    (g_ns,) = torch.autograd.grad(gan_generator_loss(l, "non_saturating"), l)
    assert g_mm.abs() < 1e-3 < g_ns.abs()


def test_phases_move_only_their_own_network():
    g, d = DCGANGenerator(8, 1, 8, base_channels=4), DCGANDiscriminator(1, 8, base_channels=4)
    opt_g, opt_d = make_gan_optimizers(g, d)
    assert opt_g.defaults["lr"] == 2e-4 and opt_g.defaults["betas"] == (0.5, 0.999)
    real = torch.rand(6, 1, 8, 8) * 2 - 1
    fake = g(torch.randn(6, 8))
    g0, d0 = _snap(g), _snap(d)
    discriminator_phase(d, real, fake, opt_d)
    assert _same(g, g0) and not _same(d, d0)
    assert all(p.grad is None for p in g.parameters())
    d1, d_grads = _snap(d), [p.grad.clone() for p in d.parameters()]
    out = generator_phase(d, fake, opt_g, loss="minimax")
    assert _same(d, d1) and not _same(g, g0)
    assert all(torch.equal(p.grad, q) for p, q in zip(d.parameters(), d_grads, strict=True))
    assert all(p.requires_grad for p in d.parameters())  # restored after the phase
    assert set(out) == {"g_loss", "g_grad_norm"}


def test_gan_step_conditional_and_reproducible():
    def run():
        torch.manual_seed(0)
        g = MLPGenerator(4, (1, 8, 8), hidden=(16,), n_classes=3)
        d = MLPDiscriminator((1, 8, 8), hidden=(16,), n_classes=3, minibatch=(4, 2))
        og, od = make_gan_optimizers(g, d)
        real, labels = torch.rand(5, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1])
        rng = torch.Generator().manual_seed(7)
        return gan_step(
            g, d, real, og, od, z_dim=4, label_smoothing=0.1, labels=labels, generator_rng=rng
        )

    a, b = run(), run()
    assert a == b
    assert set(a) == {"d_loss", "d_real", "d_fake", "d_grad_norm", "g_loss", "g_grad_norm"}
    with pytest.raises(ValueError, match="loss"):
        g, d = MLPGenerator(4), MLPDiscriminator()
        gan_step(g, d, torch.rand(2, 1, 28, 28), *make_gan_optimizers(g, d), z_dim=4, loss="x")


def test_minibatch_discrimination():
    mbd = MinibatchDiscrimination(6, n_kernels=4, kernel_dim=3)
    f = torch.randn(5, 6) * 10
    out = mbd(f)
    assert out.shape == (5, 6 + 4) and mbd.out_features == 10
    torch.testing.assert_close(out[:, :6], f)
    same = mbd(f[:1].expand(5, 6))[:, 6:]
    torch.testing.assert_close(same, torch.full((5, 4), 4.0))  # B - 1: maximal closeness
    assert (out[:, 6:] < same).all()
    with pytest.raises(ValueError, match="f"):
        mbd(torch.randn(5, 7))


def test_vaegan_step_moves_each_part_by_its_own_loss_only():
    torch.manual_seed(0)
    model = VAEGAN(4, channels=1, image_size=8, base_channels=4, gamma=0.5)
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    parts = model.parts()
    lr = 0.1
    before = {k: [p.detach().clone() for p in ps] for k, ps in parts.items()}
    losses = model.losses(x, rng=torch.Generator().manual_seed(3))
    expected = {
        k: torch.autograd.grad(losses[k], ps, retain_graph=True, allow_unused=True)
        for k, ps in parts.items()
    }
    total = losses["encoder"] + losses["decoder"] + losses["discriminator"]
    total_grads = torch.autograd.grad(total, parts["discriminator"])
    opts = [torch.optim.SGD(parts[k], lr=lr) for k in ("encoder", "decoder", "discriminator")]
    out = vaegan_step(model, (x, None), *opts, generator_rng=torch.Generator().manual_seed(3))
    assert {"encoder_loss", "decoder_loss", "discriminator_loss", "kl", "feature_recon"} <= set(out)
    for k, ps in parts.items():
        for p, p0, g in zip(ps, before[k], expected[k], strict=True):
            want = p0 if g is None else p0 - lr * g
            torch.testing.assert_close(p.detach(), want, rtol=1e-4, atol=1e-6)
    # the discriminator's update is not the one the summed loss would give
    moved = [
        p0 - p.detach()
        for p, p0 in zip(parts["discriminator"], before["discriminator"], strict=True)
    ]
    assert any(
        not torch.allclose(m, lr * g, atol=1e-6) for m, g in zip(moved, total_grads, strict=True)
    )
    assert model.sample(3).shape == (3, 1, 8, 8)
    assert model.reconstruct(x).shape == x.shape
    F.mse_loss(model.reconstruct(x), x)  # differentiable path exists
