"""Masks, go_backwards layouts, per-gate dropout: rnnlab == Keras 3 (torch backend) with
copied weights (and copied dropout masks), plus the invariants with no outside reference."""

import numpy as np
import pytest
import torch
from helpers import spy_step_masks
from test_keras_parity import build_pair, keras_weights

from rnnlab.layers import GRU, LSTM, Bidirectional, SimpleRNN, lengths_to_mask

keras = pytest.importorskip("keras")

B, T, I, H = 6, 5, 4, 6
CASES = [("rnn", True), ("lstm", True), ("gru", True), ("gru", False)]
IDS = ["simple_rnn", "lstm", "gru_reset_after", "gru_textbook"]


def random_mask(seed: int, holes: bool = True) -> torch.Tensor:
    """(B, T) bool: random holes, one empty row, one full row (or right padding)."""
    g = torch.Generator().manual_seed(seed)
    if holes:
        mask = torch.rand(B, T, generator=g) < 0.6
    else:
        mask = lengths_to_mask(torch.randint(0, T + 1, (B,), generator=g), T)
    mask[0] = False  # an empty row
    mask[1] = True
    return mask


def run_keras(ref, x, mask, training=False):
    out = ref(x, mask=mask.numpy(), training=training)
    return [
        keras.ops.convert_to_numpy(t) for t in (out if isinstance(out, (list, tuple)) else [out])
    ]


def pair(kind, reset_after, layout="keras", **flags):
    ours, ref = build_pair(kind, reset_after, **flags)
    ours.go_backwards_layout = layout
    return ours, ref


def _states(kind, state):
    return [state.h, state.c] if kind == "lstm" else [state]


