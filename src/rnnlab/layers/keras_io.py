"""The way in from Keras 3: :func:`from_keras` (a live Keras layer) and :func:`load_keras`
(a ``model.keras`` or legacy ``model.h5`` file of a ``Sequential`` model).

Nothing is unpickled and no Keras code runs: a ``.keras`` file is a zip whose
``config.json`` (JSON) describes the layers and whose ``model.weights.h5`` (HDF5, read with
``h5py``) holds the weights; a ``.h5`` file holds the same JSON in its ``model_config``
attribute and the weights under ``model_weights``. Keras itself need not be installed; h5py
must be (``pip install 'rnnlab[keras]'``).

Weights: Keras keeps ``kernel (I, G*H)`` and ``recurrent_kernel (H, G*H)``; rnnlab keeps
torch's ``weight_ih (G*H, I)`` / ``weight_hh (G*H, H)``, so each is transposed, and a GRU's
gates are reordered from Keras's z, r, h to torch's r, z, n. Flags follow the Keras layer,
with Keras's mask semantics: ``zero_output_for_mask`` as configured (Keras's default False;
forced to ``return_sequences`` inside ``Bidirectional``, as Keras does),
``go_backwards_layout="keras"``, and per-gate dropout masks where Keras draws them (LSTM/GRU
with ``recurrent_dropout > 0``).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .bidirectional import Bidirectional
from .core import Activation, Dense, Embedding, Sequential
from .recurrent import GRU, LSTM, SimpleRNN

__all__ = ["SUPPORTED", "from_keras", "load_keras"]

RECURRENT = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}
SUPPORTED = ("Embedding", "SimpleRNN", "LSTM", "GRU", "Bidirectional", "Dense", "Activation",
             "Dropout", "InputLayer")  # fmt: skip
H5PY_HINT = "reading Keras files needs h5py: pip install 'rnnlab[keras]'"


def _gru_order(w: np.ndarray) -> np.ndarray:
    """Keras GRU gates z, r, h along the last axis -> torch's r, z, n."""
    z, r, h = np.split(w, 3, axis=-1)
    return np.concatenate([r, z, h], axis=-1)


def _activation(name) -> str:
    if isinstance(name, dict):  # a serialised activation object
        name = name.get("config", {}).get("name", name.get("class_name"))
    return name


def _recurrent(kind: str, config: dict, weights: list[np.ndarray], in_bidirectional=False):
    order = _gru_order if kind == "GRU" else (lambda w: w)
    kernel, recurrent_kernel, *bias = weights
    kwargs = dict(
        activation=_activation(config.get("activation", "tanh")),
        use_bias=config.get("use_bias", True),
        return_sequences=config.get("return_sequences", False),
        return_state=config.get("return_state", False),
        go_backwards=config.get("go_backwards", False),
        go_backwards_layout="keras",
        stateful=config.get("stateful", False),
        dropout=config.get("dropout", 0.0),
        recurrent_dropout=config.get("recurrent_dropout", 0.0),
        zero_output_for_mask=config.get("zero_output_for_mask", False),
    )
    if in_bidirectional:
        kwargs["zero_output_for_mask"] = kwargs["return_sequences"]
    if kind != "SimpleRNN":
        kwargs["recurrent_activation"] = _activation(config.get("recurrent_activation", "sigmoid"))
        kwargs["dropout_per_gate"] = kwargs["recurrent_dropout"] > 0  # Keras implementation=1
    if kind == "GRU":
        kwargs["reset_after"] = config.get("reset_after", True)
    layer = RECURRENT[kind](kernel.shape[0], recurrent_kernel.shape[0], **kwargs)
    cell = layer.cell
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(order(kernel).T.copy()))
        cell.weight_hh.copy_(torch.from_numpy(order(recurrent_kernel).T.copy()))
        if bias and kind == "GRU" and cell.reset_after:
            cell.bias_ih.copy_(torch.from_numpy(order(bias[0][0])))
            cell.bias_hh.copy_(torch.from_numpy(order(bias[0][1])))
        elif bias:
            cell.bias.copy_(torch.from_numpy(order(bias[0])))
    return layer


def _n_weights(config: dict) -> int:
    return 3 if config.get("use_bias", True) else 2


def build_layer(
    class_name: str, config: dict, weights: list[np.ndarray], name: str = ""
) -> nn.Module:
    """The rnnlab layer for one Keras layer (``class_name``, its ``get_config()`` and its
    ``get_weights()`` as numpy arrays)."""
    label = f"{name!r} ({class_name})" if name else class_name
    weights = [np.asarray(w, dtype=np.float32) for w in weights]
    if class_name in RECURRENT:
        return _recurrent(class_name, config, weights)
    if class_name == "Bidirectional":
        inner = config["layer"]
        back = config.get("backward_layer") or inner
        n = _n_weights(inner["config"])
        kinds = (inner["class_name"], back["class_name"])
        if any(k not in RECURRENT for k in kinds):
            raise ValueError(
                f"Keras layer {label} wraps {kinds[0]}: load_keras reads SimpleRNN, LSTM, GRU."
            )
        fwd = _recurrent(kinds[0], inner["config"], weights[:n], in_bidirectional=True)
        bwd = _recurrent(kinds[1], back["config"], weights[n:], in_bidirectional=True)
        merge = config.get("merge_mode", "concat")
        bi = Bidirectional(fwd, merge_mode=merge)
        bwd.go_backwards = True
        bi.backward_layer = bwd
        return bi
    if class_name == "Dense":
        activation = _activation(config.get("activation", "linear"))
        dense = Dense(weights[0].shape[0], weights[0].shape[1],
                      activation=None if activation == "linear" else activation,
                      use_bias=config.get("use_bias", True))  # fmt: skip
        with torch.no_grad():
            dense.weight.copy_(torch.from_numpy(weights[0].T.copy()))
            if dense.bias is not None:
                dense.bias.copy_(torch.from_numpy(weights[1]))
        return dense
    if class_name == "Embedding":
        emb = Embedding(*weights[0].shape, mask_zero=config.get("mask_zero", False))
        with torch.no_grad():
            emb.weight.copy_(torch.from_numpy(weights[0]))
        return emb
    if class_name == "Activation":
        return Activation(_activation(config["activation"]))
    if class_name == "Dropout":
        return nn.Dropout(config.get("rate", 0.0))
    raise ValueError(
        f"Keras layer {label} is not supported; rnnlab reads {', '.join(SUPPORTED[:-1])}."
    )


