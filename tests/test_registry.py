"""The family registry and the config rules beside the fields: every family is one entry,
keys a family does not read are refused, values outside a field's range are refused with one
line, the reference lists every key with its help, and config modules import on their own."""

import subprocess
import sys

import pytest

from rnnlab.cli import main
from rnnlab.training import families
from rnnlab.training.config import (
    Config,
    ConfigError,
    apply_overrides,
    list_presets,
    load_preset,
    reference,
)

FAMILIES = (
    "autoencode", "classify", "forecast", "gan", "language-model", "regress", "seq-anomaly",
    "seq-classify", "tbptt", "text-classify", "vae", "vaegan",
)  # fmt: skip


def test_every_family_is_one_registry_entry_with_its_kinds_and_keys():
    assert families.names() == FAMILIES
    for name in FAMILIES:
        f = families.get(name)
        assert f.name == name and f.kinds and f.dataset_names()
        assert set(f.supports) <= set(families.CAPABILITIES)
        assert all(k.split(".")[0] in ("data", "model", "train", "run") for k in f.keys)
        assert ("generation" in f.supports) == (f.generate is not None)
        # image grids need the per-epoch hook; the own-data families use it for data.json
        assert "samples" not in f.supports or f.samples is not None
    with pytest.raises(ConfigError, match="`model.family` must be one of autoencode, classify"):
        families.get("transformer")


def test_every_shipped_preset_passes_its_familys_checks():
    for name in list_presets():
        cfg = load_preset(name)
        assert cfg.model.kind in families.get(cfg.model.family).kinds


@pytest.mark.parametrize(
    ("flag", "accepted"),
    [
        ("--train.clip_norm=0.001", True),  # the update path clips every family
        ("--train.kernel_l2=10", True),  # regularisers too
        ("--train.max_norm=0.01", True),  # and the constraint
        ("--model.activation=relu", False),  # the VAE has no recurrent activation
        ("--model.dropout=0.5", False),
        ("--data.view=pixels", False),
        ("--train.tbptt_k=5", False),
    ],
)
def test_a_key_the_family_does_not_read_is_refused_naming_key_and_family(flag, accepted):
    base = apply_overrides(load_preset("vae-mnist"), ["--data.dataset=digits"])
    if accepted:
        apply_overrides(base, [flag])
        return
    key = flag[2:].split("=")[0]
    with pytest.raises(ConfigError, match=f"`{key}` is not used by family 'vae'"):
        apply_overrides(base, [flag])


def test_the_cli_refuses_an_ignored_key_with_one_line(capsys):
    argv = ["train", "vae-mnist", "--data.dataset=digits", "--model.activation=relu", "--dry-run"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnlab: error: `model.activation` is not used by family 'vae'")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--train.lr=inf", "`train.lr` must be a finite number, got inf"),
        ("--train.lr=nan", "`train.lr` must be a finite number"),
        ("--data.limit=-1400", "`data.limit` must be >= 0, got -1400"),
        ("--train.eval_batch_size=0", "`train.eval_batch_size` must be a positive integer"),
        ("--train.seed=" + "9" * 30, "`train.seed` must be in [0, 9223372036854775808)"),
        ("--train.seed=-1", "`train.seed` must be in [0, 9223372036854775808), got -1"),
        ("--model.hidden_size=0", "`model.hidden_size` must be a positive integer, got 0"),
        ("--train.gamma=0", "`train.gamma` must be in (0, 1], got 0.0"),
    ],
)
def test_out_of_range_values_are_refused_with_one_line(flag, message, capsys):
    with pytest.raises(ConfigError) as e:
        apply_overrides(Config(), [flag])
    assert message in str(e.value)
    assert main(["train", "digits-lstm", flag, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnlab: error: ") and err.count("\n") == 1


def test_the_reference_lists_every_key_with_type_default_help_and_choices():
    rows = reference()
    assert len(rows) == sum(len(vars(getattr(Config(), s))) for s in ("data", "model", "train",
                                                                     "run"))  # fmt: skip
    for row in rows:
        assert row.help and "\n" not in row.help, row
    by_key = {f"{r.section}.{r.name}": r for r in rows}
    opt = by_key["train.optimizer"]
    assert (
        opt.choices == ("sgd", "adam", "rmsprop", "adagrad", "adadelta", "adamw")
        and opt.default == "adam"
    )
    assert by_key["model.family"].choices == FAMILIES  # asked from the registry
    assert by_key["train.clip_norm"].type == "float | none"
    assert "relu" in by_key["model.activation"].choices  # the layers' activation table


def test_the_config_module_imports_on_its_own():
    code = "import rnnlab.training.config as c; c.apply_overrides(c.Config(), ['--epochs=2'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
