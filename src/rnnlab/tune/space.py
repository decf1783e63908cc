"""Search spaces for ``rnnlab tune``: read and validate a SPACE.toml, sample one point of it
through an Optuna trial, and write a config back out as a preset TOML.

A SPACE.toml holds one table per tuned config key, under ``[params]``::

    description = "learning rate, width and optimizer of digits-lstm"   # optional

    [params."train.lr"]
    type = "float"          # float | int | categorical
    low = 1e-4
    high = 1e-2
    log = true              # sample log-uniformly (low > 0); optional, default false

    [params."model.hidden_size"]
    type = "int"
    low = 32
    high = 256
    step = 32               # optional: low, low+step, ..., <= high (default 1)

    [params."train.optimizer"]
    type = "categorical"
    choices = ["adam", "rmsprop", "sgd"]

``--space`` takes a path or the name of an example shipped in ``rnnlab/configs/``
(``tune-digits-lstm``, ``tune-adding-lstm``). Keys are the config's ``section.field``
names, exactly as ``--section.field=value`` overrides take them. A float may have
``step`` instead of ``log`` (a grid ``low + k*step``). ``run.*`` keys cannot be tuned (the
tuner names each trial's run folder).
Every bound and choice is checked up front by :func:`rnnlab.training.config.apply_overrides`
-- the same code that checks ``rnnlab train`` overrides -- so an unknown key names the
closest valid one and an out-of-range value (a negative ``lr``, an unknown optimizer) is
reported before any trial runs. Then :func:`check_space` builds the optimizer and schedule
of every combination of the categorical choices (numbers at their bounds) against the
preset: a space none of whose points can train is refused; combinations that cannot
(``adagrad`` under a preset's one-cycle schedule, which needs momentum or beta1) are named
once, and their trials are pruned without training (:func:`why_untrainable`).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from rnnlab.training.config import SECTIONS, Config, ConfigError, apply_overrides

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

__all__ = [
    "Param", "check_space", "config_to_toml", "load_space", "parse_space", "sample",
    "shipped_spaces", "why_untrainable",
]  # fmt: skip

_TYPES = ("float", "int", "categorical")
_ALLOWED = {
    "float": {"type", "low", "high", "log", "step"},
    "int": {"type", "low", "high", "log", "step"},
    "categorical": {"type", "choices"},
}


@dataclass(frozen=True)
class Param:
    """One tuned key: ``kind`` float/int/categorical with its bounds or choices."""

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    def override(self, value: Any) -> str:
        """``--key=value`` for ``value`` (floats round-trip through ``repr``)."""
        return f"--{self.key}={_text(value)}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return repr(value) if isinstance(value, float) else str(value)


def _number(where: str, name: str, value: Any, kind: str) -> float | int:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "int" and not isinstance(value, int):
        ok = False
    if not ok or not math.isfinite(value):
        expected = "an integer" if kind == "int" else "a finite number"
        raise ConfigError(f"{where}: `{name}` must be {expected}, got {value!r}")
    return value


def _param(key: str, spec: Any, base: Config, source: str) -> Param:
    where = f'{source}: [params."{key}"]'
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a table with `type`, got {spec!r}")
    kind = spec.get("type")
    if kind not in _TYPES:
        raise ConfigError(f"{where}: `type` must be one of {', '.join(_TYPES)}, got {kind!r}")
    extra = sorted(set(spec) - _ALLOWED[kind])
    if extra:
        raise ConfigError(
            f"{where}: unknown field `{extra[0]}` for type {kind!r} "
            f"(expected {', '.join(sorted(_ALLOWED[kind]))})"
        )
    if key.split(".", 1)[0] == "run":
        raise ConfigError(f"{where}: `run.*` keys cannot be tuned (each trial names its run)")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: `choices` must be a non-empty list, got {choices!r}")
        for c in choices:
            if not isinstance(c, (str, int, float, bool)):
                raise ConfigError(f"{where}: choices must be strings/numbers/booleans, got {c!r}")
        if len(set(map(repr, choices))) != len(choices):
            raise ConfigError(f"{where}: `choices` repeats a value: {choices!r}")
        param = Param(key, kind, choices=tuple(choices))
        probes = list(choices)
    else:
        for name in ("low", "high"):
            if name not in spec:
                raise ConfigError(f"{where}: `{name}` is required for type {kind!r}")
        low = _number(where, "low", spec["low"], kind)
        high = _number(where, "high", spec["high"], kind)
        if not low < high:
            raise ConfigError(f"{where}: `low` must be < `high`, got low={low!r}, high={high!r}")
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"{where}: `log` must be true or false, got {log!r}")
        if log and low <= 0:
            raise ConfigError(f"{where}: `log = true` needs `low` > 0, got {low!r}")
        step = spec.get("step")
        if step is not None:
            step = _number(where, "step", step, kind)
            if step <= 0:
                raise ConfigError(f"{where}: `step` must be > 0, got {step!r}")
            if log:
                raise ConfigError(f"{where}: `step` and `log = true` cannot be combined")
        param = Param(key, kind, low=low, high=high, log=log, step=step)
        probes = [low, high]
    for value in probes:  # the config's own checks: key names, types, ranges, choices
        try:
            apply_overrides(base, [param.override(value)])
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    return param


def parse_space(data: dict, base: Config, *, source: str = "space") -> list[Param]:
    """The params of a parsed SPACE.toml ``data``, validated against ``base``."""
    unknown = sorted(set(data) - {"params", "description"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level key `{unknown[0]}` (expected [params] and description)"
        )
    params = data.get("params")
    if not isinstance(params, dict) or not params:
        raise ConfigError(
            f'{source}: needs at least one [params."section.key"] table, got {params!r}'
        )
    return [_param(key, spec, base, source) for key, spec in params.items()]


def shipped_spaces() -> dict[str, Any]:
    """``{name: file}`` of the example spaces shipped as ``rnnlab/configs/tune-*.toml``."""
    folder = resources.files("rnnlab") / "configs"
    return {p.name[:-5]: p for p in folder.iterdir() if _is_space_name(p.name)}


def _is_space_name(name: str) -> bool:
    return name.startswith("tune-") and name.endswith(".toml")


def load_space(space: str | Path, base: Config) -> tuple[list[Param], dict]:
    """``(params, raw data)`` of SPACE.toml ``space``: a path, or the name of a shipped
    example (``tune-digits-lstm``)."""
    shipped = shipped_spaces()
    if str(space) in shipped and not Path(space).exists():
        source, text = f"space {space}", shipped[str(space)].read_text()
    else:
        path = Path(space)
        if not path.is_file():
            names = ", ".join(sorted(shipped)) or "none"
            raise ConfigError(f"--space {path} does not exist (shipped spaces: {names})")
        source, text = str(path), path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--space {source} is not valid TOML: {e}") from None
    return parse_space(data, base, source=source), data


def sample(trial, params: list[Param]) -> dict[str, Any]:
    """One point of the space, drawn through Optuna ``trial``: ``{key: value}``."""
    out = {}
    for p in params:
        if p.kind == "categorical":
            out[p.key] = trial.suggest_categorical(p.key, list(p.choices))
        elif p.kind == "int":
            out[p.key] = trial.suggest_int(p.key, p.low, p.high, step=p.step or 1, log=p.log)
        else:
            out[p.key] = trial.suggest_float(p.key, p.low, p.high, step=p.step, log=p.log)
    return out


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a valid TOML basic string
    raise ConfigError(f"cannot write {value!r} ({type(value).__name__}) to TOML")


def config_to_toml(cfg: Config, *, description: str, header: str = "") -> str:
    """``cfg`` as a preset TOML (``[data]``, ``[model]``, ``[train]``; ``run`` is left out so
    the preset names its own runs). ``None`` values are omitted: those fields default to
    ``None``. ``header`` lines are written as comments."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines.append(f"description = {toml_value(description)}")
    for section, cls in SECTIONS.items():
        if section == "run":
            continue
        lines += ["", f"[{section}]"]
        for f in fields(cls):
            value = getattr(getattr(cfg, section), f.name)
            if value is None:
                if f.default is not None:
                    raise ConfigError(f"`{section}.{f.name}` is None but its default is not")
                continue
            lines.append(f"{f.name} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def why_untrainable(base: Config, flags: list[str]) -> str | None:
    """Why ``base`` with ``--key=value`` ``flags`` cannot train (``None`` when it can): a
    config error, or an optimizer/schedule pair torch refuses, found by building both on a
    one-weight model (nothing is trained, no data is read)."""
    import torch
    from torch import nn

    from rnnlab.training.optim import build_optimizer, build_schedule

    try:
        cfg = apply_overrides(base, flags)
        with torch.random.fork_rng(devices=[]):
            optimizer = build_optimizer(cfg, nn.Linear(1, 1))
        build_schedule(cfg, optimizer, 1)
    except (ConfigError, ValueError, TypeError, RuntimeError) as e:
        return " ".join(str(e).split()) or type(e).__name__
    return None


def check_space(base: Config, params: list[Param], *, limit: int = 512) -> str:
    """Check the combinations of ``params``' categorical choices (up to ``limit``), each with
    the numeric params at their low and at their high bound, with :func:`why_untrainable`.
    Returns ``""`` when all can train, else one line naming the first that cannot; raises
    :class:`ConfigError` when none can."""
    categorical = [p for p in params if p.kind == "categorical"]
    numeric = [p for p in params if p.kind != "categorical"]
    combos = itertools.islice(itertools.product(*(p.choices for p in categorical)), limit)
    checked, bad = 0, []
    for combo in combos:
        chosen = [p.override(v) for p, v in zip(categorical, combo, strict=True)]
        for bound in ("low", "high"):
            flags = chosen + [p.override(getattr(p, bound)) for p in numeric]
            checked += 1
            reason = why_untrainable(base, flags)
            if reason is not None:
                bad.append((" ".join(f.removeprefix("--") for f in chosen) or bound, reason))
    if not bad:
        return ""
    where, reason = bad[0]
    if len(bad) == checked:
        raise ConfigError(f"no point of the space can train with this preset: {where}: {reason}")
    return (
        f"{len(bad)} of {checked} checked points cannot train with this preset, "
        f"e.g. {where}: {reason}"
    )