def from_keras(layer) -> nn.Module:
    """The rnnlab equivalent of a live Keras 3 layer (SimpleRNN, LSTM, GRU in both
    ``reset_after`` forms, Bidirectional, Dense, Embedding, Activation, Dropout), weights
    copied. The layer must be built (called once, or part of a built model)."""
    class_name = type(layer).__name__
    weights = [np.asarray(w) for w in layer.get_weights()]
    if class_name in (*RECURRENT, "Bidirectional", "Dense", "Embedding") and not weights:
        raise ValueError(
            f"Keras layer {layer.name!r} ({class_name}) is not built: call it once first."
        )
    return build_layer(class_name, layer.get_config(), weights, layer.name)


# ---- files ------------------------------------------------------------------------------------


def _h5py():
    try:
        import h5py
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(H5PY_HINT) from err
    return h5py


def _snake(name: str) -> str:
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    return re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", name).lower()


def _vars(group) -> list[np.ndarray]:
    """A ``.keras`` layer group's arrays in ``get_weights()`` order: its own ``vars/0..``,
    then its sub-objects (an RNN's ``cell``; a Bidirectional's forward, then backward)."""
    out = []
    if "vars" in group:
        out += [group["vars"][k][()] for k in sorted(group["vars"], key=int)]
    subs = [k for k in group if k != "vars"]
    if "forward_layer" in subs:
        subs = ["forward_layer", "backward_layer"]
    for k in subs:
        out += _vars(group[k])
    return out


def _keras_layers(config: dict, path: str) -> list[dict]:
    if config.get("class_name") != "Sequential":
        raise ValueError(
            f"`path` {path!r} holds a Keras {config.get('class_name')!r} model; "
            "load_keras rebuilds Sequential models."
        )
    return config["config"]["layers"]


def _read_keras_zip(path: str):
    h5py = _h5py()
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        if not {"config.json", "model.weights.h5"} <= names:
            raise ValueError(f"`path` {path!r} is a zip without config.json + model.weights.h5.")
        config = json.loads(z.read("config.json"))
        blob = z.read("model.weights.h5")
    layers = _keras_layers(config, path)
    with h5py.File(io.BytesIO(blob), "r") as f:
        used: dict[str, int] = {}  # Keras names a list's entries by class, numbered on repeats
        out = []
        for entry in layers:
            key = _snake(entry["class_name"])
            used[key] = used.get(key, -1) + 1
            key = key if used[key] == 0 else f"{key}_{used[key]}"
            group = f["layers"].get(key)
            out.append((entry, [] if group is None else _vars(group)))
    return out


def _read_h5(path: str):
    h5py = _h5py()
    with h5py.File(path, "r") as f:
        if "model_config" not in f.attrs or "model_weights" not in f:
            raise ValueError(f"`path` {path!r} is an HDF5 file without a Keras model in it.")
        raw = f.attrs["model_config"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        layers = _keras_layers(config, path)
        weights = f["model_weights"]
        out = []
        for entry in layers:
            name = entry["config"].get("name")
            group = weights.get(name) if name else None
            if group is None:
                out.append((entry, []))
                continue
            names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
            out.append((entry, [group[n][()] for n in names]))
    return out


def load_keras(path: str | Path) -> Sequential:
    """Rebuild a Keras 3 ``Sequential`` model saved as ``model.keras`` or ``model.h5``.

    Reads the model's JSON and its HDF5 weights (never unpickles, runs no Keras code) and
    returns an rnnlab :class:`Sequential` of the same layers with the trained weights, in
    eval mode, so ``summary()`` gives the Keras table and outputs equal Keras's. Layers:
    Embedding, SimpleRNN, LSTM, GRU, Bidirectional, Dense, Activation, Dropout.
    """
    path = str(path)
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"`path` must be a Keras .keras or .h5 file; {path!r} does not exist."
        )
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if magic.startswith(b"PK"):
        entries = _read_keras_zip(path)
    elif magic == b"\x89HDF\r\n\x1a\n":
        entries = _read_h5(path)
    else:
        raise ValueError(
            f"`path` must be a Keras model file (.keras zip or .h5 HDF5), got {path!r} "
            f"starting with {magic[:4]!r}."
        )
    modules = []
    for entry, weights in entries:
        if entry["class_name"] == "InputLayer":
            continue
        cfg = entry["config"]
        modules.append(build_layer(entry["class_name"], cfg, weights, cfg.get("name", "")))
    return Sequential(*modules).eval()
