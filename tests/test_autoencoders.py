"""Autoencoder family: shapes, loss parts, training moves every parameter, penalties."""

import pytest
import torch

from rnnlab.losses import contractive_penalty_sigmoid, jacobian_frobenius_sq, kl_sparsity
from rnnlab.models.autoencoders import (
    Autoencoder,
    ContractiveAutoencoder,
    ConvAutoencoder,
    DeepAutoencoder,
    DenoisingAutoencoder,
    LinearAutoencoder,
    LSTMAutoencoder,
    SparseAutoencoder,
    StackedAutoencoder,
    train_autoencoder,
)

D = 12


def flat_models():
    return {
        "plain": (Autoencoder(D, 5), ["reconstruction"]),
        "plain_bce": (Autoencoder(D, 5, reconstruction="bce"), ["reconstruction"]),
        "deep": (DeepAutoencoder([D, 8, 3]), ["reconstruction"]),
        "stacked": (StackedAutoencoder([D, 8, 3]), ["reconstruction"]),
        "denoise_gauss": (DenoisingAutoencoder(D, 5, noise_level=0.2), ["reconstruction"]),
        "denoise_mask": (
            DenoisingAutoencoder(D, 5, noise="masking", noise_level=0.3),
            ["reconstruction"],
        ),
        "contractive": (ContractiveAutoencoder(D, 5), ["reconstruction", "contractive"]),
        "contractive_tanh": (
            ContractiveAutoencoder(D, 5, activation="tanh"),
            ["reconstruction", "contractive"],
        ),
        "sparse_kl": (SparseAutoencoder(D, 5), ["reconstruction", "sparsity"]),
        "sparse_l1": (SparseAutoencoder(D, 5, sparsity="l1"), ["reconstruction", "sparsity"]),
        "linear": (LinearAutoencoder(D, 3), ["reconstruction"]),
        "linear_wd": (
            LinearAutoencoder(D, 3, weight_decay=0.1),
            ["reconstruction", "weight_decay"],
        ),
    }


@pytest.mark.parametrize("name", list(flat_models()))
def test_flat_shapes_parts_and_one_step_moves_all_params(name):
    model, part_names = flat_models()[name]
    x = torch.rand(16, D)
    z = model.encode(x)
    assert z.shape[0] == 16 and z.dim() == 2
    assert model.decode(z).shape == x.shape and model(x).shape == x.shape
    total, parts = model.loss(x)
    assert sorted(parts) == sorted(part_names)
    torch.testing.assert_close(total, sum(parts.values()))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    opt.zero_grad()
    total.backward()
    opt.step()
    for n, p in model.named_parameters():
        assert not torch.equal(before[n], p.detach()), f"{name}: {n} did not move"


def test_chapter_defaults_are_100_50_100():
    model = Autoencoder()
    assert model.encode(torch.rand(2, 100)).shape == (2, 50)
    assert model(torch.rand(2, 100)).shape == (2, 100)


def test_bce_output_in_unit_interval_and_bad_args():
    model = Autoencoder(D, 4, reconstruction="bce")
    out = model(torch.rand(3, D))
    assert (out > 0).all() and (out < 1).all()
    with pytest.raises(ValueError, match="reconstruction"):
        Autoencoder(D, 4, reconstruction="l1")
    with pytest.raises(ValueError, match="output_activation"):
        Autoencoder(D, 4, reconstruction="bce", output_activation="tanh")
    with pytest.raises(ValueError, match="`x` must be"):
        Autoencoder(D, 4).encode(torch.rand(3, D + 1))
    with pytest.raises(ValueError, match="noise"):
        DenoisingAutoencoder(D, 4, noise="salt")


def test_denoising_noise_only_in_training():
    for noise in ("gaussian", "masking"):
        model = DenoisingAutoencoder(D, 4, noise=noise, noise_level=0.5)
        x = torch.rand(8, D)
        model.train()
        assert not torch.equal(model(x), model(x))
        model.eval()
        torch.testing.assert_close(model(x), model.decode(model.encode(x)), rtol=0, atol=0)
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


def test_contractive_closed_form_equals_autograd_float64():
    model = ContractiveAutoencoder(D, 6).double()
    x = torch.rand(10, D, dtype=torch.float64)
    h = model.encode(x)
    closed = contractive_penalty_sigmoid(h, model.encoder_layers[0].weight)
    auto = jacobian_frobenius_sq(model.encode, x)
    torch.testing.assert_close(closed, auto, rtol=0, atol=1e-6)
    jac = torch.autograd.functional.jacobian(lambda v: model.encode(v[None])[0], x[0])
    torch.testing.assert_close(
        contractive_penalty_sigmoid(h[:1], model.encoder_layers[0].weight), jac.pow(2).sum()
    )


