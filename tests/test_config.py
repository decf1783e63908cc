"""Configs: every preset loads, overrides are typed and validated, errors name the key."""

import pytest

from rnnlab.training.config import (
    Config,
    ConfigError,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    list_presets,
    load_preset,
)

EXPECTED_PRESETS = {
    "listing-5-2", "simple-rnn-rows", "lstm-rows", "gru-rows", "bilstm-rows",
    "stacked-lstm-rows", "lstm-pixels", "lstm-permuted", "adding-simple_rnn", "adding-lstm",
    "adding-gru", "digits-lstm", "cnn-mnist", "cnn-mnist-fgsm-at", "cnn-mnist-fast-at",
    "cnn-mnist-pgd-at", "lstm-rows-mnist-at", "cnn-fashion-at", "ae-basic", "ae-conv",
    "ae-lstm", "vae-mnist", "conv-vae-mnist", "gan-mnist", "dcgan-mnist", "cgan-mnist",
    "vaegan-mnist",
}  # fmt: skip


def test_every_preset_loads_with_a_description():
    presets = list_presets()
    assert EXPECTED_PRESETS <= set(presets)
    for name, description in presets.items():
        assert description, name
        assert load_preset(name).run.preset == name


def test_listing_5_2_matches_the_printed_summary():
    cfg = load_preset("listing-5-2")
    assert (cfg.model.kind, cfg.model.hidden_size, cfg.model.dropout) == ("simple_rnn", 256, 0.3)
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.schedule) == ("sgd", 0.01, "none")
    assert (cfg.data.dataset, cfg.data.view, cfg.data.batch_size) == ("mnist", "rows", 128)
    assert cfg.train.epochs == 5


def test_overrides_are_coerced_from_field_types_and_leave_the_original_alone():
    base = load_preset("digits-lstm")
    cfg = apply_overrides(
        base,
        ["--train.lr=0.05", "--epochs=3", "--deterministic=yes", "--clip_norm=none",
         "--data.data-dir=/tmp/d", "--model.kind=gru"],
    )  # fmt: skip
    assert cfg.train.lr == 0.05 and cfg.train.epochs == 3 and cfg.train.deterministic is True
    assert cfg.train.clip_norm is None and cfg.data.data_dir == "/tmp/d"
    assert cfg.model.kind == "gru"
    assert base.train.epochs == 20 and base.model.kind == "lstm"


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--train.lrr=1", "did you mean `train.lr`"),
        ("--epoch=3", "did you mean `epochs`"),
        ("--model.kind=transformer", "must be one of simple_rnn, lstm"),
        ("--lr=abc", "`train.lr` expects float, got 'abc'"),
        ("--epochs=2.5", "`train.epochs` expects int, got '2.5'"),
        ("--deterministic=maybe", "`train.deterministic` expects bool"),
        ("--dropout=1.5", "`model.dropout` must be in [0, 1), got 1.5"),
        ("--batch_size=0", "`data.batch_size` must be a positive integer"),
        ("--lr", "must look like --section.key=value"),
    ],
)
def test_bad_overrides_name_the_key_the_expectation_and_the_value(flag, message):
    with pytest.raises(ConfigError) as e:
        apply_overrides(Config(), [flag])
    assert message in str(e.value)


def test_unknown_preset_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean `lstm-rows`"):
        load_preset("lstm-row")


def test_config_round_trips_through_a_dict():
    cfg = apply_overrides(load_preset("adding-lstm"), ["--data.seq_len=200"])
    again = config_from_dict(config_to_dict(cfg))
    assert again == cfg


def test_config_from_dict_rejects_unknown_sections_and_keys():
    with pytest.raises(ConfigError, match="did you mean `model.hidden_size`"):
        config_from_dict({"model": {"hiden_size": 3}})


@pytest.mark.parametrize("name", sorted(list_presets()))
def test_every_preset_builds_its_model_on_data_of_the_right_shape(name):
    from rnnlab.training.experiment import build_data, build_model

    cfg = load_preset(name)
    data = build_data(cfg, dry_run=True)
    assert build_model(cfg, data.spec) is not None  # a Loader split (text) has no [0][0]


def test_the_adversarial_presets_follow_their_papers():
    fgsm, fast, pgd = (load_preset(f"cnn-mnist-{m}-at").train for m in ("fgsm", "fast", "pgd"))
    assert (fgsm.adversarial, fgsm.adv_eps, fgsm.adv_mix) == ("fgsm", 0.3, 0.5)
    assert (fast.adversarial, fast.adv_eps, fast.adv_mix) == ("fast", 0.3, None)
    assert (pgd.adversarial, pgd.adv_eps) == ("pgd", 0.3)
    assert load_preset("lstm-rows-mnist-at").train.adv_eps == 0.3
    assert load_preset("cnn-fashion-at").train.adv_eps == 0.1
    gan = load_preset("gan-mnist")
    assert (gan.model.family, gan.model.kind, gan.model.hidden_size) == ("gan", "mlp", 128)
    assert (gan.train.lr, gan.train.beta1) == (2e-4, 0.5)  # Listing 5.5's Adam


def test_generative_keys_are_typed_and_checked():
    flags = ["--family=vae", "--kind=conv", "--latent_dim=2", "--beta=4", "--iw_k=100"]
    cfg = apply_overrides(Config(), [*flags, "--likelihood=gaussian"])
    assert (cfg.model.latent_dim, cfg.train.beta, cfg.train.iw_k) == (2, 4.0, 100)
    with pytest.raises(ConfigError, match="`model.latent_dim` must be a positive integer"):
        apply_overrides(Config(), ["--latent_dim=0"])
    with pytest.raises(ConfigError, match="`model.likelihood` must be one of bernoulli, gaussian"):
        apply_overrides(Config(), ["--likelihood=poisson"])
    with pytest.raises(ConfigError, match="`train.label_smoothing` must be in"):
        apply_overrides(Config(), ["--label_smoothing=1"])


def test_load_preset_accepts_a_file_path(tmp_path):
    from rnnlab.training.config import load_preset

    path = tmp_path / "mine.toml"
    path.write_text('description = "x"\n[train]\nepochs = 2\n')
    cfg = load_preset(str(path))
    assert cfg.train.epochs == 2 and cfg.run.preset == "mine"
    with pytest.raises(ConfigError, match="does not exist"):
        load_preset(str(tmp_path / "missing.toml"))


def test_tune_spaces_are_not_presets():
    from rnnlab.training.config import list_presets

    assert not [name for name in list_presets() if name.startswith("tune-")]


def test_precision_and_cuda_graph_keys():
    from rnnlab.training.config import apply_overrides, load_preset

    cfg = apply_overrides(load_preset("digits-lstm"), ["--precision=bf16", "--cuda_graph=yes"])
    assert cfg.train.precision == "bf16" and cfg.train.cuda_graph is True
    default = load_preset("digits-lstm").train
    assert default.precision == "fp32" and default.cuda_graph is False
