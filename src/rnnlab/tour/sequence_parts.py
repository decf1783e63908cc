"""Tour parts for the recurrent half of the chapter: the Listing 5.1 summary, SimpleRNN vs
LSTM vs GRU vs bidirectional LSTM on digits read row by row (with a confusion matrix and the
LSTM's gates), ``dynamic_rnn`` with sequence lengths, the adding problem with gradients
through time, and FGSM/PGD attacks with their robustness curves."""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F

from rnnlab.attacks import pgd
from rnnlab.data import adding_problem, load
from rnnlab.evaluation.gates import plot_gates, record_gates
from rnnlab.evaluation.gradients import (
    find_recurrent,
    gradient_norms_through_time,
    plot_gradient_norms,
)
from rnnlab.evaluation.robustness import accuracy_vs_epsilon, panda_figure
from rnnlab.layers import LSTM, Dense, Sequential, SimpleRNN, summary
from rnnlab.training.experiment import load_run, model_input
from rnnlab.utils import atomic_write_text

from .common import Tour

CLASSIFIERS = {"SimpleRNN": "simple_rnn", "LSTM": "lstm", "GRU": "gru", "BiLSTM": "bilstm"}


def part_summary(tour: Tour) -> list[str]:
    """Listing 5.1's model and its Keras-format summary."""
    model = Sequential(SimpleRNN(12, 512, dropout=0.2), Dense(512, 5, activation="softmax"))
    text = summary(model, (30, 12), print_fn=None)
    run = tour.manual_run("summary", "listing-5-1", {"listing": "5.1", "model": repr(model)})
    atomic_write_text(run / "summary.txt", text + "\n")
    return text.splitlines()


def _epochs(tour: Tour, full: int) -> list[str]:
    return [f"--train.epochs={2 if tour.quick else full}"]


def part_classifiers(tour: Tour) -> list[str]:
    """Four recurrent classifiers on the digits, rows as time steps (8 steps of 8 pixels)."""
    lines, runs = [], {}
    for label, kind in CLASSIFIERS.items():
        r = tour.train("classifiers", "digits-lstm", label.lower(), [f"--model.kind={kind}"]
                       + _epochs(tour, 20))  # fmt: skip
        runs[label] = r["run"]
        lines.append(
            f"{label:<10} test accuracy {r['test_accuracy']:.3f}  "
            f"({r['parameters']:,} parameters, {r['seconds_per_epoch']:.2f} s/epoch)"
        )
    cfg, model = load_run(runs["LSTM"])
    test = load("digits", "test")
    x = model_input(cfg, test.images)
    with torch.no_grad():
        pred = model(x).argmax(-1)
    matrix = torch.zeros(10, 10, dtype=torch.int64)
    matrix.index_put_((test.labels, pred), torch.ones_like(pred), accumulate=True)
    _write(runs["LSTM"], "confusion.json", {"labels": test.class_names, "matrix": matrix.tolist()})
    # Inside the LSTM: which rows open the input gate, when the forget gate lets go.
    trace = record_gates(find_recurrent(model), x[:1])
    digit = test.class_names[int(test.labels[0])]
    title = f"LSTM reading a {digit} row by row"
    plot_gates(trace, 0, runs["LSTM"] / "gates.png", input_image=test.images[0], title=title)
    lines.append(f"confusion matrix and gate heatmaps written to {runs['LSTM']}")
    tour.classifier_runs = runs
    return lines


def _write(run, name: str, data) -> None:
    from pathlib import Path

    atomic_write_text(Path(run, name), json.dumps(data))


def part_dynamic_rnn(tour: Tour) -> list[str]:
    """Listings 5.3/5.4: TF1 dynamic_rnn semantics with sequence lengths [2, 1, 2, 2]."""
    x = torch.tensor(
        [[[0, 1, 2], [9, 8, 7]], [[3, 4, 5], [0, 0, 0]], [[6, 7, 8], [6, 5, 4]],
         [[9, 0, 1], [3, 2, 1]]], dtype=torch.float32,
    )  # fmt: skip
    lengths = torch.tensor([2, 1, 2, 2])
    torch.manual_seed(0)
    rnn = SimpleRNN(3, 5, return_sequences=True, return_state=True)
    lstm = LSTM(3, 5, return_sequences=True, return_state=True)
    with torch.no_grad():
        out, h = rnn(x, lengths)
        out_l, state = lstm(x, lengths)
    lines = [
        f"inputs {tuple(x.shape)}, lengths {lengths.tolist()}",
        f"SimpleRNN outputs {tuple(out.shape)}; instance 1 at t=1: {out[1, 1].tolist()}",
        f"final state == last valid output: {torch.equal(h, out[torch.arange(4), lengths - 1])}",
        f"LSTM: LSTMState(h, c) with h, c {tuple(state.h.shape)}; TF1's LSTMStateTuple is "
        f"(c, h) = state.as_tf1(); h == last valid output: "
        f"{torch.equal(state.h, out_l[torch.arange(4), lengths - 1])}",
    ]
    run = tour.manual_run("dynamic_rnn", "listings-5-3-5-4", {"listings": "5.3, 5.4"})
    atomic_write_text(run / "summary.txt", "\n".join(lines) + "\n")
    return lines


