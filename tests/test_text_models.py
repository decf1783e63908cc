"""Language model and text classifier: state carried across windows, padding invariance."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.layers import detach_state
from rnnlab.models.language import LanguageModel
from rnnlab.models.text_classifier import TextClassifier


def _torch_lm(model: LanguageModel) -> tuple[nn.LSTM, nn.Embedding, nn.Linear]:
    """torch.nn twins of a 2-layer LSTM LM with the same weights (one bias -> b_ih)."""
    layers = model.rnn.layers
    ref = nn.LSTM(layers[0].input_size, layers[0].hidden_size, len(layers), batch_first=True)
    with torch.no_grad():
        for i, layer in enumerate(layers):
            cell = layer.cell
            getattr(ref, f"weight_ih_l{i}").copy_(cell.weight_ih)
            getattr(ref, f"weight_hh_l{i}").copy_(cell.weight_hh)
            getattr(ref, f"bias_ih_l{i}").copy_(cell.bias)
            getattr(ref, f"bias_hh_l{i}").zero_()
    emb = nn.Embedding.from_pretrained(model.embedding.weight.detach().clone(), freeze=False)
    proj = nn.Linear(model.projection.in_features, model.projection.out_features)
    proj.load_state_dict(model.projection.state_dict())
    return ref, emb, proj


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
def test_state_carried_across_windows_equals_one_pass(kind):
    torch.manual_seed(0)
    model = LanguageModel(11, 6, 5, num_layers=2, kind=kind).double()
    ids = torch.randint(0, 11, (3, 9))
    whole, _ = model(ids)
    first, state = model(ids[:, :4])
    second, _ = model(ids[:, 4:], detach_state(state))
    torch.testing.assert_close(torch.cat([first, second], 1), whole)


def test_truncated_gradient_matches_torch_lstm_with_detached_state():
    torch.manual_seed(1)
    model = LanguageModel(13, 4, 4, num_layers=2, implementation="explicit").double()
    ref, emb, proj = (m.double() for m in _torch_lm(model))
    ids, targets = torch.randint(0, 13, (2, 10)), torch.randint(0, 13, (2, 10))

    def loss(logits, y):
        return F.cross_entropy(logits.reshape(-1, 13), y.reshape(-1))

    state = None
    for w in (slice(0, 6), slice(6, 10)):  # two windows, state detached between them
        logits, state = model(ids[:, w], state)
        loss(logits, targets[:, w]).backward()
        state = detach_state(state)
    hc = None
    for w in (slice(0, 6), slice(6, 10)):
        out, hc = ref(emb(ids[:, w]), hc)
        loss(proj(out), targets[:, w]).backward()
        hc = tuple(h.detach() for h in hc)
    torch.testing.assert_close(model.embedding.weight.grad, emb.weight.grad)
    torch.testing.assert_close(model.projection.weight.grad, proj.weight.grad)
    for i, layer in enumerate(model.rnn.layers):
        torch.testing.assert_close(layer.cell.weight_hh.grad, getattr(ref, f"weight_hh_l{i}").grad)
        torch.testing.assert_close(layer.cell.weight_ih.grad, getattr(ref, f"weight_ih_l{i}").grad)


def test_detached_state_stops_the_gradient_at_the_window_boundary():
    model = LanguageModel(7, 3, 3).double()
    ids = torch.randint(0, 7, (1, 8))
    emb = model.embedding(ids).detach().requires_grad_()
    _, state = model.rnn(emb[:, :4])
    out, _ = model.rnn(emb[:, 4:], None, detach_state(state))
    out.sum().backward()
    assert emb.grad[:, :4].abs().sum() == 0 and emb.grad[:, 4:].abs().sum() > 0


def test_tied_weights_share_one_matrix():
    model = LanguageModel(20, 8, 8, tie_weights=True)
    assert model.projection.weight is model.embedding.weight
    assert sum(p.numel() for p in model.parameters()) < sum(
        p.numel() for p in LanguageModel(20, 8, 8).parameters()
    )
    with pytest.raises(ValueError, match="embed_dim == hidden_size"):
        LanguageModel(20, 8, 6, tie_weights=True)


def test_tied_weights_export_to_safetensors_and_load_back(tmp_path):
    # the run's final model.safetensors: safetensors refuses shared memory unless copied
    from safetensors.torch import load_file

    from rnnlab.training.checkpoint import export_safetensors

    model = LanguageModel(13, 8, 8, 2, tie_weights=True)
    export_safetensors(model, tmp_path / "model.safetensors")
    other = LanguageModel(13, 8, 8, 2, tie_weights=True, init_scale=0.5)
    other.load_state_dict(load_file(str(tmp_path / "model.safetensors")))
    assert other.projection.weight is other.embedding.weight  # still tied after loading
    for (name, a), b in zip(model.state_dict().items(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_dropout_only_in_training():
    model = LanguageModel(9, 4, 4, num_layers=2, dropout=0.5).eval()
    ids = torch.randint(0, 9, (2, 5))
    torch.testing.assert_close(model(ids)[0], model(ids)[0])
    model.train()
    assert not torch.equal(model(ids)[0], model(ids)[0])


@pytest.mark.parametrize("pooling", ["last", "max", "mean", "max_mean"])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_padded_batch_equals_each_sentence_alone(pooling, kind):
    torch.manual_seed(0)
    model = TextClassifier(30, 3, 6, 5, num_layers=2, kind=kind, pooling=pooling).double().eval()
    sentences = [torch.randint(1, 30, (n,)) for n in (5, 2, 7)]
    ids = nn.utils.rnn.pad_sequence(sentences, batch_first=True)
    ids = torch.cat([ids, torch.zeros(3, 2, dtype=torch.long)], 1)  # extra padding columns
    lengths = torch.tensor([5, 2, 7])
    batch = model(ids, lengths)
    alone = torch.cat([model(s[None], torch.tensor([len(s)])) for s in sentences])
    torch.testing.assert_close(batch, alone)
    # padding ids that are NOT zero change nothing either: lengths decide
    noisy = ids.clone()
    noisy[1, 2:] = 17
    torch.testing.assert_close(model(noisy, lengths), batch)


def test_max_mean_pooling_is_max_and_mean_side_by_side():
    torch.manual_seed(0)
    model = TextClassifier(20, 2, 4, 3, pooling="max_mean").double().eval()
    ids, lengths = torch.tensor([[3, 4, 5], [6, 7, 0]]), torch.tensor([3, 2])
    out, _ = model.rnn(model.embedding(ids), lengths)  # (2, 3, 6)
    by_hand = torch.stack([torch.cat([out[b, :n].amax(0), out[b, :n].mean(0)])
                           for b, n in enumerate(lengths.tolist())])  # fmt: skip
    torch.testing.assert_close(model(ids, lengths), model.head(by_hand))


def test_word_dropout_replaces_valid_words_by_unk_in_training_only():
    torch.manual_seed(0)
    model = TextClassifier(50, 2, 4, 3, pooling="mean", word_dropout=0.3, unk_id=1)
    seen = []
    model.embedding.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    ids = torch.randint(2, 50, (400, 20))
    lengths = torch.randint(1, 21, (400,))
    ids[torch.arange(20)[None] >= lengths[:, None]] = 0
    model.eval()(ids, lengths)
    assert torch.equal(seen[-1], ids)  # evaluation: every word kept
    model.train()(ids, lengths)
    dropped = seen[-1] != ids
    assert torch.all(seen[-1][dropped] == 1)  # a dropped word is <unk>
    assert not dropped[ids == 0].any()  # padding is never replaced
    rate = dropped.sum() / (ids != 0).sum()
    assert abs(float(rate) - 0.3) < 0.02
    model(ids, lengths).sum().backward()
    assert model.embedding.weight.grad[1].abs().sum() > 0  # <unk> now learns


def test_uniform_embedding_init_and_bad_options():
    model = TextClassifier(30, 2, 8, 4, embed_init="uniform")
    w = model.embedding.weight
    assert torch.all(w[0] == 0) and w[1:].abs().max() <= 0.25 and w[1:].std() > 0.1
    with pytest.raises(ValueError, match="embed_init"):
        TextClassifier(30, 2, embed_init="glove")
    with pytest.raises(ValueError, match="word_dropout"):
        TextClassifier(30, 2, word_dropout=1.0)
    with pytest.raises(ValueError, match="unk_id"):
        TextClassifier(30, 2, unk_id=0)
