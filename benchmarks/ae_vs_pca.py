"""Linear / deep / conv autoencoders vs PCA on MNIST-10k (the chapter's "autoencoders and PCA").

Part A (Baldi & Hornik 1989; Kunin et al. 2019): a linear AE trained with and without an L2
penalty λ(‖W1‖² + ‖W2‖²) at p = 2, 8, 16. Reported: the largest principal angle between the
decoder's column space and the top-p PCA subspace, and |cos| between the decoder's ordered
left singular vectors and the PCA loadings 1..min(p, 4).
Part B: test reconstruction MSE (per pixel, pixels in [0, 1]) of PCA, linear AE, deep AE and
conv AE at p = 2, 8, 32, all fitted on the 10,000 training images, scored on the 10,000 test
images.

Run: ``.venv/bin/python benchmarks/ae_vs_pca.py [--data-dir ../shared/datasets]``.
Linear AEs: centred data, no biases, float64, full-batch L-BFGS (strong Wolfe) from the default
random init W1 ~ N(0, 1/D), W2 = W1ᵀ (without L2 the loss is invariant to W1 → M⁻¹W1,
W2 → W2 M, and nn.Linear's default init starts the pair so unbalanced that L-BFGS crawls; pass
``--default-init`` to see it). The full-batch loss is evaluated through the covariance
G = XᵀX / N, exactly ``model.loss(X)`` (checked and printed) but D×D instead of N×D per step:
‖X − X W1ᵀW2ᵀ‖² / (N D) = [tr G − 2 Σ (G W1ᵀ) ⊙ W2 + tr((W1 G W1ᵀ)(W2ᵀ W2))] / D.
Deep / conv AEs: Adam, minibatches, sigmoid output, MSE loss.
"""

from __future__ import annotations

import argparse
import time

import torch
from _args import add_data_dir

from rnnlab.data import load
from rnnlab.evaluation.pca import (
    linear_ae_principal_directions,
    pca,
    principal_angles,
    reconstruction_mse_pca,
)
from rnnlab.models.autoencoders import (
    ConvAutoencoder,
    DeepAutoencoder,
    LinearAutoencoder,
    train_autoencoder,
)


def gram_loss(model: LinearAutoencoder, gram: torch.Tensor) -> torch.Tensor:
    """``model.loss(X)[0]`` for centred ``X`` with ``gram = XᵀX / N`` (bias-free model)."""
    w1, w2 = model.encoder.weight, model.decoder.weight  # (p, D), (D, p)
    trace_ca = ((gram @ w1.T) * w2).sum()
    trace_aca = ((w1 @ gram @ w1.T) * (w2.T @ w2)).sum()
    rec = (gram.trace() - 2 * trace_ca + trace_aca) / gram.shape[0]
    return rec + model.weight_penalty()


