"""Generative evaluation: FID, KID, mode coverage, memorisation, domain classifier, grids."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.image import imread

from rnnlab.evaluation.generative import (
    DomainClassifier,
    extract_features,
    fid,
    kid,
    memorisation_check,
    mode_coverage,
    train_domain_classifier,
)
from rnnlab.evaluation.images import save_image_grid, tile_images


def test_fid_of_a_set_with_itself_is_zero_and_matches_1d_formula():
    f = np.random.default_rng(0).normal(size=(200, 8))
    assert abs(fid(f, f)) < 1e-6
    a = np.random.default_rng(1).normal(1.0, 2.0, size=(500, 1))
    b = np.random.default_rng(2).normal(-1.0, 0.5, size=(400, 1))
    want = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert fid(a, b) == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="feats_b"):
        fid(a, np.zeros((5, 2)))


def test_fid_rises_with_noise_on_random_features():
    clf = DomainClassifier(n_classes=3, image_size=8, width=4, feature_dim=16).eval()
    images = torch.rand(300, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    base = extract_features(clf, images)
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(1))
    scores = [fid(base, extract_features(clf, images + s * noise)) for s in (0, 0.1, 0.3, 0.6, 1.0)]
    assert scores[0] == pytest.approx(0.0, abs=1e-6)
    assert all(a < b for a, b in zip(scores, scores[1:], strict=False))


def test_kid_unbiased_near_zero_on_halves_of_one_set():
    f = np.random.default_rng(0).normal(size=(800, 16))
    mean, std = kid(f[:400], f[400:], subsets=20, subset_size=200)
    shifted, _ = kid(f[:400], f[400:] + 0.5, subsets=20, subset_size=200)
    assert std > 0
    assert abs(mean) < 0.05 * shifted


def test_mode_coverage_on_a_fake_classifier():
    def clf(s):  # "classifies" each sample as the class id stored in it
        return F.one_hot(s[:, 0].long(), 10).float()

    one = mode_coverage(clf, torch.full((50, 1), 3.0), n_classes=10)
    assert one["classes_covered"] == 1
    assert one["kl_to_uniform"] == pytest.approx(np.log(10))
    uniform = mode_coverage(clf, (torch.arange(100) % 10).float()[:, None], 10, batch_size=7)
    assert uniform["classes_covered"] == 10 and uniform["kl_to_uniform"] == pytest.approx(0.0)
    half = mode_coverage(clf, (torch.arange(40) % 5).float()[:, None], 10)
    assert half["classes_covered"] == 5 and half["kl_to_uniform"] == pytest.approx(np.log(2))
    assert half["histogram"].tolist() == [8] * 5 + [0] * 5


def test_memorisation_check_flags_copies():
    gen = torch.Generator().manual_seed(0)
    train, test = torch.rand(100, 1, 4, 4, generator=gen), torch.rand(50, 1, 4, 4, generator=gen)
    copies = memorisation_check(train[:30] + 1e-3, train, test)
    fresh = memorisation_check(torch.rand(30, 1, 4, 4, generator=gen), train, test)
    assert copies["median_ratio"] < 0.05
    assert 0.5 < fresh["median_ratio"] < 2.0
    assert set(copies["samples_to_train"]) == {"mean", "median", "min", "p05"}


def test_domain_classifier_trains_on_a_toy_task():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 2
    x = torch.rand(64, 8, 8, generator=gen) * 0.3
    x[y == 1, :4] += 0.7  # class 1: bright top half
    clf = train_domain_classifier(x, y, epochs=15, batch_size=16, width=4, feature_dim=8)
    acc = (clf(x).argmax(1) == y).float().mean()
    assert acc > 0.95
    assert extract_features(clf, x).shape == (64, 8)


def test_image_grids_written_and_readable(tmp_path):
    imgs = torch.rand(10, 1, 6, 5) * 2 - 1  # tanh range
    p = save_image_grid(imgs, tmp_path / "a" / "grid.png", nrow=4, padding=1)
    arr = imread(p)
    assert arr.shape[:2] == (3 * 7 + 1, 4 * 6 + 1)
    p2 = save_image_grid(imgs[:, 0].numpy(), tmp_path / "b.png", nrow=10, padding=0)
    assert imread(p2).shape[:2] == (6, 50)
    assert sorted(f.name for f in tmp_path.rglob("*") if f.is_file()) == ["b.png", "grid.png"]
    grid = tile_images(torch.zeros(2, 1, 2, 2), nrow=2, padding=0, value_range=(-1, 1))
    np.testing.assert_allclose(grid, 0.5)
    with pytest.raises(ValueError, match="images"):
        save_image_grid(torch.rand(2, 2, 4, 4), tmp_path / "c.png")


@pytest.mark.slow
def test_domain_classifier_on_sklearn_digits_separates_real_from_noise():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target)
    clf = train_domain_classifier(x[:1400], y[:1400], epochs=20)
    assert (clf(x[1400:, None]).argmax(1) == y[1400:]).float().mean() > 0.85
    real_a, real_b = extract_features(clf, x[:700]), extract_features(clf, x[700:1400])
    noise = extract_features(clf, torch.rand(700, 8, 8))
    assert fid(real_a, real_b) < 0.2 * fid(real_a, noise)