def close(a, b):
    np.testing.assert_allclose(a.detach().numpy(), b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("holes", [True, False], ids=["holes", "right_padded"])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("zero_output", [True, False])
@pytest.mark.parametrize(("kind", "reset_after"), CASES, ids=IDS)
def test_mask_matches_keras(kind, reset_after, zero_output, go_backwards, holes):
    flags = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    ours, ref = pair(kind, reset_after, **flags)
    ref.zero_output_for_mask = zero_output
    ours.zero_output_for_mask = zero_output
    x = np.random.default_rng(0).standard_normal((B, T, I)).astype("float32")
    mask = random_mask(1, holes)
    ref(x)
    ref.set_weights(keras_weights(ours, kind))
    want = run_keras(ref, x, mask)
    for impl in ("auto", "explicit"):
        ours.implementation = impl
        out, state = ours(torch.from_numpy(x), mask=mask)
        close(out, want[0])
        for s, w in zip(_states(kind, state), want[1:], strict=True):
            close(s, w)
    # the last output (no return_sequences) is Keras's with zero_output_for_mask=False
    ours.return_sequences, ref.return_sequences, ref.zero_output_for_mask = False, False, False
    last, _ = ours(torch.from_numpy(x), mask=mask)
    close(last, run_keras(ref, x, mask)[0])


@pytest.mark.parametrize("layout", ["prefix", "keras"])
@pytest.mark.parametrize(("kind", "reset_after"), CASES, ids=IDS)
def test_bidirectional_with_mask_matches_keras(kind, reset_after, layout):
    ours_f, ref_f = pair(kind, reset_after, return_sequences=True)
    ours = Bidirectional(ours_f)
    ours.backward_layer.go_backwards_layout = layout
    ref = keras.layers.Bidirectional(ref_f)
    x = np.random.default_rng(1).standard_normal((B, T, I)).astype("float32")
    ref(x)
    ref.set_weights(
        keras_weights(ours.forward_layer, kind) + keras_weights(ours.backward_layer, kind)
    )
    for holes in (True, False):
        mask = random_mask(2, holes)
        want = run_keras(ref, x, mask)[0]
        got = ours(torch.from_numpy(x), mask=mask)
        if layout == "keras" or not holes:  # prefix with holes reverses each span instead
            close(got, want)
        else:
            assert (got[0] == 0).all()


def test_bidirectional_empty_row_gives_zeros_and_initial_states():
    bi = Bidirectional(LSTM(I, H, return_sequences=True, return_state=True))
    x = torch.randn(B, T, I)
    lengths = torch.tensor([0, 5, 3, 0, 1, 2])
    out, (sf, sb) = bi(x, lengths)
    assert (out[0] == 0).all() and (out[3] == 0).all()
    for s in (sf, sb):
        assert (s.h[[0, 3]] == 0).all() and (s.c[[0, 3]] == 0).all()
    torch.testing.assert_close(out, bi(x, mask=lengths_to_mask(lengths, T))[0])


@pytest.mark.parametrize("layer_cls", [SimpleRNN, LSTM, GRU])
def test_lengths_with_empty_rows_equal_mask_and_keep_the_initial_state(layer_cls):
    layer = layer_cls(I, H, return_sequences=True, return_state=True).double()
    x = torch.randn(B, T, I, dtype=torch.float64)
    lengths = torch.tensor([0, 5, 2, 0, 1, 3])
    h0 = torch.randn(B, H, dtype=torch.float64)
    init = (h0, torch.randn_like(h0)) if layer_cls is LSTM else h0
    for impl in ("fused", "explicit"):
        layer.implementation = impl
        out, state = layer(x, lengths, init)
        assert (out[lengths == 0] == 0).all()
        first = state[0] if layer_cls is LSTM else state
        torch.testing.assert_close(first[lengths == 0], h0[lengths == 0])
        out_m, state_m = layer(x, None, init, mask=lengths_to_mask(lengths, T))
        torch.testing.assert_close(out, out_m, atol=1e-12, rtol=0)
        last = layer_cls(I, H).double()
        last.load_state_dict(layer.state_dict())
        assert (last(x, lengths)[lengths == 0] == 0).all()


@pytest.mark.parametrize("zero_output", [True, False])
@pytest.mark.parametrize("layer_cls", [LSTM, GRU])
def test_fused_and_explicit_agree_on_both_layouts(layer_cls, zero_output):
    torch.manual_seed(0)
    x = torch.randn(B, T, I, dtype=torch.float64)
    lengths = torch.tensor([5, 0, 2, 4, 1, 3])
    results = []
    for layout in ("prefix", "keras"):
        for impl in ("fused", "explicit"):
            torch.manual_seed(3)
            layer = layer_cls(I, H, return_sequences=True, return_state=True, go_backwards=True,
                              go_backwards_layout=layout, zero_output_for_mask=zero_output,
                              implementation=impl).double()  # fmt: skip
            results.append(layer(x, lengths))
    for a, b in ((0, 1), (2, 3)):
        torch.testing.assert_close(results[a], results[b], atol=1e-12, rtol=0)
    # same final state and same sequence reversed differently
    torch.testing.assert_close(results[0][1], results[2][1], atol=1e-12, rtol=0)
    if zero_output:
        row = 2  # length 2: prefix [h1, h0, 0, 0, 0], keras [0, 0, 0, h1, h0]
        torch.testing.assert_close(results[0][0][row, :2], results[2][0][row, -2:])
        assert (results[2][0][row, :-2] == 0).all() and (results[0][0][row, 2:] == 0).all()


# ---- per-gate dropout ------------------------------------------------------------------------


def keras_masks(ours_masks, kind):
    """Our per-gate masks (G, B, ·) in torch gate order -> Keras's list (GRU z, r, h)."""
    order = [1, 0, 2] if kind == "gru" else range(ours_masks.size(0))
    return [ours_masks[g] for g in order]


@pytest.mark.parametrize(("kind", "reset_after"), [c for c in CASES if c[0] != "rnn"],
                         ids=IDS[1:])  # fmt: skip
def test_per_gate_dropout_matches_keras_with_the_same_masks(kind, reset_after):
    flags = dict(return_sequences=True, dropout=0.3, recurrent_dropout=0.4)
    ours, ref = build_pair(kind, reset_after, **flags)
    ours.dropout_per_gate = True
    x = np.random.default_rng(0).standard_normal((B, T, I)).astype("float32")
    ref(x)
    ref.set_weights(keras_weights(ours, kind))
    ours.train()
    in_mask, rec_mask = ours.dropout_masks(B, torch.from_numpy(x))
    assert in_mask.shape == (ours.cell.gates, B, I) and rec_mask.shape == (ours.cell.gates, B, H)
    ours.dropout_masks = lambda *a: (in_mask, rec_mask)
    ref.cell.get_dropout_mask = lambda inp: keras_masks(in_mask, kind)
    ref.cell.get_recurrent_dropout_mask = lambda inp: keras_masks(rec_mask, kind)
    want = run_keras(ref, x, torch.ones(B, T, dtype=torch.bool), training=True)[0]
    close(ours(torch.from_numpy(x)), want)


def test_per_gate_masks_structure_statistics_and_seed():
    layer = LSTM(I, H, dropout=0.5, recurrent_dropout=0.25, dropout_per_gate=True, seed=7)
    x = torch.randn(4000, T, I)
    in_mask, rec_mask = layer.dropout_masks(4000, x)
    # Keras (implementation=1): 4 independent masks per sequence on inputs and on the state
    assert in_mask.shape == (4, 4000, I) and rec_mask.shape == (4, 4000, H)
    assert set(in_mask.unique().tolist()) == {0.0, 2.0}
    assert rec_mask.unique().tolist() == pytest.approx([0.0, 1 / 0.75])
    assert abs((in_mask == 0).float().mean().item() - 0.5) < 0.01
    assert abs((rec_mask == 0).float().mean().item() - 0.25) < 0.01
    # gates draw independently: P(two gates agree) = p^2 + (1-p)^2
    agree = (rec_mask[0] == rec_mask[1]).float().mean().item()
    assert abs(agree - (0.25**2 + 0.75**2)) < 0.01
    again = LSTM(I, H, dropout=0.5, recurrent_dropout=0.25, dropout_per_gate=True, seed=7)
    torch.testing.assert_close(again.dropout_masks(4000, x)[1], rec_mask)
    shared = LSTM(I, H, recurrent_dropout=0.25, seed=7)
    assert shared.dropout_masks(4000, x)[1].shape == (4000, H)
    assert not torch.equal(layer.dropout_masks(4000, x)[1], rec_mask), "a new mask per call"


def test_per_gate_mask_is_constant_over_time_in_the_loop():
    layer = GRU(
        I,
        H,
        recurrent_dropout=0.5,
        dropout_per_gate=True,
        return_sequences=True,
        implementation="reference",
    )  # the loop that calls cell.step
    seen = spy_step_masks(layer)
    layer(torch.randn(B, T, I))
    assert len(seen) == T and seen[0].shape == (3, B, H)
    assert all(m is seen[0] for m in seen)


def test_seeded_layers_reproduce_outputs_without_the_global_rng():
    a = LSTM(I, H, dropout=0.3, recurrent_dropout=0.3, seed=11, return_sequences=True)
    b = LSTM(I, H, dropout=0.3, recurrent_dropout=0.3, seed=11, return_sequences=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(B, T, I)
    state = torch.get_rng_state()
    torch.testing.assert_close(a(x), b(x))
    assert torch.equal(state, torch.get_rng_state()), "seeded masks leave the global RNG alone"


# ---- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        (dict(mask=torch.ones(B, T)), TypeError, r"`mask` must be a torch.bool.*float32"),
        (dict(mask=torch.ones(B, T + 1, dtype=torch.bool)), ValueError, r"`mask`.*\(6, 5\)"),
        (dict(mask=[[True] * T] * B), TypeError, "`mask`.*list"),
        (
            dict(mask=torch.ones(B, T, dtype=torch.bool), lengths=torch.ones(B, dtype=torch.long)),
            ValueError,
            "`lengths` or `mask`",
        ),  # fmt: skip
    ],
)
def test_bad_mask_is_one_clear_error(kwargs, err, match):
    with pytest.raises(err, match=match):
        LSTM(I, H)(torch.randn(B, T, I), **kwargs)


def test_fused_refuses_a_mask_with_holes_and_bad_layout_is_refused():
    with pytest.raises(ValueError, match="right padding only"):
        LSTM(I, H, implementation="fused")(torch.randn(B, T, I), mask=random_mask(0))
    with pytest.raises(ValueError, match="`go_backwards_layout`"):
        LSTM(I, H, go_backwards_layout="flip")
    with pytest.raises(TypeError, match="`seed`"):
        LSTM(I, H, seed="7")
