"""Synthetic tasks: determinism, shapes, layouts and the published baselines."""

import math

import pytest
import torch

from rnnlab.data.synthetic import (
    adding_problem,
    copy_memory,
    copy_memory_baseline,
    synthetic_images,
    variable_length_sequences,
)


def test_adding_problem_layout_and_baseline():
    x, y = adding_problem(20000, 50, seed=1)
    assert x.shape == (20000, 50, 2) and y.shape == (20000, 1)
    markers = x[:, :, 1]
    assert (markers.sum(1) == 2).all()
    assert (markers[:, :25].sum(1) == 1).all() and (markers[:, 25:].sum(1) == 1).all()
    assert torch.allclose(y[:, 0], (x[:, :, 0] * markers).sum(1))
    assert 0 <= float(x[:, :, 0].min()) and float(x[:, :, 0].max()) < 1
    mse_of_constant_one = float(((y - 1.0) ** 2).mean())
    assert abs(mse_of_constant_one - 1 / 6) < 0.01


def test_adding_problem_determinism():
    a, b = adding_problem(8, 10, seed=0), adding_problem(8, 10, seed=0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], adding_problem(8, 10, seed=1)[0])
    with pytest.raises(ValueError, match="`T` >= 2"):
        adding_problem(2, 1)


def test_copy_memory_layout_and_baseline():
    T, L, K = 15, 4, 6
    x, y = copy_memory(50, T, n_symbols=K, length=L, seed=2)
    assert x.shape == y.shape == (50, T + 2 * L) and x.dtype == y.dtype == torch.int64
    assert ((x[:, :L] >= 1) & (x[:, :L] <= K)).all()
    assert (x[:, L : L + T - 1] == 0).all() and (x[:, L + T - 1] == K + 1).all()
    assert (x[:, L + T :] == 0).all()
    assert (y[:, : T + L] == 0).all() and torch.equal(y[:, T + L :], x[:, :L])
    # memoryless strategy: blank with certainty, then uniform over the K symbols
    probs = torch.zeros(T + 2 * L, K + 2)
    probs[: T + L, 0] = 1.0
    probs[T + L :, 1 : K + 1] = 1.0 / K
    ce = -torch.log(probs[torch.arange(T + 2 * L), y]).mean()
    assert math.isclose(float(ce), copy_memory_baseline(T, K, L), rel_tol=1e-5)
    assert math.isclose(copy_memory_baseline(T, K, L), L * math.log(K) / (T + 2 * L))
    assert torch.equal(x, copy_memory(50, T, K, L, seed=2)[0])
    assert not torch.equal(x, copy_memory(50, T, K, L, seed=3)[0])


def test_variable_length_sequences():
    x, lengths, labels = variable_length_sequences(200, 3, 9, n_features=2, seed=0)
    assert x.shape == (200, 9, 2) and lengths.dtype == labels.dtype == torch.int64
    assert int(lengths.min()) >= 3 and int(lengths.max()) <= 9
    assert len(set(lengths.tolist())) > 3
    for i in range(200):
        assert (x[i, lengths[i] :] == 0).all() and (x[i, : lengths[i], 0] != 0).all()
    assert torch.equal(labels, (x[:, :, 0].sum(1) > 0).long())
    assert 0.3 < float(labels.float().mean()) < 0.7
    again = variable_length_sequences(200, 3, 9, n_features=2, seed=0)
    assert torch.equal(x, again[0]) and torch.equal(lengths, again[1])
    assert not torch.equal(lengths, variable_length_sequences(200, 3, 9, 2, seed=1)[1])
    with pytest.raises(ValueError, match="min_len"):
        variable_length_sequences(2, 5, 4)


def test_synthetic_images():
    ds = synthetic_images(30, (6, 5), n_classes=3, seed=0)
    assert ds.images.shape == (30, 6, 5) and ds.images.dtype == torch.float32
    assert 0 <= float(ds.images.min()) and float(ds.images.max()) <= 1
    assert torch.bincount(ds.labels).tolist() == [10, 10, 10] and ds.num_classes == 3
    again = synthetic_images(30, (6, 5), n_classes=3, seed=0)
    assert torch.equal(ds.images, again.images) and torch.equal(ds.labels, again.labels)
    assert not torch.equal(ds.images, synthetic_images(30, (6, 5), 3, seed=1).images)
    image, label = ds[0]
    assert image.shape == (6, 5) and 0 <= int(label) < 3
