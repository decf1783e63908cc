"""Keras -> rnnlab: from_keras on live layers and load_keras on .keras / .h5 files saved by
Keras 3 (torch backend), compared output for output; bad files and layers."""

import zipfile

import numpy as np
import pytest
import torch

from rnnlab.layers import Sequential, from_keras, load_keras, summary

keras = pytest.importorskip("keras")
pytest.importorskip("h5py")

B, T, I = 4, 7, 5


def randomise(model_or_layer, seed=0):
    """Non-trivial weights everywhere (biases included), so placement is tested."""
    rng = np.random.default_rng(seed)
    model_or_layer.set_weights(
        [rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in model_or_layer.get_weights()]
    )


def keras_out(model, x, **kw):
    return keras.ops.convert_to_numpy(model(x, **kw))


LAYERS = {
    "simple_rnn": lambda: keras.layers.SimpleRNN(6, return_sequences=True),
    "lstm": lambda: keras.layers.LSTM(6, return_sequences=True),
    "gru_reset_after": lambda: keras.layers.GRU(6, return_sequences=True),
    "gru_textbook": lambda: keras.layers.GRU(6, reset_after=False, return_sequences=True),
    "lstm_backwards": lambda: keras.layers.LSTM(6, go_backwards=True, return_sequences=True),
    "gru_last": lambda: keras.layers.GRU(6, activation="relu", recurrent_activation="hard_sigmoid"),
    "bidirectional": lambda: keras.layers.Bidirectional(
        keras.layers.LSTM(6, return_sequences=True)
    ),
    "bidirectional_sum": lambda: keras.layers.Bidirectional(keras.layers.GRU(6), merge_mode="sum"),
    "dense": lambda: keras.layers.Dense(3, activation="tanh"),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_from_keras_layer_matches(name):
    layer = LAYERS[name]()
    x = np.random.default_rng(1).standard_normal((B, T, I)).astype("float32")
    layer(x)
    randomise(layer)
    ours = from_keras(layer)
    mask = np.random.default_rng(2).random((B, T)) < 0.7
    mask[0] = False
    got = ours(torch.from_numpy(x))
    np.testing.assert_allclose(got.detach().numpy(), keras_out(layer, x), atol=1e-5, rtol=1e-5)
    if name != "dense":  # Keras's mask semantics, flags copied from the layer
        got = ours(torch.from_numpy(x), mask=torch.from_numpy(mask))
        want = keras_out(layer, x, mask=mask)
        np.testing.assert_allclose(got.detach().numpy(), want, atol=1e-5, rtol=1e-5)


def chapter_model():
    """Listing 5.2's shape (SimpleRNN -> Dense -> softmax) after an Embedding, with the
    other recurrent layers the chapter uses stacked in between."""
    return keras.Sequential([
        keras.Input((T,), dtype="int32"),
        keras.layers.Embedding(20, I, mask_zero=True),
        keras.layers.SimpleRNN(6, return_sequences=True),
        keras.layers.LSTM(5, return_sequences=True),
        keras.layers.Bidirectional(keras.layers.GRU(3, reset_after=False, return_sequences=True)),
        keras.layers.GRU(4, dropout=0.2),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(8),
        keras.layers.Dense(3),
        keras.layers.Activation("softmax"),
    ])  # fmt: skip


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_load_keras_file_matches_keras_and_summary(tmp_path, suffix):
    model = chapter_model()
    randomise(model, 3)
    path = tmp_path / f"model{suffix}"
    model.save(path)
    ours = load_keras(path)
    assert isinstance(ours, Sequential) and not ours.training
    ids = np.random.default_rng(4).integers(1, 20, (B, T))
    ids[1, 4:] = 0  # padding: masked through the recurrent layers
    ids[2] = 0  # an empty row
    want = keras_out(model, ids)
    got = ours(torch.from_numpy(ids)).detach().numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    text = summary(ours, (T,), dtype=torch.long, print_fn=None)
    assert f"Total params: {model.count_params():,}" in text
    assert "embedding (Embedding)        (None, 7, 5)              100" in text
    assert "bidirectional (Bidirectional)" in text


def test_listing_5_1_saved_by_keras_loads_with_the_same_summary(tmp_path):
    model = keras.Sequential([keras.Input((30, 12)), keras.layers.SimpleRNN(512, dropout=0.2),
                              keras.layers.Dense(5, activation="softmax")])  # fmt: skip
    model.save(tmp_path / "listing_5_1.keras")
    ours = load_keras(tmp_path / "listing_5_1.keras")
    text = summary(ours, (30, 12), print_fn=None)
    assert "simple_rnn (SimpleRNN)       (None, 512)               268800" in text
    assert "Total params: 271,365" in text
    x = np.random.default_rng(0).standard_normal((2, 30, 12)).astype("float32")
    np.testing.assert_allclose(ours(torch.from_numpy(x)).detach().numpy(), keras_out(model, x),
                               atol=1e-5, rtol=1e-5)  # fmt: skip


def test_bad_files_and_layers(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"Keras model file \(.keras zip or .h5 HDF5\)"):
        load_keras(text)
    other_zip = tmp_path / "data.zip"
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("a.txt", "x")
    with pytest.raises(ValueError, match="without config.json"):
        load_keras(other_zip)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_keras(tmp_path / "missing.keras")
    conv = keras.Sequential([keras.Input((8, 2)), keras.layers.Conv1D(3, 2)])
    conv.save(tmp_path / "conv.keras")
    with pytest.raises(ValueError, match=r"'conv1d' \(Conv1D\) is not supported"):
        load_keras(tmp_path / "conv.keras")
    inputs = keras.Input((4,))
    functional = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    functional.save(tmp_path / "functional.keras")
    with pytest.raises(ValueError, match="rebuilds Sequential models"):
        load_keras(tmp_path / "functional.keras")
    with pytest.raises(ValueError, match=r"\(Conv1D\) is not supported"):
        from_keras(conv.layers[0])


def test_missing_h5py_is_a_one_line_hint(tmp_path, monkeypatch):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.save(tmp_path / "m.keras")
    monkeypatch.setitem(__import__("sys").modules, "h5py", None)
    with pytest.raises(ModuleNotFoundError, match=r"needs h5py: pip install 'rnnlab\[keras\]'"):
        load_keras(tmp_path / "m.keras")


def test_from_keras_refuses_an_unbuilt_layer():
    with pytest.raises(ValueError, match="is not built"):
        from_keras(keras.layers.LSTM(3))
