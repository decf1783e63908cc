"""Parity of rnnlab.attacks with torchattacks (Harry24k/adversarial-attacks-pytorch) on the same
model and inputs: FGSM outputs equal; PGD (same eps, alpha, steps, random start) robust
accuracy within 1 point; PGD without random start and BIM equal too (both deterministic).

torchattacks is a test-only dependency installed without its dependencies, because its
``requirements`` pull in torchvision, which it never imports for these attacks and which would
replace our pinned CPU torch::

    pip install --no-deps torchattacks

The model is a small CNN (CNNClassifier, 8x8 input) trained for a few seconds on scikit-learn's
digits, so that PGD at the chosen eps leaves a robust accuracy well inside (0, 1) and the
comparison means something. An LSTM row classifier
(rnnlab's own layer, eval mode) is checked for FGSM equality too: torchattacks needs
``set_model_training_mode`` for cuDNN RNNs on GPU, but on CPU both take eval-mode gradients.
"""

import pytest
import torch
import torch.nn.functional as F

torchattacks = pytest.importorskip("torchattacks")

from rnnlab.attacks import bim, fgsm, pgd  # noqa: E402
from rnnlab.data import load  # noqa: E402
from rnnlab.evaluation.robustness import robust_accuracy  # noqa: E402
from rnnlab.models.classifiers import CNNClassifier, SequenceClassifier  # noqa: E402


def _digits(split):
    ds = load("digits", split)  # float32 (N, 8, 8) in [0, 1]
    return ds.images, ds.labels


def _train(model, epochs=30, lr=3e-3):
    x, y = _digits("train")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(64):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return _train(CNNClassifier((8, 8), 10, channels=(8, 16), hidden_size=32))


@pytest.fixture(scope="module")
def test_set():
    return _digits("test")


def test_inputs_and_model_are_meaningful(cnn, test_set):
    x, y = test_set
    assert x.shape == (360, 8, 8) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert robust_accuracy(cnn, (x, y), None) > 0.9


@pytest.mark.parametrize("eps", [0.0, 0.05, 0.2])
def test_fgsm_outputs_equal(cnn, test_set, eps):
    x, y = test_set
    ours = fgsm(cnn, x, y, eps)
    theirs = torchattacks.FGSM(cnn, eps=eps)(x, y)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


def test_fgsm_outputs_equal_on_recurrent_row_classifier(test_set):
    torch.manual_seed(0)
    model = SequenceClassifier("lstm", 8, 16, 10).eval()
    x, y = test_set
    ours = fgsm(model, x[:64], y[:64], 0.1)
    theirs = torchattacks.FGSM(model, eps=0.1)(x[:64], y[:64])
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


def test_deterministic_pgd_and_bim_equal(cnn, test_set):
    """Without a random start PGD is BIM: the same steps as torchattacks' PGD(random_start=False)
    and BIM. Sign-of-gradient iterations can flip on a rounding tie, so compare element counts
    and robust accuracy rather than demanding every pixel."""
    x, y = test_set
    eps, alpha, steps = 0.15, 0.02, 10
    ours = pgd(cnn, x, y, eps, alpha, steps, random_start=False)
    theirs = torchattacks.PGD(cnn, eps=eps, alpha=alpha, steps=steps, random_start=False)(x, y)
    close = (ours - theirs).abs() <= 1e-5
    assert close.float().mean() > 0.99
    acc = [robust_accuracy(cnn, (a, y), None) for a in (ours, theirs)]
    assert abs(acc[0] - acc[1]) <= 1 / 360 + 1e-9
    ours_bim = bim(cnn, x, y, eps, alpha, steps)
    theirs_bim = torchattacks.BIM(cnn, eps=eps, alpha=alpha, steps=steps)(x, y)
    assert ((ours_bim - theirs_bim).abs() <= 1e-5).float().mean() > 0.99
    torch.testing.assert_close(ours_bim, ours, atol=1e-6, rtol=0)


def test_pgd_robust_accuracy_within_one_point(cnn, test_set):
    """All 1,797 digits (train + test: the model is fixed, only the attacks are compared), so
    that the random starts move robust accuracy by well under a point (measured spread across
    seeds at these settings: <= 0.4 points)."""
    x_train, y_train = _digits("train")
    x, y = torch.cat([x_train, test_set[0]]), torch.cat([y_train, test_set[1]])
    eps, alpha, steps = 0.1, 0.0125, 20
    torch.manual_seed(1)  # torchattacks draws its random start from the global generator
    theirs = torchattacks.PGD(cnn, eps=eps, alpha=alpha, steps=steps, random_start=True)(x, y)
    ours = pgd(cnn, x, y, eps, alpha, steps, generator=torch.Generator().manual_seed(2))
    acc_theirs = robust_accuracy(cnn, (theirs, y), None)
    acc_ours = robust_accuracy(cnn, (ours, y), None)
    clean = robust_accuracy(cnn, (x, y), None)
    assert 0.1 < acc_ours < clean - 0.2, "eps should leave a robust accuracy inside (0, clean)"
    assert abs(acc_ours - acc_theirs) <= 0.01, (acc_ours, acc_theirs)
    assert (ours - x).abs().max() <= eps + 1e-6 and (theirs - x).abs().max() <= eps + 1e-6
