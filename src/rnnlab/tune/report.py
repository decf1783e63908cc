"""What ``rnnlab tune`` leaves in its study folder once the trials are done: the best-trials
table (``best_trials.md``, also printed), parameter importances (``importances.json``), the
optimisation history (``history.png``, drawn with matplotlib) and the best trial's config as
a preset (``best.toml``). Everything is read back from the study's storage, so any process
(or machine) that worked on a shared study can write them.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from rnnlab.training.config import config_from_dict
from rnnlab.utils import atomic_write_bytes, atomic_write_text, save_figure

from .space import config_to_toml

__all__ = ["best_trials_table", "importances", "plot_history", "write_reports"]


def _atomic_write(path: Path, data: str | bytes) -> None:
    if isinstance(data, bytes):
        atomic_write_bytes(path, data)
    else:
        atomic_write_text(path, data)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _ranked(study) -> list:
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return sorted(complete, key=lambda t: (sign * t.value, t.number))


def best_trials_table(study, metric: str, top: int = 10) -> str:
    """A Markdown table of the ``top`` completed trials, best first."""
    import optuna

    ranked = _ranked(study)[:top]
    states = [t.state for t in study.get_trials(deepcopy=False)]
    counts = ", ".join(
        f"{states.count(s)} {s.name.lower()}" for s in optuna.trial.TrialState if states.count(s)
    )
    names = sorted({k for t in ranked for k in t.params})
    tests = sorted({k for t in ranked for k in t.user_attrs if k.startswith("test_")})
    head = ["rank", "trial", metric, *tests, "epochs", *names]
    lines = [
        f"Study `{study.study_name}` ({study.direction.name.lower()} {metric}): "
        f"{counts or 'no trials'}.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]  # fmt: skip
    for rank, t in enumerate(ranked, 1):
        row = [rank, t.number, t.value, *(t.user_attrs.get(k) for k in tests),
               t.user_attrs.get("epochs"), *(t.params.get(k) for k in names)]  # fmt: skip
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    if not ranked:
        lines.append("| " + " | ".join("-" for _ in head) + " |")
    return "\n".join(lines) + "\n"


def importances(study) -> tuple[dict[str, float], str]:
    """``(importances, note)``: Optuna's fANOVA importances, or ``{}`` and why not."""
    import optuna

    ranked = _ranked(study)
    if len(ranked) < 2:
        return {}, f"parameter importances need >= 2 completed trials, have {len(ranked)}"
    varied = [k for k in ranked[0].params if len({repr(t.params.get(k)) for t in ranked}) > 1]
    if not varied:
        return {}, "parameter importances need a parameter that varies across completed trials"
    if len({t.value for t in ranked}) < 2:
        return {}, "parameter importances need completed trials with different scores"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            values = optuna.importance.get_param_importances(study, params=varied)
        except (RuntimeError, ValueError) as e:
            return {}, f"parameter importances unavailable: {e}"
    note = "; ".join(str(w.message) for w in caught)  # e.g. too few trials to tell them apart
    return {k: float(v) for k, v in values.items()}, note


def plot_history(study, metric: str, path: Path) -> Path:
    """Each trial's score (pruned trials at their last report) and the best so far."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import optuna
    from matplotlib.ticker import MaxNLocator

    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    done, pruned = [], []
    for t in study.get_trials(deepcopy=False):
        if t.state == optuna.trial.TrialState.COMPLETE:
            done.append((t.number, t.value))
        elif t.state == optuna.trial.TrialState.PRUNED and t.intermediate_values:
            last = max(t.intermediate_values)
            pruned.append((t.number, t.intermediate_values[last]))
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    if done:
        xs, ys = zip(*done, strict=True)
        ax.scatter(xs, ys, s=18, label="completed", color="tab:blue", zorder=3)
        best, best_y = [], None
        for y in ys:
            best_y = y if best_y is None else (max(best_y, y) if maximize else min(best_y, y))
            best.append(best_y)
        ax.step(xs, best, where="post", color="tab:red", label="best so far")
    if pruned:
        xs, ys = zip(*pruned, strict=True)
        ax.scatter(xs, ys, s=18, marker="x", color="tab:gray", label="pruned (last report)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.set_title(f"{study.study_name}: optimisation history")
    if done or pruned:
        ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


def write_reports(study, job) -> dict:
    """Write the four files into ``job.study_dir``, print the table; returns a summary."""
    out = Path(job.study_dir)
    table = best_trials_table(study, job.metric)
    values, note = importances(study)
    text = table + "\n## Parameter importances (fANOVA)\n\n"
    if values:
        text += "| parameter | importance |\n|---|---|\n"
        text += "".join(f"| {k} | {v:.3f} |\n" for k, v in values.items())
        text += f"\n{note}\n" if note else ""
    else:
        text += f"{note}\n"
    _atomic_write(out / "best_trials.md", text)
    _atomic_write(out / "importances.json", json.dumps({"importances": values, "note": note}))
    print(text, end="", flush=True)
    files = {"table": out / "best_trials.md", "importances": out / "importances.json"}
    files["history"] = plot_history(study, job.metric, out / "history.png")
    ranked = _ranked(study)
    summary = {"finished": len(ranked), "best_value": None, "best_trial": None}
    if ranked:
        best = ranked[0]
        cfg = config_from_dict(best.user_attrs["config"])
        value = best.value
        header = (
            f"Best trial of study `{study.study_name}` (rnnlab tune): trial {best.number}, "
            f"{job.metric} = {value}\nrun: {best.user_attrs.get('run', '-')}\n"
            + "".join(f"{k} = {v!r}\n" for k, v in best.params.items())
            + "Train it: rnnlab train <this file>"
        )
        description = (
            f"{cfg.run.preset or 'preset'} tuned: trial {best.number} of "
            f"{study.study_name}, {job.metric} {value:.4g}"
        )
        _atomic_write(
            out / "best.toml", config_to_toml(cfg, description=description, header=header)
        )
        files["best_preset"] = out / "best.toml"
        summary |= {"best_value": best.value, "best_trial": best.number}
    summary["files"] = {k: str(v) for k, v in files.items()}
    return summary
