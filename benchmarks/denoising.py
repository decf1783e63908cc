"""Denoising autoencoders on MNIST-10k, measured by PSNR (Vincent et al. 2008, "Extracting and
composing robust features with denoising autoencoders"; Vincent et al. 2010, JMLR).

For each corruption (additive Gaussian noise σ = 0.3, masking noise with drop probability
0.3) a ``DenoisingAutoencoder`` 784-H-784 (sigmoid code and output, MSE) is trained on the
10,000 training images with that corruption, then the 10,000 test images are corrupted with a
fixed seed (the same noise as in training, unclipped) and cleaned by the model in eval mode.
Reported: mean PSNR (dB, images in [0, 1]) of the noisy inputs and of the outputs, and, as a
control, the output of the same architecture trained without noise (a plain AE: how much of
the gain is the denoising objective). A PNG grid per corruption shows noisy / denoised / clean
rows.

Run: ``.venv/bin/python benchmarks/denoising.py [--out docs/results]``.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from _args import add_data_dir

from rnnlab.data import load
from rnnlab.evaluation.denoising import corrupt, denoise, denoising_report, save_denoising_grid
from rnnlab.models.autoencoders import Autoencoder, DenoisingAutoencoder, train_autoencoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_dir(ap)
    ap.add_argument("--out", default="", help="folder for the grid PNGs (none when empty)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--level", type=float, default=0.3)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--columns", type=int, default=10, help="images per grid row")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("settings:", vars(args))
    x = load("mnist", "train", root=args.data_dir).images.flatten(1)
    xt = load("mnist", "test", root=args.data_dir).images.flatten(1)
    print(f"data: MNIST-10k train {tuple(x.shape)}, test {tuple(xt.shape)}")

    t_all = time.time()
    torch.manual_seed(args.seed)
    plain = Autoencoder(784, args.hidden, output_activation="sigmoid")
    train_autoencoder(plain, x, args.epochs, args.batch_size, args.lr, seed=args.seed)
    print(f"plain AE trained in {time.time() - t_all:.0f} s")
    print(f"{'noise':>9} {'level':>5} {'PSNR noisy':>10} {'PSNR DAE':>9} {'PSNR plain AE':>13} "
          f"{'MSE noisy':>9} {'MSE DAE':>8} {'secs':>5}")  # fmt: skip
    for noise in ("gaussian", "masking"):
        t0 = time.time()
        torch.manual_seed(args.seed)
        model = DenoisingAutoencoder(
            784, args.hidden, noise, args.level, output_activation="sigmoid"
        )
        train_autoencoder(model, x, args.epochs, args.batch_size, args.lr, seed=args.seed)
        report = denoising_report(model, xt, noise, args.level, seed=args.seed + 1)
        control = denoising_report(plain, xt, noise, args.level, seed=args.seed + 1)
        print(
            f"{noise:>9} {args.level:>5.2f} {report['psnr_noisy']:>10.2f} "
            f"{report['psnr_denoised']:>9.2f} {control['psnr_denoised']:>13.2f} "
            f"{report['mse_noisy']:>9.4f} {report['mse_denoised']:>8.4f} {time.time() - t0:>5.0f}"
        )
        if args.out:
            clean = xt[: args.columns]
            noisy = corrupt(xt, noise, args.level, seed=args.seed + 1)[: args.columns]
            path = os.path.join(args.out, f"ae_denoising_{noise}.png")
            save_denoising_grid(noisy, denoise(model, noisy), clean, path, image_shape=(28, 28))
            print(f"  grid (rows: noisy, denoised, clean): {path}")
    print(f"total {time.time() - t_all:.0f} s")


if __name__ == "__main__":
    main()
