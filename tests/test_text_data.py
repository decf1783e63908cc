"""Text data: vocabularies, corpora splits, contiguous LM batching, labelled sentences."""

import pytest
import torch

from rnnlab.data.text import EOS, UNK, TextDataError, Vocabulary, read_text, tokenize
from rnnlab.data.text_classification import (
    LabelSet,
    build_word_vocab,
    encode_labelled,
    load_classification,
    read_labelled,
)
from rnnlab.data.text_corpora import LMStream, load_corpus, split_fraction


def test_lm_stream_equals_hand_computed_alphabet():
    # the module docstring's diagram: a..z, B = 4 columns of 6 targets, bptt = 4
    ids = torch.arange(26)
    stream = LMStream(ids, batch_size=4, bptt=4)
    windows = list(stream)
    assert len(stream) == len(windows) == 2 and stream.tokens == 24
    assert [bool(w[2]) for w in windows] == [True, False]  # the first window of a pass
    x0, y0, _ = windows[0]
    assert x0.tolist() == [[0, 1, 2, 3], [6, 7, 8, 9], [12, 13, 14, 15], [18, 19, 20, 21]]
    assert y0.tolist() == [[1, 2, 3, 4], [7, 8, 9, 10], [13, 14, 15, 16], [19, 20, 21, 22]]
    x1, y1, _ = windows[1]
    assert x1.tolist() == [[4, 5], [10, 11], [16, 17], [22, 23]]
    assert y1.tolist() == [[5, 6], [11, 12], [17, 18], [23, 24]]
    # every target of the stream but the dropped tail is seen exactly once
    targets = torch.cat([y.flatten() for _, y, _ in windows]).sort().values
    assert targets.tolist() == list(range(1, 25))


def test_lm_stream_resumes_mid_epoch_and_rewinds():
    stream = LMStream(torch.arange(50), batch_size=2, bptt=3)
    it = iter(stream)
    next(it)
    saved = stream.state_dict()
    rest = [x.tolist() for x, _, _ in it]
    again = LMStream(torch.arange(50), batch_size=2, bptt=3)
    again.load_state_dict(saved)
    assert [x.tolist() for x, _, _ in again] == rest
    assert again.position == 0 and len(list(again)) == len(again)  # next epoch from the start


def test_lm_stream_too_short():
    with pytest.raises(TextDataError, match="too short"):
        LMStream(torch.arange(3), batch_size=4, bptt=2)


def test_char_and_word_vocabularies(tmp_path):
    v = Vocabulary.build("hello world", "char")
    assert v.tokens == sorted(set("hello world")) and v.unk is None
    assert v.decode(v.encode("hold")) == "hold"
    with pytest.raises(TextDataError, match="'z'"):
        v.encode("zoo")
    v2 = Vocabulary.build("abc", "char", also="abd")
    assert v2.tokens[-1] == UNK and v2.decode(v2.encode("d")) == UNK
    words = tokenize("the cat\n\nthe dog\n", "word")
    assert words == ["the", "cat", EOS, "the", "dog", EOS]
    w = Vocabulary.build(words, "word")
    assert w.tokens[:2] == ["the", EOS] and UNK in w
    assert w.encode(["bird"]).tolist() == [w.index[UNK]]
    assert Vocabulary.from_dict(w.to_dict()).tokens == w.tokens
    assert len(Vocabulary.build(words, "word", max_size=3)) == 3


def test_corpus_text_split_and_vocab_from_train_only(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("ab" * 45 + "c" * 10)
    corpus = load_corpus("text", path=path, level="char")
    assert corpus.vocab.tokens == ["a", "b", UNK]  # c only in the last 10%
    assert len(corpus.train) == 90 and len(corpus.val) == 10 and corpus.test is None
    assert split_fraction("x" * 11) == ("x" * 9, "xx")


def test_ptb_char_derivation(tmp_path):
    for split in ("train", "valid", "test"):
        (tmp_path / f"ptb.{split}.txt").write_text(" ab cd \n e\n")
    corpus = load_corpus("ptb-char", root=tmp_path)
    text = "".join(corpus.vocab.tokens[i] for i in corpus.train)
    assert text == f"ab_cd{EOS}e{EOS}"
    word = load_corpus("ptb", root=tmp_path)
    assert [word.vocab.tokens[i] for i in word.test] == ["ab", "cd", EOS, "e", EOS]


@pytest.mark.parametrize("content", [b"", b"  \n", b"\xff\xfe\x00binary"])
def test_empty_or_binary_corpus_refused(tmp_path, content):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(TextDataError, match="bad.txt"):
        read_text(path)


def test_labelled_formats(tmp_path):
    (tmp_path / "a.txt").write_text("1 a good film\n0 a bad film\n")
    (tmp_path / "b.tsv").write_text("pos\ta good film\nneg\ta bad one\n")
    (tmp_path / "c.csv").write_text('id,text,label\n1,"good, really",pos\n2,bad,neg\n')
    a = read_labelled(tmp_path / "a.txt")
    assert a.labels == ["1", "0"] and a.tokens[0] == ["a", "good", "film"]
    b = read_labelled(tmp_path / "b.tsv")
    assert b.labels == ["pos", "neg"] and b.tokens[1] == ["a", "bad", "one"]
    c = read_labelled(tmp_path / "c.csv")
    assert c.labels == ["pos", "neg"] and c.tokens[0] == ["good,", "really"]
    labels = LabelSet.build(a.labels)
    vocab = build_word_vocab(a)
    ids, y, lengths = encode_labelled(a, vocab, labels)
    assert ids.shape == (2, 3) and y.tolist() == [1, 0] and lengths.tolist() == [3, 3]
    assert vocab.tokens[:2] == ["<pad>", UNK]
    assert LabelSet.build(["10", "9", "b", "a"]).names == ["9", "10", "a", "b"]


def test_label_errors(tmp_path):
    (tmp_path / "nolabel.txt").write_text("1 fine\n\n0\n")
    with pytest.raises(TextDataError, match="nolabel.txt, line 3"):
        read_labelled(tmp_path / "nolabel.txt")
    (tmp_path / "tab.tsv").write_text("pos\tfine\n\tno label here\n")
    with pytest.raises(TextDataError, match="line 2: expected a label"):
        read_labelled(tmp_path / "tab.tsv")
    (tmp_path / "train.txt").write_text("1 good\n0 bad\n")
    (tmp_path / "test.txt").write_text("1 good\n7 odd\n")
    train, test = read_labelled(tmp_path / "train.txt"), read_labelled(tmp_path / "test.txt")
    with pytest.raises(TextDataError, match=r"test.txt, line 2: label '7'"):
        LabelSet.build(train.labels).encode(test)
    (tmp_path / "h.csv").write_text("a,b\n1,2\n")
    with pytest.raises(TextDataError, match="header"):
        read_labelled(tmp_path / "h.csv")


def test_named_classification_sets(tmp_path):
    (tmp_path / "trec").mkdir()
    (tmp_path / "trec" / "TREC.train.all").write_bytes(b"0 How did sister\xf0city ?\n")
    (tmp_path / "trec" / "TREC.test.all").write_bytes(b"4 Where ?\n")
    splits = load_classification("trec", root=tmp_path)
    assert splits["val"] is None and splits["train"].tokens[0][-2] == "sister\xf0city"
