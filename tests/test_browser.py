"""The report page in a real browser: headless Chromium loads the quick tour's report (what
``make run`` writes) and a page of hostile fake runs, at desktop (1280 px) and phone (400 px)
widths: every image decodes (naturalWidth > 0), nothing logs a console message or a JS error,
the page is never wider than the window, every part of the tour has its section, and the
quick-run banner is there. Screenshots at both widths are kept in ``tests/artifacts/`` when
RNNLAB_KEEP_ARTIFACTS is set. Skipped without a Chromium binary, except in CI (``CI`` set),
where ``make test`` installs Debian's chromium and a missing one fails."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from test_report import EVIL, make_fake_run, make_small_run

from rnnlab.evaluation.report import render_report

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
# Injected before the page's own markup: counts images that did not decode, resource load
# errors (captured, they do not bubble) and uncaught JS errors, and whether the page is wider
# than the window (horizontal scrolling at 1280 px), and reports them in the title.
PROBE = """<script>
window.__errors = 0;
window.addEventListener("error", function () { window.__errors++; }, true);
window.addEventListener("load", function () {
  var broken = 0, images = document.images;
  for (var i = 0; i < images.length; i++) {
    if (!images[i].complete || images[i].naturalWidth === 0) broken++;
  }
  var wide = document.documentElement.scrollWidth > window.innerWidth;
  document.title = "CHECK images=" + images.length + " broken=" + broken +
    " errors=" + window.__errors + " wide=" + wide;
});
</script>"""
WIDTH, HEIGHT = 1280, 2000
WIDTHS = (1280, 400)  # a desktop window and a phone


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    message = "no chromium/chromium-browser on PATH (Debian: apt-get install chromium)"
    if os.environ.get("CI"):  # `make test` installs it in CI: a skip there would hide a gap
        pytest.fail(message + "; CI must run the browser tests")
    pytest.skip(message)


def _run(args: list[str], profile: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    """Run Chromium in its own process group so a hang is killed with all its children."""
    cmd = [_chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"chromium did not finish within {timeout}s: {' '.join(cmd)}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.fixture(scope="module")
def report_page(tmp_path_factory) -> Path:
    _chromium()  # skip before rendering anything
    root = tmp_path_factory.mktemp("browser")
    runs = [make_fake_run(root / "runs" / "lstm"), make_fake_run(root / "runs" / "gru", 1)]
    adding = make_small_run(root / "runs" / "adding", {"train_loss": [1.0, 0.5, 0.4],
                            "val_loss": [0.9, 0.6, 0.5]}, summary__txt="x" * 300)  # fmt: skip
    groups = {"Classifiers: LSTM vs GRU": runs, "The adding problem": [adding]}
    notes = {"Classifiers: LSTM vs GRU": "lstm  test accuracy 0.91\n" + EVIL + " " + "w" * 400}
    return render_report([*runs, adding], title="rnnlab report: browser test", groups=groups,
                         notes=notes)  # fmt: skip


@pytest.fixture(scope="module")
def tour_page(tmp_path_factory) -> Path:
    """The quick tour's report (a few seconds of training per part)."""
    _chromium()
    from rnnlab import tour

    out = tmp_path_factory.mktemp("tour")
    with contextlib.redirect_stdout(io.StringIO()):
        tour.run_tour(out=out, quick=True, progress=False)
    return out / "report.html"


def _probe(page: Path, width: int, profile: Path) -> tuple[str, str]:
    """Load ``page`` (with the probe injected) at ``width``; return (probe title, DOM)."""
    html = page.read_text(encoding="utf-8")
    probe = page.with_name(f"probe-{width}.html")  # beside the page: same relative links
    probe.write_text(html.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    result = _run(
        ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom",
         f"--window-size={width},{HEIGHT}", probe.as_uri()],
        profile,
    )  # fmt: skip
    title = re.search(r"<title>(CHECK[^<]*)</title>", result.stdout)
    assert title, f"the probe did not run (rc {result.returncode}): {result.stderr[-2000:]}"
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    return title.group(1), result.stdout


@pytest.mark.parametrize("width", WIDTHS)
def test_every_image_loads_without_errors(report_page, tmp_path, width):
    expected = len(re.findall(r"<img\b", report_page.read_text(encoding="utf-8")))
    assert expected > 0
    title, _ = _probe(report_page, width, tmp_path / "profile")
    assert title == f"CHECK images={expected} broken=0 errors=0 wide=false"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_tour_report_in_a_browser(tour_page, tmp_path, width):
    from rnnlab import tour

    html = tour_page.read_text(encoding="utf-8")
    expected = len(re.findall(r"<img\b", html))
    assert expected >= 10
    title, dom = _probe(tour_page, width, tmp_path / "profile")
    assert title == f"CHECK images={expected} broken=0 errors=0 wide=false"
    sections = re.findall(r'<h2 id="[^"]*">([^<]*)</h2>', dom)
    assert [s.split(" — ")[0] for s in sections] == list(tour.ORDER)
    assert 'class="banner"' in dom and "Quick tour (--quick)" in dom
    assert "latent map: the posterior mean" in dom  # captioned as what it is
    assert dom.count('<details class="epochs">') >= 3  # earlier epochs behind one control
    _screenshot(tour_page, tmp_path, width, f"tour-report-{width}.png")


def _screenshot(page: Path, tmp_path: Path, width: int, name: str) -> None:
    shot = tmp_path / name
    result = _run(
        [f"--screenshot={shot}", f"--window-size={width},{HEIGHT}", "--hide-scrollbars",
         page.as_uri()],
        tmp_path / "profile-shot",
    )  # fmt: skip
    assert shot.is_file(), f"no screenshot (rc {result.returncode}): {result.stderr[-2000:]}"
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(head[16:20], "big") == width
    if os.environ.get("RNNLAB_KEEP_ARTIFACTS"):
        artifacts = Path(__file__).parent / "artifacts"
        artifacts.mkdir(exist_ok=True)
        shutil.copyfile(shot, artifacts / name)


def test_screenshot(report_page, tmp_path):
    _screenshot(report_page, tmp_path, WIDTH, "report.png")
