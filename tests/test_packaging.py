"""The package as a user gets it: ``python -m build`` makes an sdist and a wheel that
``twine check`` accepts; the wheel holds every preset, the LICENSE and the ``rnnlab`` entry
point; ``pip install .`` into a fresh virtual environment gives a working ``rnnlab``.

The fresh environment reuses the already-installed dependencies (torch, numpy, ...) through a
``.pth`` line pointing at this interpreter's site-packages, so nothing is downloaded; the
build runs without isolation on the installed setuptools, which must meet the floor that
``pyproject.toml`` declares (``setuptools>=77``, for the SPDX ``license`` string)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.name for p in (ROOT / "src" / "rnnlab" / "configs").glob("*.toml"))

pytest.importorskip("build", reason="the `test` extra (build, twine) is not installed")
pytest.importorskip("twine", reason="the `test` extra (build, twine) is not installed")


def _run(*cmd: str | Path, cwd: Path = ROOT, env: dict | None = None) -> str:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                            env=env, timeout=300)  # fmt: skip
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", out)
    return out


def test_the_declared_setuptools_floor_is_met_and_correct():
    import setuptools

    text = (ROOT / "pyproject.toml").read_text()
    assert 'requires = ["setuptools>=77"]' in text and 'license = "MIT"' in text
    assert int(setuptools.__version__.split(".")[0]) >= 77


def test_wheel_and_sdist_hold_presets_license_and_entry_point(dist):
    (wheel,) = dist.glob("rnnlab-*.whl")
    (sdist,) = dist.glob("rnnlab-*.tar.gz")
    _run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist)
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("rnnlab/configs/")) == PRESETS
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "LICENSE not shipped"
    (entry,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "rnnlab = rnnlab.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
    assert not any(n.startswith(("tests/", "docs/", "benchmarks/")) for n in names)
    with tarfile.open(sdist) as tar:
        members = tar.getnames()
    assert any(m.endswith("/LICENSE") for m in members)
    assert sum(m.endswith(".toml") and "/configs/" in m for m in members) == len(PRESETS)


def test_pip_install_into_a_fresh_venv(tmp_path):
    venv = tmp_path / "venv"
    # no pip and no setuptools of its own (3.11's ensurepip brings setuptools 65, below the
    # floor): this interpreter's pip installs into it, building on the setuptools found here
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                .strip())  # fmt: skip
    # the dependencies already installed here, without this interpreter's own rnnlab (an
    # editable install is a .pth finder, which a plain path entry does not run)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-build-isolation",
         "--no-index", ROOT, env=env)  # fmt: skip
    # the installed copy, not the source tree, answers, and finds its presets
    out = _run(venv / "bin" / "rnnlab", "presets", env=env, cwd=tmp_path)
    assert "lstm-rows" in out and "vae-mnist" in out
    where = _run(python, "-c", "import rnnlab; print(rnnlab.__file__)", env=env, cwd=tmp_path)
    assert where.startswith(str(site)), where
