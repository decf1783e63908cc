"""Denoising evaluation: corruption, PSNR, the report and the noisy/denoised/clean grid."""

import math

import pytest
import torch

from rnnlab.evaluation.denoising import (
    corrupt,
    denoise,
    denoising_report,
    psnr,
    save_denoising_grid,
)
from rnnlab.models.autoencoders import DenoisingAutoencoder


def test_psnr_formula_and_identity():
    clean = torch.zeros(3, 4, 4)
    noisy = clean + 0.1  # MSE 0.01 -> 20 dB
    torch.testing.assert_close(psnr(noisy, clean), torch.full((3,), 20.0, dtype=torch.float64))
    torch.testing.assert_close(psnr(noisy * 2, clean, data_range=2.0), psnr(noisy, clean))
    assert math.isinf(psnr(clean, clean)[0])
    with pytest.raises(ValueError, match="same shape|one shape"):
        psnr(noisy[:2], clean)
    with pytest.raises(ValueError, match="data_range"):
        psnr(noisy, clean, data_range=0)


def test_corrupt_is_seeded_and_masks_the_stated_fraction():
    x = torch.rand(200, 50) * 0.5 + 0.25
    masked = corrupt(x, "masking", 0.3, seed=1)
    assert abs((masked == 0).float().mean().item() - 0.3) < 0.01
    assert torch.equal(masked, corrupt(x, "masking", 0.3, seed=1))
    assert not torch.equal(masked, corrupt(x, "masking", 0.3, seed=2))
    g = corrupt(x, "gaussian", 0.3, seed=0)
    assert abs((g - x).std().item() - 0.3) < 0.01
    assert corrupt(x, "gaussian", 0.3, clip=True).min() >= 0
    assert torch.equal(corrupt(x, "gaussian", 0.0), x)


@pytest.mark.parametrize(
    ("noise", "level"), [("gaussian", -0.1), ("gaussian", 1.5), ("masking", 1.0), ("salt", 0.1)]
)
def test_corrupt_rejects_bad_noise(noise, level):
    with pytest.raises(ValueError, match="noise|level"):
        corrupt(torch.rand(2, 3), noise, level)


def test_report_improves_after_training_and_grid(tmp_path):
    torch.manual_seed(0)
    # low-rank "images": a denoiser that projects onto the subspace removes most noise
    basis = torch.rand(3, 64)
    clean = (torch.rand(300, 3) @ basis / 3).clamp(0, 1)
    model = DenoisingAutoencoder(64, 8, noise="gaussian", noise_level=0.2, activation="relu",
                                 output_activation="sigmoid")  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        loss, _ = model.loss(clean)
        opt.zero_grad()
        loss.backward()
        opt.step()
    report = denoising_report(model, clean, "gaussian", 0.2)
    assert report["psnr_denoised"] > report["psnr_noisy"] + 3
    assert report["mse_denoised"] < report["mse_noisy"]
    model.train()
    out = denoise(model, clean[:5])
    assert model.training and out.shape == (5, 64)
    path = save_denoising_grid(corrupt(clean[:4], "gaussian", 0.2), out[:4], clean[:4],
                               tmp_path / "grid.png", image_shape=(8, 8))  # fmt: skip
    from matplotlib.image import imread

    grid = imread(path)
    assert grid.shape[:2] == (3 * 10 + 2, 4 * 10 + 2)  # 3 rows, 4 columns, 2-pixel padding
    with pytest.raises(ValueError, match="share a shape"):
        save_denoising_grid(clean[:3], clean[:4], clean[:4], tmp_path / "bad.png")
