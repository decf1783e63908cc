r"""Offline metrics for generative models of small images.

FID and KID here are computed on the penultimate-layer features of rnnlab's own small
``DomainClassifier`` (trained on the same domain, e.g. MNIST), NOT on Inception-v3 features:
Inception weights cannot be downloaded here, and 28x28 greyscale digits are far from ImageNet.
The numbers are therefore **not comparable with FIDs/KIDs published in papers** (Lucic et al.
2018 and most others use TF-GAN's Inception graph); compare only runs scored with the same
trained classifier.

- ``fid``: Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017):
  :math:`\|\mu_a - \mu_b\|^2 + \mathrm{tr}(\Sigma_a + \Sigma_b - 2(\Sigma_a\Sigma_b)^{1/2})`.
- ``kid``: Bińkowski et al. 2018, the unbiased estimator of MMD² with the cubic polynomial
  kernel :math:`k(x, y) = (x^\top y / d + 1)^3`, averaged over random subsets.
- ``mode_coverage``: classes hit by samples and the KL of their histogram to uniform
  (as in Srivastava et al. 2017 / Metz et al. 2017's stacked-MNIST mode counts).
- ``memorisation_check``: nearest-training-neighbour distances of samples vs. of held-out
  test images; samples much closer to the training set than test images are suspect.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.linalg
import torch
from torch import Tensor, nn


class DomainClassifier(nn.Module):
    """Small CNN for ``(channels, S, S)`` images, ``S`` divisible by 4:
    two [3x3 conv -> ReLU -> 2x2 max-pool] blocks, Linear -> ReLU (``feature_dim``: the
    features FID/KID use), Linear -> ``n_classes`` logits."""

    def __init__(
        self,
        n_classes: int = 10,
        channels: int = 1,
        image_size: int = 28,
        width: int = 32,
        feature_dim: int = 128,
    ) -> None:
        super().__init__()
        if image_size % 4 != 0:
            raise ValueError(f"`image_size` must be divisible by 4; got {image_size}")
        self.image_shape = (channels, image_size, image_size)
        s = image_size // 4
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (width, S/2, S/2)
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (2 width, S/4, S/4)
            nn.Flatten(),
            nn.Linear(2 * width * s * s, feature_dim),
            nn.ReLU(),  # (feature_dim,)
        )
        self.head = nn.Linear(feature_dim, n_classes)

    def _shape(self, x: Tensor) -> Tensor:
        if x[0].numel() != math.prod(self.image_shape):
            raise ValueError(f"`x` must be (B, *{self.image_shape}); got {tuple(x.shape)}")
        return x.reshape(x.shape[0], *self.image_shape)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer features, shape (B, feature_dim)."""
        return self.body(self._shape(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def train_domain_classifier(
    x: Tensor,
    y: Tensor,
    epochs: int = 3,
    *,
    n_classes: int | None = None,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    **model_kwargs,
) -> DomainClassifier:
    """Train a ``DomainClassifier`` on images ``x`` (N, [C,] S, S) and labels ``y`` with Adam
    and cross-entropy; returns it in eval mode on ``x``'s device. ``n_classes`` defaults to
    ``y.max() + 1``."""
    if len(x) != len(y):
        raise ValueError(f"`y` must have one label per image ({len(x)}); got {len(y)}")
    x = x if x.dim() == 4 else x.unsqueeze(1)
    y = y.long()
    n_classes = int(y.max()) + 1 if n_classes is None else n_classes
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DomainClassifier(n_classes, x.shape[1], x.shape[2], **model_kwargs).to(x.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen).to(x.device)
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def extract_features(
    model: DomainClassifier, x: Tensor, batch_size: int = 512, *, progress: bool = False
) -> np.ndarray:
    """``model.features`` over ``x`` in batches, as a float64 numpy array (N, feature_dim);
    ``progress``: a bar over the batches (:func:`rnnlab.utils.progress`)."""
    from rnnlab.utils import progress as bar

    was_training = model.training
    model.eval()
    try:
        dev = next(model.parameters()).device
        starts = bar(range(0, len(x), batch_size), desc="features", enabled=progress)
        parts = [model.features(x[i : i + batch_size].to(dev)).cpu() for i in starts]
    finally:
        model.train(was_training)
    return torch.cat(parts).double().numpy()


def _feats(f: np.ndarray | Tensor, name: str) -> np.ndarray:
    f = f.detach().cpu().numpy() if isinstance(f, Tensor) else np.asarray(f)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"`{name}` must be (N >= 2, D) features; got shape {f.shape}")
    return f.astype(np.float64)


def _sqrtm_or_none(m: np.ndarray) -> np.ndarray | None:
    """``sqrtm(m)``, or None when scipy finds ``m`` singular/ill-conditioned or the result is
    not finite."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
        try:
            root = scipy.linalg.sqrtm(m)
        except scipy.linalg.LinAlgWarning:
            return None
    return root if np.isfinite(root).all() else None


def fid(feats_a: np.ndarray | Tensor, feats_b: np.ndarray | Tensor) -> float:
    r"""Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017):

    .. math:: \|\mu_a - \mu_b\|^2 + \mathrm{tr}\left(\Sigma_a + \Sigma_b
              - 2(\Sigma_a\Sigma_b)^{1/2}\right)

    Feed it ``extract_features`` of rnnlab's own ``DomainClassifier``, not Inception: the value
    is not comparable with papers' FIDs. The matrix square root comes from
    ``scipy.linalg.sqrtm``; a singular or ill-conditioned product is regularised with ``1e-6 I``
    (as pytorch-fid does) and tiny imaginary parts from round-off are discarded (large ones raise).
    """
    a, b = _feats(feats_a, "feats_a"), _feats(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"`feats_b` must have {a.shape[1]} columns like `feats_a`; got {b.shape[1]}"
        )
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    covmean = _sqrtm_or_none(cov_a @ cov_b)
    if covmean is None:  # singular (e.g. dead ReLU features): regularise and accept round-off
        eye = np.eye(len(cov_a)) * 1e-6
        cov_a, cov_b = cov_a + eye, cov_b + eye  # the trace terms use the same covariances
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            covmean = scipy.linalg.sqrtm(cov_a @ cov_b)
    if np.iscomplexobj(covmean):
        imag = np.abs(covmean.imag).max()
        if imag > 1e-3 * max(1.0, np.abs(covmean.real).max()):
            raise ValueError(f"sqrtm of the covariance product has a large imaginary part {imag:g}")
        covmean = covmean.real
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))


def kid(
    feats_a: np.ndarray | Tensor,
    feats_b: np.ndarray | Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    r"""Kernel Inception Distance (Bińkowski et al. 2018) on rnnlab domain-classifier features
    (not Inception; not comparable with papers). For each of ``subsets`` random subsets of
    ``m = min(subset_size, N_a, N_b)`` rows from each set, the unbiased MMD² estimate

    .. math:: \frac{1}{m(m-1)}\sum_{i \ne j}[k(a_i,a_j) + k(b_i,b_j)]
              - \frac{2}{m^2}\sum_{i,j} k(a_i, b_j),\quad k(x,y) = (x^\top y/d + 1)^3 .

    Returns ``(mean, std)`` over the subsets. Unbiased: can be slightly negative, and its mean
    is about 0 for two samples of one distribution.
    """
    a, b = _feats(feats_a, "feats_a"), _feats(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"`feats_b` must have {a.shape[1]} columns like `feats_a`; got {b.shape[1]}"
        )
    if subsets < 1:
        raise ValueError(f"`subsets` must be >= 1; got {subsets}")
    d = a.shape[1]
    m = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    vals = np.empty(subsets)
    for s in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((p @ q.T / d + 1.0) ** 3 for p, q in ((x, x), (y, y), (x, y)))
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        vals[s] = within - 2.0 * kxy.mean()
    return float(vals.mean()), float(vals.std())


@torch.no_grad()
def mode_coverage(
    classifier: nn.Module, samples: Tensor, n_classes: int, batch_size: int = 512
) -> dict[str, object]:
    r"""Classify ``samples`` (argmax of ``classifier``'s logits) and summarise the histogram
    ``p`` over ``n_classes``: ``classes_covered`` (classes with at least one sample),
    ``kl_to_uniform`` :math:`= \sum_c p_c \log(p_c\,n)` in nats (0 = all modes equally
    covered; :math:`\log n` = total collapse onto one class) and ``histogram`` (counts)."""
    if n_classes < 1:
        raise ValueError(f"`n_classes` must be >= 1; got {n_classes}")
    preds = torch.cat(
        [
            classifier(samples[i : i + batch_size]).argmax(1).cpu()
            for i in range(0, len(samples), batch_size)
        ]
    )
    hist = torch.bincount(preds, minlength=n_classes).numpy()
    if len(hist) > n_classes:
        raise ValueError(f"`classifier` predicted class {len(hist) - 1} >= n_classes={n_classes}")
    p = hist / hist.sum()
    nz = p > 0
    kl = float((p[nz] * np.log(p[nz] * n_classes)).sum())
    return {"classes_covered": int(nz.sum()), "kl_to_uniform": kl, "histogram": hist}


def _nn_dist(q: Tensor, ref: Tensor, batch_size: int) -> Tensor:
    q, ref = q.reshape(len(q), -1).double(), ref.reshape(len(ref), -1).double()
    return torch.cat(
        [
            torch.cdist(q[i : i + batch_size], ref).min(1).values
            for i in range(0, len(q), batch_size)
        ]
    )


def _stats(d: Tensor) -> dict[str, float]:
    return {
        "mean": d.mean().item(),
        "median": d.median().item(),
        "min": d.min().item(),
        "p05": torch.quantile(d, 0.05).item(),
    }


@torch.no_grad()
def memorisation_check(
    samples: Tensor, train: Tensor, test: Tensor, batch_size: int = 256
) -> dict[str, object]:
    """Euclidean (pixel-space) distance from each sample, and from each test image, to its
    nearest training image. Returns ``{"samples_to_train": stats, "test_to_train": stats,
    "median_ratio"}`` (stats: mean, median, min, p05). A ``median_ratio`` well below 1 means
    samples sit closer to training images than unseen real images do: likely copying."""
    if samples[0].numel() != train[0].numel() or test[0].numel() != train[0].numel():
        raise ValueError(
            f"`samples`, `train`, `test` must hold images of one size; got "
            f"{tuple(samples.shape)}, {tuple(train.shape)}, {tuple(test.shape)}"
        )
    s = _nn_dist(samples, train, batch_size)
    t = _nn_dist(test, train, batch_size)
    out = {"samples_to_train": _stats(s), "test_to_train": _stats(t)}
    out["median_ratio"] = out["samples_to_train"]["median"] / max(
        out["test_to_train"]["median"], 1e-12
    )
    return out
