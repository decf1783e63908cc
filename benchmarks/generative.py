"""Training speed of rnnlab's VAE and DCGAN beside plain PyTorch scripts, in one process.

For each model, two trainers run the same number of steps on the same batches (MNIST-10k
if found, else random images of its shape):

- ``rnnlab``: exactly what ``rnnlab train vae-mnist`` / ``dcgan-mnist`` runs per step: the
  preset's model from ``training.experiment.build_model``, its optimizer(s) from
  ``training.optim.build_optimizer`` and the family's train step (``vae_step``; ``gan_step``
  with its frozen-D generator phase and per-step ``.item()`` metrics), batches from
  ``training.loop.Batches``;
- ``plain``: the same architecture written as ``nn.Sequential`` and the textbook loop of
  pytorch/examples (``vae/main.py``, ``dcgan/main.py``): BCE + closed-form KL; D on real and
  ``fake.detach()``, then G with D's gradients computed and discarded.

The plain model starts from a copy of rnnlab's initial weights, so the final losses should
agree up to the noise draws. The trainers alternate in rounds of ``--block`` steps (machine
drift hits both alike); the ratio is the summed time of rnnlab over plain (goal <= 1.10x).
DCGAN uses ``base_channels = 32`` (the preset's 64 is 4x slower on a CPU) and no label
smoothing on both sides.

Run: ``python benchmarks/generative.py [--vae-steps 200] [--gan-steps 40] [--block 10]``.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.training import families
from rnnlab.training.config import apply_overrides, load_preset
from rnnlab.training.experiment import build_model, model_input, steps_for
from rnnlab.training.loop import Batches
from rnnlab.training.optim import build_optimizer


def _images(data_dir: str | None) -> torch.Tensor:
    try:
        from rnnlab.data import load

        return load("mnist", "train", root=data_dir).images
    except Exception:  # no MNIST here: random images of the same shape
        return torch.rand(10_000, 28, 28)


def _plain_vae(latent: int = 20, hidden: int = 400) -> tuple[nn.Module, nn.Module, nn.Module]:
    enc = nn.Sequential(
        nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent)
    )
    dec = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, 784))
    return enc, dec, nn.ModuleList([enc, dec])


def _plain_dcgan(z: int, c: int) -> tuple[nn.Module, nn.Module]:
    g = nn.Sequential(
        nn.Linear(z, 2 * c * 49), nn.Unflatten(1, (2 * c, 7, 7)), nn.BatchNorm2d(2 * c), nn.ReLU(),
        nn.ConvTranspose2d(2 * c, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
        nn.ConvTranspose2d(c, 1, 4, 2, 1), nn.Tanh(),
    )  # fmt: skip
    d = nn.Sequential(
        nn.Conv2d(1, c, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(2 * c * 49, 1),
    )  # fmt: skip
    return g, d


def _copy(src: nn.Module, dst: nn.Module) -> None:
    """Copy parameters and buffers in registration order (shapes must match)."""
    with torch.no_grad():
        for a, b in zip(src.state_dict().values(), dst.state_dict().values(), strict=True):
            b.copy_(a.reshape(b.shape))


def _timed(fn, block: int, it) -> tuple[float, dict]:
    t0 = time.perf_counter()
    out = {}
    for _ in range(block):
        out = fn(next(it))
    return time.perf_counter() - t0, out


def _forever(batches: Batches):
    while True:
        yield from batches


def bench_vae(x: torch.Tensor, steps: int, block: int) -> dict:
    cfg = load_preset("vae-mnist")
    data = model_input(cfg, x)
    ours = build_model(cfg, data[0], 10)
    opt = build_optimizer(cfg, ours)
    step = steps_for(cfg)[0]
    enc, dec, plain = _plain_vae(cfg.model.latent_dim, cfg.model.hidden_size)
    # rnnlab: encoder Linear, to_mu, to_logvar, decoder; plain: one Linear emits [mu, logvar]
    with torch.no_grad():
        enc[1].weight.copy_(ours.encoder[1].weight)
        enc[1].bias.copy_(ours.encoder[1].bias)
        enc[3].weight.copy_(torch.cat([ours.to_mu.weight, ours.to_logvar.weight]))
        enc[3].bias.copy_(torch.cat([ours.to_mu.bias, ours.to_logvar.bias]))
    _copy(ours.decoder, dec)
    popt = torch.optim.Adam(plain.parameters(), lr=cfg.train.lr)

    def plain_step(batch):
        xb = batch[0].flatten(1)
        mu, logvar = enc(xb).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        rec = F.binary_cross_entropy_with_logits(dec(z), xb, reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        loss = (rec + kl) / len(xb)
        popt.zero_grad()
        loss.backward()
        popt.step()
        return {"loss": loss.item()}

    mine = _forever(Batches(data, batch_size=cfg.data.batch_size, seed=0))
    theirs = _forever(Batches(data, batch_size=cfg.data.batch_size, seed=0))
    return _race(lambda b: step(ours, b, opt), plain_step, mine, theirs, steps, block, "loss")


def bench_dcgan(x: torch.Tensor, steps: int, block: int) -> dict:
    cfg = apply_overrides(load_preset("dcgan-mnist"),
                          ["--model.base_channels=32", "--train.label_smoothing=0"])  # fmt: skip
    data = model_input(cfg, x)
    ours = build_model(cfg, data[0], 10)
    opt = build_optimizer(cfg, ours, families.get("gan").parts(ours))
    step = steps_for(cfg)[0]
    g, d = _plain_dcgan(cfg.model.latent_dim, cfg.model.base_channels)
    _copy(ours.generator, g)
    _copy(ours.discriminator, d)
    betas = (cfg.train.beta1, 0.999)
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.train.lr, betas=betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.train.lr, betas=betas)
    bce = nn.BCEWithLogitsLoss()

    def plain_step(batch):  # pytorch/examples dcgan/main.py, logits form
        real = batch[0]
        fake = g(torch.randn(len(real), cfg.model.latent_dim))
        ones, zeros = torch.ones(len(real)), torch.zeros(len(real))
        d.zero_grad()
        d_loss = bce(d(real).squeeze(1), ones) + bce(d(fake.detach()).squeeze(1), zeros)
        d_loss.backward()
        opt_d.step()
        g.zero_grad()
        g_loss = bce(d(fake).squeeze(1), ones)
        g_loss.backward()
        opt_g.step()
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}

    mine = _forever(Batches(data, batch_size=cfg.data.batch_size, seed=0))
    theirs = _forever(Batches(data, batch_size=cfg.data.batch_size, seed=0))
    return _race(lambda b: step(ours, b, opt), plain_step, mine, theirs, steps, block, "g_loss")


def _race(ours, plain, mine, theirs, steps: int, block: int, key: str) -> dict:
    _timed(ours, 2, mine)  # warm-up
    _timed(plain, 2, theirs)
    t_ours = t_plain = 0.0
    out_ours = out_plain = {}
    for _ in range(max(1, steps // block)):
        dt, out_ours = _timed(ours, block, mine)
        t_ours += dt
        dt, out_plain = _timed(plain, block, theirs)
        t_plain += dt
    return {"rnnlab_s": t_ours, "plain_s": t_plain, "ratio": t_ours / t_plain,
            "rnnlab_last": out_ours, "plain_last": out_plain, "key": key}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vae-steps", type=int, default=200)
    p.add_argument("--gan-steps", type=int, default=40)
    p.add_argument("--block", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default="../shared/datasets")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = _images(args.data_dir)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {len(x)} images")
    print(f"{'model':<8}{'steps':>6}{'rnnlab s':>10}{'plain s':>10}{'ratio':>8}  final losses")
    for name, fn, steps in (("VAE", bench_vae, args.vae_steps),
                            ("DCGAN", bench_dcgan, args.gan_steps)):  # fmt: skip
        r = fn(x, steps, args.block)
        losses = "  ".join(
            f"{who} " + " ".join(f"{k} {v:.3f}" for k, v in r[f"{who}_last"].items()
                                 if k in ("loss", "d_loss", "g_loss"))
            for who in ("rnnlab", "plain")
        )  # fmt: skip
        n = max(1, steps // args.block) * args.block
        print(f"{name:<8}{n:>6}{r['rnnlab_s']:>10.2f}{r['plain_s']:>10.2f}{r['ratio']:>7.2f}x  "
              f"{losses}")  # fmt: skip


if __name__ == "__main__":
    main()
