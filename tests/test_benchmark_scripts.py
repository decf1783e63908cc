"""Bad input to the benchmark scripts: one line on stderr, exit 2, nothing written."""

import importlib.util
from pathlib import Path


def _script(name: str):
    path = Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_robustness_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "notrun").mkdir()
    out = tmp_path / "out"
    code = _script("robustness").main([str(tmp_path / "notrun"), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err, err
    assert err.startswith("robustness.py: error: RUN: ") and "not a run folder" in err
    assert not out.exists()