def part_memory(tour: Tour) -> list[str]:
    """The adding problem: can the model carry two numbers across T steps? Predicting 1
    always gives MSE 0.167. Then ||dL/dh_t|| through time for each trained model."""
    T, n = (20, 500) if tour.quick else (30, 8000)
    lines, curves = [f"adding problem, T={T}, {n} training sequences; baseline MSE 0.167"], {}
    x, y = adding_problem(256, T, seed=7)
    for label, kind in (("SimpleRNN", "simple_rnn"), ("LSTM", "lstm"), ("GRU", "gru")):
        overrides = [f"--data.seq_len={T}", f"--data.n_train={n}", "--data.n_test=500",
                     "--model.hidden_size=64", "--train.lr=3e-3"]  # fmt: skip
        r = tour.train("memory", f"adding-{kind}", f"adding-{kind}", overrides + _epochs(tour, 8))
        lines.append(f"{label:<10} test MSE {r['test_loss']:.4f}")
        _, model = load_run(r["run"])
        curves[label] = gradient_norms_through_time(model, x, y, F.mse_loss)
    run = tour.manual_run("memory", "gradients", {"task": "adding", "T": T})
    _write(run, "gradients.json", {k: v.tolist() for k, v in curves.items()})
    plot_gradient_norms(curves, run / "gradients.png")
    for label, c in curves.items():
        lines.append(f"{label:<10} ||dL/dh_0|| / ||dL/dh_T-1|| = {float(c[0] / c[-1]):.2e}")
    return lines


def part_adversarial(tour: Tour) -> list[str]:
    """FGSM and PGD against a CNN and the LSTM row classifier: accuracy vs epsilon."""
    r = tour.train("adversarial", "digits-lstm", "cnn", ["--model.kind=cnn", "--train.lr=3e-3"]
                   + _epochs(tour, 15))  # fmt: skip
    test = load("digits", "test")
    n = 100 if tour.quick else 360
    eps = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3]
    models = {"CNN": load_run(r["run"])}
    if tour.classifier_runs:
        models["LSTM rows"] = load_run(tour.classifier_runs["LSTM"])
    curves, lines = {}, []
    for label, (cfg, model) in models.items():
        x = model_input(cfg, test.images[:n])
        curves[f"{label} FGSM"] = accuracy_vs_epsilon(model, x, test.labels[:n], eps, "fgsm")
        curves[f"{label} PGD-20"] = accuracy_vs_epsilon(
            model,
            x,
            test.labels[:n],
            eps,
            "pgd",
            steps=20,
            generator=torch.Generator().manual_seed(0),
        )
        for key in (f"{label} FGSM", f"{label} PGD-20"):
            lines.append(
                f"{key:<16} "
                + "  ".join(f"eps {c['eps']:.2f}: {c['accuracy']:.2f}" for c in curves[key])
            )
    _write(r["run"], "robustness.json", curves)
    cfg, model = models["CNN"]
    x, y = model_input(cfg, test.images[:4]), test.labels[:4]
    x_adv = pgd(model, x, y, 0.2, steps=20, generator=torch.Generator().manual_seed(0))
    (r["run"] / "samples").mkdir(exist_ok=True)
    panda_figure(
        model, x, y, x_adv, test.class_names, r["run"] / "samples" / "adversarial.png", eps=0.2
    )
    return lines


SEQUENCE_PARTS = {
    "summary": part_summary,
    "classifiers": part_classifiers,
    "dynamic_rnn": part_dynamic_rnn,
    "memory": part_memory,
    "adversarial": part_adversarial,
}
