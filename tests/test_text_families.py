"""The language-model and text-classify families through the command line: training on a
user's own files, the saved vocabulary, evaluate, generate, the time budget and its exact
resume, and one-line errors for bad input (nothing half-written)."""

import json

import pytest
import torch

from rnnlab.cli import main
from rnnlab.training.checkpoint import load_checkpoint

WORDS = "the cat sat on the mat . a dog ran to the cat . the mat was red .".split()
LM = [
    "--model.family=language-model", "--data.dataset=text", "--model.hidden_size=16",
    "--model.embed_dim=8", "--data.batch_size=4", "--data.bptt=16", "--train.epochs=2",
    "--train.restore_best=false", "--no-progress",
]  # fmt: skip


def _corpus(tmp_path, n=400):
    g = torch.Generator().manual_seed(0)
    lines = [torch.randint(0, len(WORDS), (9,), generator=g) for _ in range(n // 9 * 2)]
    text = "\n".join(" ".join(WORDS[int(i)] for i in line) for line in lines)
    path = tmp_path / "corpus.txt"
    path.write_text(text + "\n")
    return path


def _train(tmp_path, name, extra, capsys):
    argv = ["train", "char-shakespeare", *LM, f"--run.out_dir={tmp_path / 'runs'}",
            f"--run.name={name}", *extra]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    return tmp_path / "runs" / name


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rnnlab: error: ") and "\n" not in err
    return err


def test_char_lm_trains_saves_its_vocabulary_evaluates_and_generates(tmp_path, capsys):
    corpus = _corpus(tmp_path)
    run = _train(tmp_path, "char", [f"--data.path={corpus}"], capsys)
    cfg = json.loads((run / "config.json").read_text())["config"]
    vocab = json.loads(cfg["data"]["vocab"])
    assert vocab["level"] == "char" and sorted(vocab["tokens"]) == sorted(set(corpus.read_text()))
    assert (run / "samples" / "epoch-002.txt").read_text().count("--- temperature") == 3
    assert main(["evaluate", str(run)]) == 0
    out = capsys.readouterr().out
    assert "test_loss" in out and "test_bpc" in out
    argv = ["generate", str(run), "--prime", "the ", "--length", "30", "--seed", "3"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0
    assert capsys.readouterr().out == first and first.startswith("the ")
    assert main([*argv, "--until", "a"]) == 0
    assert capsys.readouterr().out.rstrip("\n").endswith("a")
    assert "'Z', '!'" in _error(capsys, ["generate", str(run), "--prime", "thZe!"])
    assert "--length" in _error(capsys, ["generate", str(run), "--length", "0"])
    assert "bpc" in _error(capsys, ["evaluate", str(run), "--metric", "perplexity"])


def test_word_lm_reports_perplexity_and_refuses_bpc(tmp_path, capsys):
    run = _train(tmp_path, "word", [f"--data.path={_corpus(tmp_path)}", "--data.level=word"],
                 capsys)  # fmt: skip
    assert main(["evaluate", str(run), "--metric", "perplexity"]) == 0
    assert "test_perplexity" in capsys.readouterr().out
    err = _error(capsys, ["evaluate", str(run), "--metric", "bpc"])
    assert "word-level" in err and "perplexity" in err
    assert "'dog!'" in _error(capsys, ["generate", str(run), "--prime", "the dog!"])


def test_time_budget_stops_mid_epoch_and_the_resume_is_bit_exact(tmp_path, capsys):
    corpus = _corpus(tmp_path)
    whole = _train(tmp_path, "whole", [f"--data.path={corpus}", "--train.epochs=1"], capsys)
    cut = _train(tmp_path, "cut", [f"--data.path={corpus}", "--train.time_budget=1e-9"], capsys)
    record = [json.loads(line) for line in (cut / "metrics.jsonl").read_text().splitlines()][0]
    assert record["step"] == 1  # stopped after the first window
    summary = (cut / "summary.txt").read_text()
    assert "time budget" in summary and "train_seconds: " in summary
    assert load_checkpoint(cut / "checkpoints" / "last.pt")["train_seconds"] > 0
    # resume the cut run with no budget: the rest of the stream, with the carried state
    assert main(["train", "--resume", str(cut), "--train.time_budget=0", "--no-progress"]) == 0
    a = load_checkpoint(whole / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(cut / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_time_budget_holds_for_other_families(tmp_path, capsys):
    argv = ["train", "digits-lstm", "--train.epochs=3", "--train.time_budget=1e-9",
            f"--run.out_dir={tmp_path}", "--run.name=d", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    records = (tmp_path / "d" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(records[0])["step"] == 1 and "test_accuracy" in records[-1]


@pytest.mark.parametrize("content", [b"", b"\x00\x01\xfe\xff binary"])
def test_empty_or_binary_corpus_is_one_line_and_leaves_nothing(tmp_path, capsys, content):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    argv = ["train", "char-shakespeare", *LM, f"--data.path={path}",
            f"--run.out_dir={tmp_path / 'runs'}"]  # fmt: skip
    assert "bad.txt" in _error(capsys, argv)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def _labelled(tmp_path, name, lines):
    path = tmp_path / name
    path.write_text("".join(f"{label}\t{text}\n" for label, text in lines))
    return path


CLS = [
    "--model.family=text-classify", "--data.dataset=text", "--model.hidden_size=8",
    "--model.embed_dim=8", "--train.epochs=2", "--data.batch_size=8", "--no-progress",
]  # fmt: skip


def test_text_classifier_on_a_users_tsv_and_its_errors(tmp_path, capsys):
    sents = [("pos", "a good film"), ("neg", "a bad film"), ("pos", "good good"),
             ("neg", "bad bad")] * 10  # fmt: skip
    train = _labelled(tmp_path, "train.tsv", sents)
    test = _labelled(tmp_path, "test.tsv", sents[:8])
    common = ["train", "sst2-bilstm", *CLS, f"--data.train={train}", f"--run.out_dir={tmp_path}"]
    assert main([*common, f"--data.test={test}", "--run.name=ok"]) == 0
    cfg = json.loads((tmp_path / "ok" / "config.json").read_text())["config"]
    assert json.loads(cfg["data"]["label_names"]) == ["neg", "pos"]
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "ok")]) == 0
    assert "test_accuracy" in capsys.readouterr().out
    odd = _labelled(tmp_path, "odd.tsv", [("pos", "good"), ("meh", "so so")])
    err = _error(capsys, [*common, f"--data.test={odd}", "--run.name=odd"])
    assert "label 'meh'" in err and "odd.tsv, line 2" in err
    nolabel = tmp_path / "nolabel.tsv"
    nolabel.write_text("pos\tgood\n\tno label\n")
    err = _error(capsys, [*common, f"--data.test={nolabel}", "--run.name=nl"])
    assert "nolabel.tsv, line 2" in err
    assert not (tmp_path / "odd").exists() and not (tmp_path / "nl").exists()
    # the own-file keys are seq-classify's; the old names are refused with the new one
    for old, new in [("path", "train"), ("val_path", "val"), ("test_path", "test")]:
        err = _error(capsys, [*common, f"--data.{old}={test}", "--run.name=old"])
        assert f"`data.{old}` is `data.{new}` for family text-classify" in err
    err = _error(capsys, ["train", "sst2-bilstm", *CLS, f"--run.out_dir={tmp_path}"])
    assert "`data.train` must name" in err
    assert not (tmp_path / "old").exists()


def test_text_classifier_predicts_class_names_and_probabilities(tmp_path, capsys):
    sents = [("pos", "A Good film"), ("neg", "a bad Film"), ("pos", "good GOOD"),
             ("neg", "Bad bad")] * 10  # fmt: skip
    train = _labelled(tmp_path, "train.tsv", sents)
    test = _labelled(tmp_path, "test.tsv", sents[:6])
    argv = ["train", "sst2-bilstm", *CLS, "--train.epochs=8", "--train.lr=0.03",
            "--train.monitor=accuracy", "--model.word_dropout=0.1",
            "--model.pooling=max_mean", f"--data.train={train}", f"--data.test={test}",
            "--data.lowercase=true", f"--run.out_dir={tmp_path}", "--run.name=r"]  # fmt: skip
    assert main(argv) == 0
    run = tmp_path / "r"
    vocab = json.loads(json.loads((run / "config.json").read_text())["config"]["data"]["vocab"])
    assert sorted(vocab["tokens"][2:]) == ["a", "bad", "film", "good"]  # lower-cased
    # the test split's confusion matrix counts its 6 labels (not the lengths tensor)
    confusion = json.loads((run / "confusion.json").read_text())
    assert confusion["labels"] == ["neg", "pos"] and sum(map(sum, confusion["matrix"])) == 6
    assert [sum(row) for row in confusion["matrix"]] == [3, 3]
    sentences = tmp_path / "new.txt"
    sentences.write_text("Good GOOD film\n\nbad BAD\nneg\tan unseen-word bad\ngood good film\n")
    out = tmp_path / "pred.csv"
    capsys.readouterr()
    assert main(["predict", str(run), str(sentences), "--out", str(out)]) == 0
    rows = [line.split(",") for line in out.read_text().splitlines()]
    assert rows[0] == ["line", "label", "p_neg", "p_pos"]
    assert [r[0] for r in rows[1:]] == ["1", "3", "4", "5"]  # the blank line 2 is skipped
    assert rows[1][1:] == rows[4][1:]  # lower-cased as in training
    for row in rows[1:]:
        p = [float(v) for v in row[2:]]
        assert abs(sum(p) - 1) < 1e-5 and row[1] == ["neg", "pos"][p.index(max(p))]
    assert [r[1] for r in rows[1:]] == ["pos", "neg", "neg", "pos"]
    assert "does not exist" in _error(capsys, ["predict", str(run), str(tmp_path / "no.txt")])
    blank = tmp_path / "blank.txt"
    blank.write_text("pos\t\n")  # a label, no text
    assert "no sentences" in _error(capsys, ["predict", str(run), str(blank)])
    err = _error(capsys, ["attack", str(run)])
    assert "text-classify" in err and "word ids" in err
    # an ensemble of one run twice is that run; its test accuracy is evaluate's
    from rnnlab.evaluation.ensemble import ensemble_accuracy

    acc = ensemble_accuracy([run, run])
    assert acc["test"]["members"][0] == acc["test"]["members"][1] == acc["test"]["ensemble"]
    assert main(["evaluate", str(run)]) == 0
    assert f"test_accuracy: {acc['test']['ensemble']:.4f}" in capsys.readouterr().out
    assert set(acc) == {"val", "test"}
    assert main(["ensemble", str(run), str(run)]) == 0
    out = capsys.readouterr().out
    assert f"test: members {acc['test']['members'][0]:.4f}" in out
    assert f"ensemble {acc['test']['ensemble']:.4f}" in out
    err = _error(capsys, ["ensemble", str(run), str(tmp_path / "nowhere")])
    assert "nowhere" in err and "not a run folder" in err


def test_ensemble_averages_the_members_probabilities():
    from rnnlab.evaluation.ensemble import mean_probabilities, split_probabilities

    torch.manual_seed(0)
    models = [torch.nn.Linear(3, 2) for _ in range(3)]
    x = torch.randn(7, 3)
    probs = [split_probabilities(m, (x, torch.zeros(7))) for m in models]
    by_hand = sum(torch.softmax(m(x), -1) for m in models) / 3
    torch.testing.assert_close(mean_probabilities(probs), by_hand)
    with pytest.raises(ValueError, match="at least one"):
        mean_probabilities([])