def fit_linear_lbfgs(
    x: torch.Tensor, p: int, weight_decay: float, iters: int, seed: int, balanced: bool = True
):
    """Full-batch L-BFGS on the linear AE's own loss (reconstruction + optional L2 term)."""
    torch.manual_seed(seed)
    model = LinearAutoencoder(x.shape[1], p, weight_decay=weight_decay, bias=False).double()
    if balanced:  # W2 = W1ᵀ: gradient flow conserves W1 W1ᵀ − W2ᵀ W2, so the pair stays balanced
        with torch.no_grad():
            model.encoder.weight.normal_(0.0, x.shape[1] ** -0.5)
            model.decoder.weight.copy_(model.encoder.weight.T)
    gram = x.T @ x / x.shape[0]
    opt = torch.optim.LBFGS(
        model.parameters(),
        lr=1.0,
        max_iter=iters,
        history_size=50,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = gram_loss(model, gram)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        gap = abs(gram_loss(model, gram).item() - model.loss(x)[0].item())
    return model, gap


def test_mse(model, x_test: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x_test) - x_test).pow(2).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_dir(ap)
    ap.add_argument("--lbfgs-iters", type=int, default=3000)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--default-init", action="store_true", help="nn.Linear init, not W2 = W1ᵀ")
    ap.add_argument("--deep-sizes", default="512,128")
    ap.add_argument("--deep-epochs", type=int, default=30)
    ap.add_argument("--conv-channels", default="16,32")
    ap.add_argument("--conv-epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("settings:", vars(args))

    x_train = load("mnist", "train", root=args.data_dir).images.reshape(-1, 784)
    x_test = load("mnist", "test", root=args.data_dir).images.reshape(-1, 784)
    print(f"data: MNIST-10k train {tuple(x_train.shape)}, test {tuple(x_test.shape)}")
    xtr64, xte64 = x_train.double(), x_test.double()
    mean = xtr64.mean(dim=0)
    xc, xtc = xtr64 - mean, xte64 - mean

    # ---- Part A: subspace and direction recovery ----
    print("\nPart A: linear AE vs PCA (angles in degrees)")
    print(f"{'p':>3} {'λ':>8} {'max angle':>10} {'|cos| dirs 1..min(p,4)':>28} {'secs':>6}")
    linear_no_wd, worst_gap = {}, 0.0
    for p in (2, 8, 16, 32):
        comps, _, _ = pca(xc, p)
        for wd in (0.0, args.weight_decay):
            if p == 32 and wd > 0:
                continue
            t0 = time.time()
            model, gap = fit_linear_lbfgs(
                xc, p, wd, args.lbfgs_iters, args.seed, not args.default_init
            )
            worst_gap = max(worst_gap, gap)
            w = model.decoder_weight.detach()
            angle = principal_angles(w, comps.T).max().item()
            dirs = linear_ae_principal_directions(w)[:, : min(p, 4)]
            cos = (dirs * comps[: min(p, 4)].T).sum(dim=0).abs().tolist()
            if wd == 0:
                linear_no_wd[p] = model
            if p == 32:
                continue  # p = 32 only feeds Part B
            cos_s = " ".join(f"{c:.4f}" for c in cos)
            print(f"{p:>3} {wd:>8.0e} {angle:>10.4f} {cos_s:>28} {time.time() - t0:>6.1f}")

    print(f"(Gram-form loss vs model.loss on the full data: max |difference| {worst_gap:.1e})")

    # ---- Part B: test reconstruction MSE ----
    print("\nPart B: test reconstruction MSE per pixel")
    deep_hidden = [int(s) for s in args.deep_sizes.split(",")]
    channels = [int(s) for s in args.conv_channels.split(",")]
    print(f"{'p':>3} {'PCA':>9} {'linear AE':>10} {'deep AE':>9} {'conv AE':>9} {'secs':>6}")
    for p in (2, 8, 32):
        t0 = time.time()
        mse_pca = reconstruction_mse_pca(xtr64, xte64, p)
        mse_lin = test_mse(linear_no_wd[p], xtc)
        torch.manual_seed(args.seed)
        deep = DeepAutoencoder([784, *deep_hidden, p], output_activation="sigmoid")
        train_autoencoder(deep, x_train, args.deep_epochs, args.batch_size, args.lr, seed=args.seed)
        mse_deep = test_mse(deep, x_test)
        torch.manual_seed(args.seed)
        conv = ConvAutoencoder((28, 28), p, channels, output_activation="sigmoid")
        imgs, imgs_test = x_train.view(-1, 1, 28, 28), x_test.view(-1, 1, 28, 28)
        train_autoencoder(conv, imgs, args.conv_epochs, args.batch_size, args.lr, seed=args.seed)
        mse_conv = test_mse(conv, imgs_test)
        print(
            f"{p:>3} {mse_pca:>9.5f} {mse_lin:>10.5f} {mse_deep:>9.5f} {mse_conv:>9.5f} "
            f"{time.time() - t0:>6.1f}"
        )


if __name__ == "__main__":
    main()
