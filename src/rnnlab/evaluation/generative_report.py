"""Score a trained generative model (a run folder or a model) on its dataset's test split.

``evaluate_generator`` draws ``n`` samples (10,000 by default, as Lucic et al. 2018 do) and
reports, from :mod:`rnnlab.evaluation.generative`: FID and KID against the test images, mode
coverage and a memorisation check; for a VAE also the test NLL in nats from the IWAE bound
(Burda et al. 2016) on *dynamically binarized* test images (pixels drawn once as Bernoulli of
their grey level, seeded), the protocol of the NLL numbers published for binarized MNIST.

FID/KID are computed on the penultimate features of rnnlab's own ``DomainClassifier``, NOT on
Inception-v3: they are **not comparable with papers' FIDs**, only with each other when scored by
the same classifier. That classifier is trained once per (dataset, training split, seed) and
cached under ``~/.cache/rnnlab/domain-classifiers/`` as safetensors plus a JSON file holding its
test accuracy and the FID of the training images against the test images (the floor a perfect
generator of *training-like* images would reach).

``generate`` (shared with ``rnnlab sample``) returns images in [0, 1] for every family that
supports generation: the family, named by the run's config (``model.family``), is asked for its
``generate`` in the registry (:mod:`rnnlab.training.families`); nothing is guessed from the
model's class or methods.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from rnnlab.utils import atomic_write, atomic_write_text

from .generative import (
    DomainClassifier,
    extract_features,
    fid,
    kid,
    memorisation_check,
    mode_coverage,
    train_domain_classifier,
)

__all__ = ["domain_classifier", "evaluate_generator", "generate", "generating_family"]

CACHE = Path.home() / ".cache" / "rnnlab" / "domain-classifiers"


def generating_family(name: str):
    """The registry's entry of family ``name`` (a run's ``model.family``), which must support
    generation (``vae``, ``gan``, ``vaegan``, ...); :class:`ValueError` naming those otherwise."""
    from rnnlab.training import families

    family = families.get(name)
    if "generation" not in family.supports or family.generate is None:
        takes = [f.name for f in families.registry().values() if "generation" in f.supports]
        raise ValueError(f"`family` must be one that generates ({', '.join(takes)}); got {name!r}")
    return family


@torch.no_grad()
def generate(
    model: nn.Module,
    n: int,
    *,
    family: str,
    labels: Tensor | None = None,
    seed: int = 0,
    batch_size: int = 500,
) -> Tensor:
    """``n`` samples in [0, 1], shape (n, C, H, W), in eval mode, from a local generator seeded
    with ``seed`` (torch's global generator is left alone), by the ``generate`` of ``family``
    (the run's ``model.family``; :func:`generating_family`). VAE: decoded means of prior
    draws; GAN and VAE-GAN: ``(G(z) + 1) / 2``. ``labels`` (n,) conditions a cGAN; a cGAN
    without them gets ``arange(n) % n_classes`` (equal counts of every class)."""
    decode = generating_family(family).generate  # (model, z, labels) -> images in [0, 1]
    if n < 1:
        raise ValueError(f"`n` must be >= 1; got {n}")
    n_classes = getattr(model, "n_classes", 0)
    if labels is not None and not n_classes:
        raise ValueError("`labels` given for an unconditional model")
    if n_classes and labels is None:
        labels = torch.arange(n) % n_classes
    if labels is not None and (labels.shape != (n,) or int(labels.max()) >= n_classes):
        raise ValueError(f"`labels` must be ({n},) ids below {n_classes}; got {labels}")
    rng = torch.Generator().manual_seed(seed)
    p = next(model.parameters())
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        out = []
        noise = torch.randn(n, model.latent_dim, generator=rng)  # one draw for any batch_size
        for i in range(0, n, batch_size):
            m = min(batch_size, n - i)
            z = noise[i : i + m].to(p.device, p.dtype)
            lab = None if labels is None else labels[i : i + m].to(p.device)
            out.append(decode(model, z, lab).float().cpu().clamp(0, 1))
    finally:
        for mod, mode in modes:
            mod.training = mode
    x = torch.cat(out)
    return x if x.dim() == 4 else x.reshape(n, 1, *x.shape[1:])


def _nchw(images: Tensor) -> Tensor:
    images = images.float()
    return images[:, None] if images.dim() == 3 else images


def domain_classifier(
    key: str,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    *,
    epochs: int = 5,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    log=print,
) -> tuple[DomainClassifier, dict]:
    """The ``DomainClassifier`` for images ``train = (x, y)`` in [0, 1], trained once and then
    read from ``cache_dir/<key>-n<N>-seed<seed>-e<epochs>.safetensors``. Returns it (eval
    mode) and its info: ``test_accuracy``, ``fid_train_test`` (real-vs-real FID, up to 10k
    images of each split), ``n_train``, ``epochs``, ``seed``, ``train_seconds``."""
    from safetensors.torch import load_file, save_file

    (x, y), (xt, yt) = (_nchw(train[0]), train[1]), (_nchw(test[0]), test[1])
    n_classes = int(max(y.max(), yt.max())) + 1
    cache = Path(cache_dir) if cache_dir is not None else CACHE
    stem = cache / f"{key}-n{len(x)}-seed{seed}-e{epochs}"
    weights, meta_file = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    model = DomainClassifier(n_classes, x.shape[1], x.shape[2])
    if weights.is_file() and meta_file.is_file():
        try:
            model.load_state_dict(load_file(str(weights)))
            info = json.loads(meta_file.read_text())
            if not isinstance(info, dict):
                raise ValueError(f"expected a JSON object, got {type(info).__name__}")
            return model.eval(), info
        except Exception as e:  # truncated, tampered or stale cache: rebuild, saying so
            reason = " ".join(str(e).split())[:200] or type(e).__name__
            log(f"domain classifier {stem.name}: cached copy unreadable ({reason}); rebuilding")
            model = DomainClassifier(n_classes, x.shape[1], x.shape[2])
    t0 = time.perf_counter()
    model = train_domain_classifier(x, y, epochs, n_classes=n_classes, seed=seed)
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        pred = torch.cat([model(xt[i : i + 1000]).argmax(1) for i in range(0, len(xt), 1000)])
    m = min(len(x), len(xt), 10_000)
    info = {
        "key": key, "n_train": len(x), "epochs": epochs, "seed": seed,
        "test_accuracy": (pred == yt).float().mean().item(),
        "fid_train_test": fid(extract_features(model, x[:m]), extract_features(model, xt[:m])),
        "train_seconds": seconds,
    }  # fmt: skip
    with atomic_write(weights, mode=None) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    atomic_write_text(meta_file, json.dumps(info, indent=1) + "\n")
    log(f"domain classifier {stem.name}: test accuracy {info['test_accuracy']:.4f}")
    return model, info


def binarized_test_nll(model: nn.Module, x: Tensor, k: int, seed: int = 0, batch: int = 100,
                       *, progress: bool = False):  # fmt: skip
    """Mean IWAE bound (``k`` samples) on -log p(x) in nats over ``x`` in [0, 1], binarized
    once as ``Bernoulli(x)`` with a generator seeded by ``seed`` (dynamic binarization):
    :func:`rnnlab.models.vae.binarized_iw_nll`, the same function ``rnnlab train`` reports
    as ``test_nll_binarized``; ``progress``: a bar over the batches."""
    from rnnlab.models.vae import binarized_iw_nll

    return binarized_iw_nll(model, x, k, seed=seed, batch=batch, progress=progress)


def evaluate_generator(
    run_or_model: str | os.PathLike | nn.Module,
    dataset: str | None = None,
    n: int = 10_000,
    *,
    data: dict[str, tuple[Tensor, Tensor]] | None = None,
    data_dir: str | None = None,
    iw_k: int = 1000,
    memorisation_n: int = 2000,
    classifier_epochs: int = 5,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    log=print,
    progress: bool = False,
    family: str | None = None,
) -> dict:
    """FID, KID, mode coverage, memorisation (and for a VAE the binarized test NLL with
    ``iw_k`` importance samples; 0 skips it) of ``n`` samples of a run folder or model;
    ``progress``: bars over the feature and NLL batches (:func:`rnnlab.utils.progress`).
    ``family`` names a model's family (a run folder's config names its own).

    ``data`` = ``{"train": (x, y), "test": (x, y)}`` images in [0, 1] replaces reading
    ``dataset`` (the run's by default; the run's ``data.limit`` is applied to the training
    split, so MNIST-10k runs are compared with their own training images). A run folder also
    gets the result as ``generative_eval.json``. FID/KID: rnnlab domain-classifier features,
    not Inception; not comparable with published FIDs."""
    run, limit = None, 0
    if isinstance(run_or_model, nn.Module):
        model = run_or_model
        if family is None:
            raise ValueError("`family` is needed to evaluate a model (vae, gan, ...), got None")
    else:
        from rnnlab.training.experiment import load_run

        run = Path(run_or_model)
        with torch.random.fork_rng(devices=[]):  # building the model draws initial weights
            cfg, model = load_run(run)
        family = cfg.model.family
        dataset = dataset or cfg.data.dataset
        data_dir = data_dir or cfg.data.data_dir
        limit = cfg.data.limit
    if data is None:
        from rnnlab.data import load

        if dataset is None:
            raise ValueError("`dataset` is needed to evaluate a model (or pass `data`)")
        sets = {s: load(dataset, s, root=data_dir) for s in ("train", "test")}
        data = {s: (d.images, d.labels) for s, d in sets.items()}
        if limit:
            data["train"] = tuple(t[:limit] for t in data["train"])
    train, test = (
        (_nchw(data["train"][0]), data["train"][1]),
        (_nchw(data["test"][0]), data["test"][1]),
    )
    key = f"{dataset or 'data'}-train"
    clf, info = domain_classifier(key, train, test, epochs=classifier_epochs, seed=seed,
                                  cache_dir=cache_dir, log=log)  # fmt: skip
    likelihood = "likelihood" in generating_family(family).supports
    t0 = time.perf_counter()
    samples = generate(model, n, family=family, seed=seed)
    out: dict = {"family": family, "dataset": dataset, "n_samples": n,
                 "features": "rnnlab DomainClassifier (not Inception; not comparable with papers)",
                 "classifier": info}  # fmt: skip
    fs = extract_features(clf, samples, progress=progress)
    ft = extract_features(clf, test[0][:n], progress=progress)
    out["fid"] = fid(fs, ft)
    out["kid"], out["kid_std"] = kid(fs, ft, seed=seed)
    cov = mode_coverage(clf, samples, int(test[1].max()) + 1)
    out["classes_covered"], out["kl_to_uniform"] = cov["classes_covered"], cov["kl_to_uniform"]
    out["histogram"] = [int(c) for c in cov["histogram"]]
    if getattr(model, "n_classes", 0):  # cGAN: does the classifier see the asked-for class?
        asked = torch.arange(n) % model.n_classes
        with torch.no_grad():
            got = torch.cat([clf(samples[i : i + 1000]).argmax(1) for i in range(0, n, 1000)])
        out["label_accuracy"] = (got == asked).float().mean().item()
    m = min(memorisation_n, n)
    mem = memorisation_check(samples[:m], train[0], test[0][:m])
    out["memorisation"] = mem
    out["memorisation_median_ratio"] = mem["median_ratio"]
    bernoulli = getattr(model, "likelihood", "") == "bernoulli"  # a density on 0/1 is no NLL
    if likelihood and iw_k > 0 and bernoulli:
        t1 = time.perf_counter()
        out["test_nll_binarized"] = binarized_test_nll(model, test[0], iw_k, seed=seed,
                                                       progress=progress)  # fmt: skip
        out["iw_k"], out["nll_seconds"] = iw_k, time.perf_counter() - t1
    out["eval_seconds"] = time.perf_counter() - t0
    if run is not None:
        atomic_write_text(run / "generative_eval.json", json.dumps(_plain(out), indent=1) + "\n")
    return out


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj
