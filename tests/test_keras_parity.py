"""rnnlab layers == Keras 3 (torch backend) with copied weights: outputs, final states and
parameter counts; summary() totals == Keras count_params() for the chapter's listings."""

import numpy as np
import pytest
import torch

keras = pytest.importorskip("keras")

from rnnlab.layers import (  # noqa: E402
    GRU,
    LSTM,
    Activation,
    Bidirectional,
    Dense,
    Sequential,
    SimpleRNN,
    summary,
)

B, T, I, H = 3, 5, 4, 6


def to_keras_order(w: np.ndarray, kind: str) -> np.ndarray:
    """torch-order rows (G*H, ·) -> Keras columns (·, G*H): GRU r,z,n -> z,r,h."""
    if kind == "gru":
        r, z, n = np.split(w, 3, axis=0)
        w = np.concatenate([z, r, n], axis=0)
    return w.T if w.ndim == 2 else w


def keras_weights(layer, kind):
    cell = layer.cell
    ws = [
        to_keras_order(cell.weight_ih.detach().numpy(), kind),
        to_keras_order(cell.weight_hh.detach().numpy(), kind),
    ]
    if kind == "gru" and cell.reset_after:
        b = [
            to_keras_order(cell.bias_ih.detach().numpy(), kind),
            to_keras_order(cell.bias_hh.detach().numpy(), kind),
        ]
        ws.append(np.stack(b))
    else:
        ws.append(to_keras_order(cell.bias.detach().numpy(), kind))
    return ws


def build_pair(kind, reset_after=True, **flags):
    torch.manual_seed(0)
    if kind == "rnn":
        ours, ref = SimpleRNN(I, H, **flags), keras.layers.SimpleRNN(H, **flags)
    elif kind == "lstm":
        ours, ref = LSTM(I, H, **flags), keras.layers.LSTM(H, **flags)
    else:
        ours = GRU(I, H, reset_after=reset_after, **flags)
        ref = keras.layers.GRU(H, reset_after=reset_after, **flags)
    with torch.no_grad():  # non-trivial biases so bias placement is tested too
        for p in ours.parameters():
            if p.dim() == 1:
                p.uniform_(-0.5, 0.5)
    return ours, ref


CASES = [("rnn", True), ("lstm", True), ("gru", True), ("gru", False)]
IDS = ["simple_rnn", "lstm", "gru_reset_after", "gru_textbook"]


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize(("kind", "reset_after"), CASES, ids=IDS)
def test_layer_matches_keras(kind, reset_after, go_backwards):
    flags = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    ours, ref = build_pair(kind, reset_after, **flags)
    x = np.random.default_rng(0).standard_normal((B, T, I)).astype("float32")
    ref(x)  # build
    ref.set_weights(keras_weights(ours, kind))
    assert ref.count_params() == sum(p.numel() for p in ours.parameters())
    got = ours(torch.from_numpy(x))
    want = [keras.ops.convert_to_numpy(t) for t in ref(x)]
    np.testing.assert_allclose(got[0].detach().numpy(), want[0], atol=1e-5, rtol=1e-5)
    states = [got[1]] if kind != "lstm" else [got[1].h, got[1].c]
    for s, w in zip(states, want[1:], strict=True):
        np.testing.assert_allclose(s.detach().numpy(), w, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("kind", "reset_after"), CASES, ids=IDS)
def test_bidirectional_matches_keras(kind, reset_after):
    ours_f, ref_f = build_pair(kind, reset_after, return_sequences=True)
    ours = Bidirectional(ours_f)
    ref = keras.layers.Bidirectional(ref_f)
    x = np.random.default_rng(1).standard_normal((B, T, I)).astype("float32")
    ref(x)
    ref.set_weights(
        keras_weights(ours.forward_layer, kind) + keras_weights(ours.backward_layer, kind)
    )
    want = keras.ops.convert_to_numpy(ref(x))
    got = ours(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def keras_listing(units, timesteps, input_dim, n_classes, separate_softmax):
    model = keras.Sequential([keras.Input((timesteps, input_dim)), keras.layers.SimpleRNN(units)])
    if separate_softmax:
        model.add(keras.layers.Dense(n_classes))
        model.add(keras.layers.Activation("softmax"))
    else:
        model.add(keras.layers.Dense(n_classes, activation="softmax"))
    return model


def test_listing_5_1_summary():
    model = Sequential(SimpleRNN(12, 512, dropout=0.2), Dense(512, 5, activation="softmax"))
    text = summary(model, (30, 12), print_fn=None)
    assert "simple_rnn (SimpleRNN)       (None, 512)               268800" in text
    assert "dense (Dense)                (None, 5)                 2565" in text
    assert "Total params: 271,365" in text and "Non-trainable params: 0" in text
    assert keras_listing(512, 30, 12, 5, False).count_params() == 271_365


def test_listing_5_2_summary():
    model = Sequential(SimpleRNN(28, 256, dropout=0.3), Dense(256, 10), Activation("softmax"))
    text = summary(model, (28, 28), print_fn=None)
    for expected in (
        "72960",
        "2570",
        "activation (Activation)      (None, 10)                0",
        "Total params: 75,530",
        "Trainable params: 75,530",
    ):
        assert expected in text
    assert keras_listing(256, 28, 28, 10, True).count_params() == 75_530


def test_summary_counts_match_keras_for_each_layer_kind():
    for ours, ref in [
        (LSTM(28, 128), keras.layers.LSTM(128)),
        (GRU(28, 128), keras.layers.GRU(128)),
        (GRU(28, 128, reset_after=False), keras.layers.GRU(128, reset_after=False)),
        (Bidirectional(LSTM(28, 64)), keras.layers.Bidirectional(keras.layers.LSTM(64))),
    ]:
        km = keras.Sequential([keras.Input((10, 28)), ref])
        text = summary(Sequential(ours), (10, 28), print_fn=None)
        assert f"Total params: {km.count_params():,}" in text


def test_summary_depth_lists_nested_layers_and_says_which_path_runs():
    from rnnlab.layers import stacked

    model = Sequential(stacked("lstm", 4, 8, 2, bidirectional=True, recurrent_dropout=0.1),
                       Dense(16, 3))  # fmt: skip
    flat = summary(model, (5, 4), print_fn=None)
    assert "└" not in flat and "stacked (Stacked)            (None, 16)                2432" in flat
    assert "stacked/0/forward_layer (LSTM): fused (training: explicit)" in flat
    deep = summary(model, (5, 4), depth=3, print_fn=None)
    assert "  └ bidirectional (Bidirectional) --                        832" in deep
    assert "    └ lstm_3 (LSTM)          --                        800" in deep
    assert "Total params: 2,483" in deep
    gru = summary(Sequential(GRU(4, 8, reset_after=False)), (5, 4), print_fn=None)
    assert "gru (GRU): explicit" in gru  # torch has no kernel for the textbook GRU
    with pytest.raises(ValueError, match="`depth`"):
        summary(model, (5, 4), depth=0)
