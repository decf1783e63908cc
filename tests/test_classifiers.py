"""Classifiers: Listing 5.2's parameter count, shapes, padding honoured, every weight trains."""

import pytest
import torch
import torch.nn.functional as F

from rnnlab.layers import summary
from rnnlab.models.classifiers import (
    CNNClassifier,
    MLPClassifier,
    SequenceClassifier,
    SequenceRegressor,
)


def test_listing_5_2_model_has_the_printed_parameter_counts():
    model = SequenceClassifier("simple_rnn", 28, 256, 10, dropout=0.3)
    table = summary(model, (28, 28), print_fn=None)
    assert "72960" in table and "2570" in table and "Total params: 75,530" in table


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru", "bilstm"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_sequence_classifier_honours_lengths(kind, num_layers):
    model = SequenceClassifier(kind, 3, 4, 5, num_layers=num_layers).eval()
    x = torch.randn(2, 6, 3)
    lengths = torch.tensor([6, 4])
    padded = x.clone()
    padded[1, 4:] = 7.0  # garbage past the valid prefix must not matter
    out = model(padded, lengths)
    assert out.shape == (2, 5)
    torch.testing.assert_close(out[1], model(x[1:2, :4])[0])


def test_one_step_changes_every_parameter():
    model = SequenceClassifier("lstm", 3, 4, 5, num_layers=2, bidirectional=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    F.cross_entropy(model(torch.randn(4, 6, 3)), torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def test_regressor_runs_per_step_and_refuses_bidirectional():
    model = SequenceRegressor("gru", 2, 4, num_layers=2)
    y, state = model.run(torch.randn(3, 7, 2))
    assert y.shape == (3, 7, 1) and len(state) == 2
    torch.testing.assert_close(model.eval()(torch.randn(3, 7, 2)).shape, (3, 1))
    with pytest.raises(ValueError, match="forward only"):
        SequenceRegressor("bilstm", 2, 4)


@pytest.mark.parametrize("shape", [(2, 28, 28), (2, 1, 28, 28)])
def test_image_classifiers_take_both_layouts(shape):
    x = torch.rand(*shape)
    assert CNNClassifier((28, 28), 10)(x).shape == (2, 10)
    assert MLPClassifier((28, 28), 10, hidden_sizes=(8,))(x).shape == (2, 10)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="`kind`"):
        SequenceClassifier("transformer", 3, 4, 5)
    with pytest.raises(ValueError, match="`num_classes`"):
        SequenceClassifier("lstm", 3, 4, 1)
    with pytest.raises(ValueError, match="`image_size`"):
        CNNClassifier((30, 30))
