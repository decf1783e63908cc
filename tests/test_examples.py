"""The chapter's listings as examples: each main() runs and prints what the chapter prints."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str):
    if str(EXAMPLES) not in sys.path:  # as `python examples/x.py` runs them: 5.4 imports 5.3
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_listing_5_1_summary(capsys):
    text = _load("listing_5_1_rnn_model").main()
    printed = capsys.readouterr().out
    assert text in printed
    assert re.search(r"simple_rnn \(SimpleRNN\)\s+\(None, 512\)\s+268800", printed)
    assert re.search(r"dense \(Dense\)\s+\(None, 5\)\s+2565", printed)
    assert "Total params: 271,365" in printed and "Non-trainable params: 0" in printed


def test_listing_5_3_dynamic_rnn(capsys):
    result = _load("listing_5_3_dynamic_rnn").main()
    printed = capsys.readouterr().out
    assert "outputs_val shape: (4, 2, 5)" in printed
    assert "states_val  shape: (4, 5)" in printed
    outputs, states = result["outputs"], result["states"]
    assert outputs.shape == (4, 2, 5) and states.shape == (4, 5)
    assert torch.equal(outputs[1, 1], torch.zeros(5)) and (outputs[[0, 2, 3], 1] != 0).all()
    torch.testing.assert_close(states, outputs[torch.arange(4), torch.tensor([1, 0, 1, 1])])
    assert "checked: states_val[b] == outputs_val[b, length_b - 1]" in printed


def test_listing_5_4_dynamic_lstm(capsys):
    module = _load("listing_5_4_dynamic_lstm")
    result = module.main()
    printed = capsys.readouterr().out
    assert "outputs_val shape: (4, 2, 5)" in printed
    assert "states:  LSTMState(h=" in printed and "LSTMStateTuple(c=" in printed
    outputs, state = result["outputs"], result["states"]
    assert torch.equal(outputs[1, 1], torch.zeros(5))
    torch.testing.assert_close(state.h, outputs[torch.arange(4), torch.tensor([1, 0, 1, 1])])
    c, h = state.as_tf1()
    assert c is state.c and h is state.h
    with pytest.raises(RuntimeError, match="instance 0: h is not"):
        module.check_dynamic_lstm_facts(outputs, state._replace(h=state.h * 2), [2, 1, 2, 2])


def test_custom_cell_example_runs_with_a_mask(capsys):
    result = _load("custom_cell").main()
    assert "state: IndState (4, 8) (4, 8)" in capsys.readouterr().out
    outputs, mask = result["outputs"], result["mask"]
    assert outputs.shape == (4, 6, 8) and (outputs[~mask] == 0).all() and (~mask).any()
