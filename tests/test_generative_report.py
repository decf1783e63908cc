"""evaluate_generator / domain_classifier / generate on tiny synthetic 8x8 data (no real data)."""

import json

import pytest
import torch

from rnnlab.evaluation.generative_report import (
    binarized_test_nll,
    domain_classifier,
    evaluate_generator,
    generate,
)
from rnnlab.models.gans import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from rnnlab.models.vae import VAE
from rnnlab.models.vaegan import VAEGAN
from rnnlab.training.families import GAN


def _data(n: int, seed: int):
    """Two classes of 8x8 images: bright left half or bright right half, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.rand(n, 8, 8, generator=g) * 0.2
    x[y == 0, :, :4] += 0.8
    x[y == 1, :, 4:] += 0.8
    return x.clamp(0, 1), y


@pytest.fixture
def data():
    return {"train": _data(96, 0), "test": _data(64, 1)}


def _models():
    return {
        "vae": VAE(64, 2, (16,), data_shape=(1, 8, 8)),
        "gan": GAN(MLPGenerator(4, (1, 8, 8), (16,)), MLPDiscriminator((1, 8, 8), (16,)), 4, 0),
        "cgan": GAN(
            MLPGenerator(4, (1, 8, 8), (16,), n_classes=2),
            MLPDiscriminator((1, 8, 8), (16,), n_classes=2),
            4,
            2,
        ),
        "dcgan": GAN(DCGANGenerator(4, 1, 8, 4), DCGANDiscriminator(1, 8, 4), 4, 0),
        "vaegan": VAEGAN(3, 1, 8, 4),
    }


FAMILY = {"vae": "vae", "gan": "gan", "cgan": "gan", "dcgan": "gan", "vaegan": "vaegan"}


@pytest.mark.parametrize("name", ["vae", "gan", "cgan", "dcgan", "vaegan"])
def test_generate_shape_range_seed_and_no_side_effects(name):
    model, family = _models()[name].train(), FAMILY[name]
    state = torch.get_rng_state()
    a = generate(model, 7, family=family, seed=5, batch_size=3)
    assert a.shape == (7, 1, 8, 8) and 0 <= a.min() and a.max() <= 1
    torch.testing.assert_close(a, generate(model, 7, family=family, seed=5))
    assert not torch.equal(a, generate(model, 7, family=family, seed=6))
    assert torch.equal(torch.get_rng_state(), state) and model.training


def test_generate_labels():
    model = _models()["cgan"]
    four = generate(model, 4, family="gan", labels=torch.tensor([1, 1, 1, 1]))
    assert four.shape == (4, 1, 8, 8)
    with pytest.raises(ValueError, match="ids below 2"):
        generate(model, 2, family="gan", labels=torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="unconditional"):
        generate(_models()["gan"], 2, family="gan", labels=torch.tensor([0, 1]))


def test_generate_asks_the_registry_for_the_named_family():
    """The family comes from the run's config, never from the model's methods: a VAE named
    as a VAE-GAN is decoded by the VAE-GAN's generate (and fails there), a classifier family
    is refused naming the families that generate."""
    vae = _models()["vae"]
    with pytest.raises(ValueError, match="that generates .*gan.*; got 'classify'"):
        generate(vae, 2, family="classify")
    with pytest.raises(AttributeError, match="generator"):
        generate(vae, 2, family="vaegan")
    with pytest.raises(ValueError, match="`family` is needed"):
        evaluate_generator(vae, "toy", n=4, data={})


def test_domain_classifier_is_trained_once_then_read_from_the_cache(data, tmp_path):
    logs = []
    clf, info = domain_classifier("toy", data["train"], data["test"], epochs=3,
                                  cache_dir=tmp_path, log=logs.append)  # fmt: skip
    assert info["test_accuracy"] > 0.9 and info["n_train"] == 96 and len(logs) == 1
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["toy-n96-seed0-e3.json", "toy-n96-seed0-e3.safetensors"]
    assert json.loads((tmp_path / files[0]).read_text())["test_accuracy"] == info["test_accuracy"]
    again, info2 = domain_classifier("toy", data["train"], data["test"], epochs=3,
                                     cache_dir=tmp_path, log=logs.append)  # fmt: skip
    assert len(logs) == 1 and info2 == info
    x = data["test"][0][:5, None]
    assert torch.equal(clf(x), again(x))


def test_evaluate_generator_reports_every_metric(data, tmp_path):
    torch.manual_seed(0)
    r = evaluate_generator(_models()["vae"], "toy", n=40, data=data, iw_k=4, memorisation_n=10,
                           classifier_epochs=2, cache_dir=tmp_path, log=lambda _: None,
                           family="vae")  # fmt: skip
    assert r["family"] == "vae" and r["n_samples"] == 40 and "not Inception" in r["features"]
    assert r["fid"] > 0 and r["kid_std"] >= 0 and 1 <= r["classes_covered"] <= 2
    assert sum(r["histogram"]) == 40 and r["kl_to_uniform"] >= 0
    assert r["memorisation_median_ratio"] > 0 and r["iw_k"] == 4
    assert 0 < r["test_nll_binarized"] < 64 * 2  # an untrained VAE: about 64 log 2 nats
    g = evaluate_generator(_models()["gan"], "toy", n=40, data=data, cache_dir=tmp_path,
                           classifier_epochs=2, log=lambda _: None, family="gan")  # fmt: skip
    assert g["family"] == "gan" and "test_nll_binarized" not in g and "label_accuracy" not in g
    c = evaluate_generator(_models()["cgan"], "toy", n=40, data=data, cache_dir=tmp_path,
                           classifier_epochs=2, log=lambda _: None, family="gan")  # fmt: skip
    assert 0 <= c["label_accuracy"] <= 1


def test_real_images_score_better_than_noise(data, tmp_path):
    """A 'generator' that replays held-out real images beats one that emits noise."""
    clf, _ = domain_classifier("toy", data["train"], data["test"], epochs=3, cache_dir=tmp_path)
    from rnnlab.evaluation.generative import extract_features, fid

    real = extract_features(clf, _data(64, 2)[0][:, None])
    noise = extract_features(clf, torch.rand(64, 1, 8, 8))
    test = extract_features(clf, data["test"][0][:, None])
    assert fid(real, test) < fid(noise, test)


def test_binarized_nll_is_seeded_and_k_tightens(data):
    vae = _models()["vae"]
    x = data["test"][0][:16, None]
    a, b = binarized_test_nll(vae, x, 8, seed=1), binarized_test_nll(vae, x, 8, seed=1)
    assert a == b
    assert binarized_test_nll(vae, x, 64, seed=1) <= binarized_test_nll(vae, x, 1, seed=1) + 1.0
