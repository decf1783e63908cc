"""Tour parts for the generative half of the chapter: autoencoders (denoising, the linear
autoencoder and PCA, anomaly detection), a VAE with a 2-D latent space, and GANs (Listing
5.5's MLP GAN and a DCGAN). Each trains through the engine's ``autoencode``/``vae``/``gan``
families on the embedded 8x8 digits."""

from __future__ import annotations

import json
import math

import torch

from rnnlab.data import load
from rnnlab.evaluation.anomaly import one_class_auroc
from rnnlab.evaluation.latent import latent_map, manifold_grid
from rnnlab.evaluation.pca import pca, principal_angles
from rnnlab.models.autoencoders import Autoencoder, LinearAutoencoder, train_autoencoder
from rnnlab.training.experiment import load_run, model_input
from rnnlab.utils import atomic_write_text, save_image_grid

from .common import Tour

DIGITS = ["--data.dataset=digits"]


def _epochs(tour: Tour, full: int) -> list[str]:
    return [f"--train.epochs={2 if tour.quick else full}"]


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio for images in [0, 1]: 10 log10(1 / MSE)."""
    return 10 * math.log10(1.0 / float(((a - b) ** 2).mean()))


def part_autoencoders(tour: Tour) -> list[str]:
    """Autoencoders: denoising, the linear autoencoder and PCA, and anomaly detection."""
    test, train = load("digits", "test"), load("digits", "train")
    lines = []
    # Denoising (Vincent et al. 2008): noisy in, clean out.
    r = tour.train("autoencoders", "ae-denoising", "denoising", DIGITS + _epochs(tour, 30))
    cfg, model = load_run(r["run"])
    clean = test.images[:16]
    noisy = clean + 0.3 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    noisy = noisy.clamp(0, 1)
    with torch.no_grad():
        denoised = model(model_input(cfg, noisy)).reshape(clean.shape).clamp(0, 1)
    grid = torch.cat([noisy, denoised, clean])  # rows: noisy / denoised / clean
    save_image_grid(grid, r["run"] / "samples" / "denoising.png", nrow=16)
    lines.append(
        f"denoising AE: PSNR {_psnr(noisy, clean):.1f} dB noisy -> "
        f"{_psnr(denoised, clean):.1f} dB denoised (Gaussian noise, std 0.3)"
    )
    # A linear AE spans the top-p principal subspace (Baldi & Hornik 1989). Minibatch Adam
    # creeps towards it for hundreds of epochs; full-batch L-BFGS gets there in a second.
    p = 8
    x = train.images.reshape(len(train), -1)
    torch.manual_seed(0)
    linear = LinearAutoencoder(64, p)
    opt = torch.optim.LBFGS(linear.parameters(), max_iter=100 if tour.quick else 1000,
                            history_size=20, line_search_fn="strong_wolfe")  # fmt: skip

    def closure():
        opt.zero_grad()
        loss = linear.loss(x)[0]
        loss.backward()
        return loss

    opt.step(closure)
    components, _, _ = pca(x, p)
    angles = principal_angles(linear.decoder_weight.detach(), components.T)
    run = tour.manual_run("autoencoders", "linear-vs-pca", {"model": f"LinearAutoencoder(64, {p})",
                          "fit": "full-batch L-BFGS", "data": "digits train"})  # fmt: skip
    result = {"p": p, "max_principal_angle_deg": float(angles.max()),
              "angles_deg": angles.tolist()}  # fmt: skip
    atomic_write_text(run / "pca.json", json.dumps(result))
    lines.append(
        f"linear AE (p={p}) vs PCA: largest principal angle {float(angles.max()):.2f} deg "
        "between the decoder's span and the top-8 principal subspace"
    )
    # One-class anomaly detection: an AE trained only on zeros scores the other digits.
    torch.manual_seed(0)
    ae = Autoencoder(64, 16)
    zeros = x[train.labels == 0]
    train_autoencoder(ae, zeros, epochs=20 if tour.quick else 200, batch_size=32, lr=1e-2)
    flat = test.images.reshape(len(test), -1)
    auroc = one_class_auroc(ae, flat[test.labels == 0], flat[test.labels != 0])
    lines.append(f"anomaly detection (normal = digit 0): AUROC {auroc:.3f} on the test digits")
    atomic_write_text(r["run"] / "anomaly.json", json.dumps({"normal_class": 0, "auroc": auroc}))
    return lines


def part_vae(tour: Tour) -> list[str]:
    """A variational autoencoder with a 2-D latent space: samples, reconstructions, the map."""
    r = tour.train("vae", "vae-mnist", "vae-2d",
                   DIGITS + ["--model.latent_dim=2", "--model.hidden_size=128",
                             "--train.iw_k=0"] + _epochs(tour, 40))  # fmt: skip
    cfg, model = load_run(r["run"])
    test = load("digits", "test")
    latent_map(
        model, model_input(cfg, test.images), test.labels, r["run"] / "samples" / "latent-map.png"
    )
    manifold_grid(model, r["run"] / "samples" / "manifold.png", n=12)
    return [
        f"VAE (2-D latent): test negative ELBO {r['test_neg_elbo']:.2f} nats per digit "
        f"(KL {r['test_kl']:.2f}); latent map and decoded manifold in {r['run']}/samples"
    ]


def part_gan(tour: Tour) -> list[str]:
    """GANs: Listing 5.5's MLP GAN and a DCGAN, trained with the two-phase step."""
    lines = []
    for preset, name in (("gan-mnist", "mlp-gan"), ("dcgan-mnist", "dcgan")):
        r = tour.train("gan", preset, name, DIGITS + _epochs(tour, 40 if name == "mlp-gan" else 20))
        lines.append(
            f"{name}: final D loss {r['test_d_loss']:.3f}, G loss {r['test_g_loss']:.3f}, "
            f"D(real) {r['test_d_real']:.2f}, D(fake) {r['test_d_fake']:.2f}"
        )
    return lines


GENERATIVE_PARTS = {"autoencoders": part_autoencoders, "vae": part_vae, "gan": part_gan}
