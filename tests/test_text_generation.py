"""Generation (stateful, O(length)) and the stream metrics on models with known answers."""

import math

import pytest
import torch
from torch import nn

from rnnlab.data.text import TextDataError, Vocabulary
from rnnlab.models.generation import generate
from rnnlab.models.language import LanguageModel
from rnnlab.training.text_steps import evaluate_stream, lm_metrics

VOCAB = Vocabulary(sorted(set("abcdefgh \n")), "char")


def _model(seed=0):
    torch.manual_seed(seed)
    return LanguageModel(len(VOCAB), 8, 16, num_layers=2).eval()


def test_same_seed_same_text_and_other_seed_differs():
    model = _model()
    a = generate(model, VOCAB, "abc", 60, temperature=1.0, seed=3)
    assert a == generate(model, VOCAB, "abc", 60, temperature=1.0, seed=3)
    assert a != generate(model, VOCAB, "abc", 60, temperature=1.0, seed=4)
    assert len(a) == 60


def _refeed_logits(model, ids):
    """Logits for the next token by re-reading the whole context (the slow reference)."""
    return model(torch.tensor(ids)[None])[0][0, -1]


def test_temperature_zero_is_argmax_of_the_whole_context():
    model = _model()
    text = generate(model, VOCAB, "bad cab", 25, temperature=0)
    ids = VOCAB.encode("bad cab").tolist()
    for ch in text:  # the stateful path equals re-feeding everything, greedy at each step
        assert VOCAB.tokens[int(_refeed_logits(model, ids).argmax())] == ch
        ids.append(VOCAB.index[ch])


def test_top_k_never_leaves_the_k_most_likely():
    model = _model(1)
    text = generate(model, VOCAB, "a", 80, temperature=2.0, top_k=2, seed=0)
    ids = VOCAB.encode("a").tolist()
    for ch in text:
        top = _refeed_logits(model, ids).topk(2).indices.tolist()
        assert VOCAB.index[ch] in top
        ids.append(VOCAB.index[ch])


def test_until_stops_at_the_string_and_long_primes_work():
    model = _model(2)
    free = generate(model, VOCAB, "a", 400, temperature=1.0, seed=5)
    stop = free[free.index("a") : free.index("a") + 1] if "a" in free else None
    assert stop is not None
    cut = generate(model, VOCAB, "a", 400, temperature=1.0, seed=5, until="a")
    assert cut == free[: free.index("a") + 1]
    long_prime = "abcdefgh \n" * 300  # 3000 characters, far beyond any training window
    assert len(generate(model, VOCAB, long_prime, 5, temperature=0)) == 5


def test_bad_generation_input():
    model = _model()
    with pytest.raises(TextDataError, match=r"'z', 'Q'"):
        generate(model, VOCAB, "zaQ", 5)
    with pytest.raises(ValueError, match="length"):
        generate(model, VOCAB, "a", 0)


def test_word_level_generation_and_prime():
    vocab = Vocabulary(["the", "cat", "sat", "<eos>", "<unk>"], "word", "<unk>")
    model = LanguageModel(len(vocab), 4, 4).eval()
    text = generate(model, vocab, "the cat", 10, temperature=0.5, seed=1)
    assert set(text.split()) <= {"the", "cat", "sat", "<unk>"} and len(text.split()) >= 9
    with pytest.raises(TextDataError, match="'dog'"):
        generate(model, vocab, "the dog", 3)


class Uniform(nn.Module):
    """A language model whose every next-token distribution is uniform over V."""

    def __init__(self, v):
        super().__init__()
        self.v, self.w = v, nn.Parameter(torch.zeros(()))

    def forward(self, ids, state=None):
        return torch.zeros(*ids.shape, self.v) + self.w, state


def test_metrics_of_a_uniform_model_are_log_v():
    ids = torch.randint(0, 50, (1000,))
    char = evaluate_stream(Uniform(50), ids, "char", bptt=37)
    assert char["loss"] == pytest.approx(math.log(50)) and char["tokens"] == 999
    assert char["bpc"] == pytest.approx(math.log2(50))
    word = evaluate_stream(Uniform(50), ids, "word", bptt=64, batch_size=4)
    assert word["perplexity"] == pytest.approx(50.0)
    assert lm_metrics(2.0, "word")["perplexity"] == pytest.approx(math.exp(2.0))


def test_lm_step_resets_at_the_stream_start_and_resumes_mid_pass_bit_exactly():
    import copy

    from rnnlab.data.text_corpora import LMStream
    from rnnlab.training.text_steps import LMTrainStep

    ids = torch.randint(0, 10, (400,), generator=torch.Generator().manual_seed(0))

    def fresh():
        torch.manual_seed(0)
        model = LanguageModel(10, 4, 6)
        return model, torch.optim.Adam(model.parameters(), 1e-2), LMStream(ids, 4, 7), LMTrainStep()

    model, opt, stream, step = fresh()
    saved = None
    for epoch in range(2):
        for i, batch in enumerate(stream):
            if epoch == 0 and i == 0:
                assert step.state is None  # reset at the first window
            step(model, batch, opt)
            if epoch == 0 and i == 5:  # a mid-epoch checkpoint
                saved = copy.deepcopy((model.state_dict(), opt.state_dict(),
                                       stream.state_dict(), step.state_dict()))  # fmt: skip
        assert step.state is not None
    model2, opt2, stream2, step2 = fresh()
    model2.load_state_dict(saved[0])
    opt2.load_state_dict(saved[1])
    stream2.load_state_dict(saved[2])
    step2.load_state_dict(saved[3])
    for _ in range(2):  # the rest of epoch 0, then epoch 1
        for batch in stream2:
            step2(model2, batch, opt2)
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(a, b)


def test_report_shows_generated_text_and_shortens_a_saved_vocabulary(tmp_path):
    import json

    from rnnlab.evaluation.report import render_report

    run = tmp_path / "lm"
    (run / "samples").mkdir(parents=True)
    vocab = json.dumps({"level": "word", "unk": "<unk>", "tokens": [f"w{i}" for i in range(500)]})
    config = {"data": {"dataset": "ptb", "vocab": vocab}, "model": {"family": "language-model"}}
    (run / "config.json").write_text(json.dumps({"config": config}))
    (run / "metrics.jsonl").write_text(
        "".join(
            json.dumps({"epoch": e, "val_loss": 5.0 - e, "val_perplexity": 150.0 - e}) + "\n"
            for e in (1, 2)
        )  # fmt: skip
    )
    (run / "samples" / "epoch-002.txt").write_text("--- temperature 0.5\nthe <cat> sat\n")
    page = render_report([run], out_dir=tmp_path / "out").read_text()
    assert "Generated text" in page and "the &lt;cat&gt; sat" in page
    assert "w499" not in page and "characters)" in page  # the vocabulary is not printed whole