def test_kl_sparsity_formula():
    codes = torch.tensor([[0.1, 0.5], [0.3, 0.7]], dtype=torch.float64)
    rho = 0.2
    rho_hat = torch.tensor([0.2, 0.6], dtype=torch.float64)
    expected = (
        rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
    ).sum()
    torch.testing.assert_close(kl_sparsity(codes, rho), expected)
    assert kl_sparsity(torch.full((4, 3), rho), rho).abs() < 1e-12
    with pytest.raises(ValueError, match="rho"):
        kl_sparsity(codes, 1.0)


def test_conv_autoencoder_shapes_odd_sizes_and_params_move():
    for hw in [(28, 28), (13, 9)]:
        model = ConvAutoencoder(hw, latent_size=4, channels=(3, 5))
        x = torch.rand(2, 1, *hw)
        assert model.encode(x).shape == (2, 4) and model(x).shape == x.shape
    total, parts = model.loss(x)
    assert list(parts) == ["reconstruction"]
    total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_stacked_pretraining_lowers_each_layer_loss():
    model = StackedAutoencoder([D, 6, 3])
    x = torch.rand(64, D)
    hist = model.pretrain(x, epochs=15, batch_size=16, lr=1e-2, finetune_epochs=2)
    assert len(hist["layers"]) == 2 and len(hist["finetune"]) == 2
    for losses in hist["layers"]:
        assert losses[-1] < losses[0]


def test_train_autoencoder_reduces_loss():
    hist = train_autoencoder(Autoencoder(D, 4), torch.rand(64, D), 20, 16, 1e-2)
    assert hist[-1] < hist[0]


def test_lstm_autoencoder_padded_equals_unpadded_and_zero_past_length():
    model = LSTMAutoencoder(input_size=3, hidden_size=5, latent_size=2).double()
    lengths = torch.tensor([6, 2, 4])
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    x[1, 2:] = 7.0  # garbage padding must not matter
    x[2, 4:] = -7.0
    out = model(x, lengths)
    assert out.shape == x.shape
    assert (out[1, 2:] == 0).all() and (out[2, 4:] == 0).all()
    scores = model.per_example_error(x, lengths)
    for i, n in enumerate(lengths.tolist()):
        xi = x[i : i + 1, :n]
        torch.testing.assert_close(model.encode(x, lengths)[i], model.encode(xi)[0])
        torch.testing.assert_close(out[i, :n], model(xi)[0])
        torch.testing.assert_close(scores[i], model.per_example_error(xi)[0])
    total, parts = model.loss(x, lengths)
    assert list(parts) == ["reconstruction"]
    valid = torch.arange(6)[None, :] < lengths[:, None]
    expected = (out - x).pow(2)[valid].mean()
    torch.testing.assert_close(total, expected)
    total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_bad_input_latent_larger_than_input():
    for make in (
        lambda: Autoencoder(D, D + 1),
        lambda: DeepAutoencoder([D, 20, D + 4]),
        lambda: StackedAutoencoder([D, 8, D + 1]),
        lambda: ConvAutoencoder((4, 4), latent_size=17, channels=(2,)),
        lambda: LinearAutoencoder(D, D + 1),
    ):
        with pytest.raises(ValueError, match="latent.*larger than the input|latent_size"):
            make()
    # the regularised kinds may be overcomplete (Vincent et al. 2010, Rifai et al. 2011)
    for model in (
        DenoisingAutoencoder(D, 2 * D),
        SparseAutoencoder(D, 2 * D),
        ContractiveAutoencoder(D, 2 * D),
    ):
        assert model(torch.rand(2, D)).shape == (2, D)
    assert Autoencoder(D, D)(torch.rand(2, D)).shape == (2, D)  # equal size is allowed


@pytest.mark.parametrize(
    ("noise", "level"), [("gaussian", -0.1), ("gaussian", 1.5), ("masking", 1.0), ("masking", -1)]
)
def test_bad_input_noise_level_outside_unit_interval(noise, level):
    with pytest.raises(ValueError, match=r"noise_level.*\[0, 1\]"):
        DenoisingAutoencoder(D, 4, noise=noise, noise_level=level)


def test_bad_input_sequence_autoencoder_given_images_or_bad_lengths():
    model = LSTMAutoencoder(input_size=6, hidden_size=4, latent_size=2)
    images = torch.rand(3, 1, 5, 6)
    with pytest.raises(ValueError, match="not images.*rows"):
        model(images)
    assert model(images[:, 0]).shape == (3, 5, 6)  # rows as steps
    with pytest.raises(ValueError, match=r"\(B, T, 6\)"):
        model(torch.rand(3, 5))
    with pytest.raises(ValueError, match="lengths"):
        model(images[:, 0], torch.tensor([5, 6, 1]))  # longer than T
    with pytest.raises(ValueError, match="lengths"):
        model.loss(images[:, 0], torch.tensor([5, 5]))  # one length per sequence
