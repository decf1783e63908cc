"""Dataset registry: digits split, search order, validation, verified download from a local
HTTP server (good, corrupted, truncated, slow), describe(), and the real shared files (slow)."""

import dataclasses
import gzip
import hashlib
import http.server
import os
import threading
import time

import numpy as np
import pytest
import torch

from rnnlab.data import datasets as D
from rnnlab.data.idx import write_idx

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No real home cache, env folder or system datasets leak into a test."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RNNLAB_DATA", raising=False)
    monkeypatch.setattr(D, "SYSTEM_DIR", tmp_path / "system")


def make_set(folder, n_train=12, n_test=6, gz=True, seed=0):
    """Write a tiny valid MNIST-format set into ``folder``; return {filename: bytes}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = D.FILES[split]
        if not gz:
            images, labels = images[:-3], labels[:-3]
        write_idx(folder / images, rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / labels, (np.arange(n) % 10).astype(np.uint8))
    return {p.name: p.read_bytes() for p in folder.iterdir()}


# --- digits ------------------------------------------------------------------------------


def test_digits_split_is_fixed_and_stratified():
    train, test = D.load("digits"), D.load("digits", "test")
    assert (len(train), len(test)) == (1437, 360)
    assert train.images.shape == (1437, 8, 8) and train.images.dtype == torch.float32
    assert train.labels.dtype == torch.int64 and train.class_names == list("0123456789")
    assert 0.0 <= float(train.images.min()) and float(train.images.max()) == 1.0
    counts = torch.bincount(test.labels, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37
    again = D.load("digits", "test")
    assert torch.equal(again.images, test.images) and torch.equal(again.labels, test.labels)
    image, label = train[3]
    assert image.shape == (8, 8) and label.dtype == torch.int64
    batch = next(iter(torch.utils.data.DataLoader(train, batch_size=5)))
    assert batch[0].shape == (5, 8, 8)


def test_bad_name_and_split():
    with pytest.raises(ValueError, match="`name` must be one of"):
        D.load("cifar")
    with pytest.raises(ValueError, match="`split` must be one of"):
        D.load("digits", "valid")


# --- search order ------------------------------------------------------------------------


def test_search_order(tmp_path, monkeypatch):
    make_set(tmp_path / "system" / "mnist", n_train=1)
    assert len(D.load("mnist", root=None)) == 1
    make_set(tmp_path / "home" / ".cache" / "rnnlab" / "mnist", n_train=2)
    assert len(D.load("mnist")) == 2
    make_set(tmp_path / "env" / "mnist", n_train=3)  # parent form
    monkeypatch.setenv("RNNLAB_DATA", str(tmp_path / "env"))
    assert len(D.load("mnist")) == 3
    make_set(tmp_path / "envdirect", n_train=4)  # folder holding the files
    monkeypatch.setenv("RNNLAB_DATA", str(tmp_path / "envdirect"))
    assert len(D.load("mnist")) == 4
    make_set(tmp_path / "root" / "mnist", n_train=5)
    ds = D.load("mnist", root=tmp_path / "root")
    assert len(ds) == 5 and ds.location == str(tmp_path / "root" / "mnist")
    make_set(tmp_path / "rootdirect", n_train=6, gz=False)  # uncompressed names
    assert len(D.load("mnist", root=str(tmp_path / "rootdirect"))) == 6
    assert len(D.load("mnist", "test", root=tmp_path / "rootdirect")) == 6


def test_not_found_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_DATA", str(tmp_path / "env"))
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.load("fashion-mnist", root=tmp_path / "r")
    msg = str(err.value)
    for place in [
        tmp_path / "r",
        tmp_path / "r" / "fashion-mnist",
        tmp_path / "env" / "fashion-mnist",
        tmp_path / "home" / ".cache" / "rnnlab" / "fashion-mnist",
        tmp_path / "system" / "fashion-mnist",
    ]:
        assert str(place) in msg
    assert "rnnlab datasets download fashion-mnist" in msg and "--data-dir" in msg
    assert isinstance(err.value, FileNotFoundError)


# --- validation --------------------------------------------------------------------------


def test_validation_errors_name_the_file(tmp_path):
    folder = tmp_path / "d"
    make_set(folder)
    labels = folder / "train-labels-idx1-ubyte.gz"
    images = folder / "train-images-idx3-ubyte.gz"
    write_idx(labels, np.zeros(11, dtype=np.uint8))
    with pytest.raises(ValueError, match="12 images but .* 11 labels"):
        D.load("mnist", root=folder)
    write_idx(labels, np.full(12, 10, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"train-labels.*\[0, 10\)"):
        D.load("mnist", root=folder)
    write_idx(labels, np.zeros(12, dtype=np.uint8))
    write_idx(images, np.zeros((12, 27, 28), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"train-images.*\(N, 28, 28\)"):
        D.load("mnist", root=folder)
    bad = np.zeros((12, 28, 28), dtype=np.float32)
    bad[0, 0, 0] = np.nan
    write_idx(images, bad)
    with pytest.raises(ValueError, match="train-images.*finite"):
        D.load("mnist", root=folder)


# --- download ----------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        mode, _, name = self.path.strip("/").partition("/")
        body = self.files.get(name)
        if body is None or mode not in ("good", "corrupt", "truncated", "slow"):
            self.send_error(404)
            return
        if mode == "slow":
            time.sleep(1.0)
        if mode == "corrupt":
            body = body[:-1] + bytes([body[-1] ^ 1])
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 100 * (mode == "truncated")))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Serve a generated set at http://127.0.0.1:PORT/<mode>/<file>; CHECKSUMS point at it."""
    files = make_set(tmp_path / "served")
    _Handler.files = files
    checks = {
        name: (D.Checksum("md5", hashlib.md5(data).hexdigest()),)
        if "labels" in name
        else (D.Checksum("sha256", hashlib.sha256(data).hexdigest()),)
        for name, data in files.items()
    }
    monkeypatch.setitem(D.CHECKSUMS, "mnist", checks)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_download_good(server, tmp_path):
    folder = D.download("mnist", tmp_path / "data", base_url=server + "/good")
    assert folder == tmp_path / "data" / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(D.CHECKSUMS["mnist"])
    assert len(D.load("mnist", root=tmp_path / "data")) == 12
    D.download("mnist", tmp_path / "data", base_url=server + "/missing")  # all valid: no fetch


@pytest.mark.parametrize(
    ("mode", "message"),
    [("corrupt", "checksum mismatch"), ("truncated", "IncompleteRead|truncated"),
     ("slow", "timed out"), ("missing", "404")],
)  # fmt: skip
def test_download_failures_leave_nothing(server, tmp_path, mode, message):
    with pytest.raises(D.DownloadError, match=message):
        D.download("mnist", tmp_path / "data", base_url=f"{server}/{mode}", timeout=0.5)
    assert list((tmp_path / "data" / "mnist").iterdir()) == []


def test_mirrors_tried_in_turn_and_load_downloads(server, tmp_path, monkeypatch):
    spec = dataclasses.replace(D.DATASETS["mnist"], mirrors=(server + "/corrupt", server + "/good"))
    monkeypatch.setitem(D.DATASETS, "mnist", spec)
    monkeypatch.setenv("RNNLAB_DATA", str(tmp_path / "env"))
    with pytest.raises(D.DatasetNotFoundError):
        D.load("mnist")
    ds = D.load("mnist", "test", download=True)
    assert len(ds) == 6 and ds.location == str(tmp_path / "env" / "mnist")


def test_verify_file_content_checksum(tmp_path):
    files = make_set(tmp_path / "d")
    name = "t10k-labels-idx1-ubyte.gz"
    content = hashlib.sha256(gzip.decompress(files[name])).hexdigest()
    assert D.verify_file(tmp_path / "d" / name, (D.Checksum("sha256", content, of="content"),))
    assert not D.verify_file(tmp_path / "d" / name, (D.Checksum("sha256", "0" * 64),))


def test_describe(tmp_path):
    make_set(tmp_path / "home" / ".cache" / "rnnlab" / "kmnist", n_train=7, n_test=3)
    rows = {r["name"]: r for r in D.describe()}
    assert set(rows) == {"digits", "mnist", "fashion-mnist", "kmnist"}
    assert rows["digits"]["splits"] == {"train": 1437, "test": 360}
    assert rows["kmnist"]["splits"] == {"train": 7, "test": 3}
    assert rows["kmnist"]["location"] == str(tmp_path / "home" / ".cache" / "rnnlab" / "kmnist")
    assert rows["mnist"]["location"] is None
    assert "rnnlab datasets download mnist" in rows["mnist"]["how_to_get"]
    (tmp_path / "home" / ".cache" / "rnnlab" / "kmnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(
        b"\x01\x02\x03\x04"
    )
    rows = {r["name"]: r for r in D.describe()}
    assert rows["kmnist"]["splits"] == {"train": 7, "test": None}
    assert "bad IDX magic" in rows["kmnist"]["error"]


# --- the real files (slow) ---------------------------------------------------------------


@pytest.mark.slow
def test_real_shared_datasets():
    if not os.path.isdir(SHARED):
        pytest.skip("shared/datasets not present")
    expected = {"mnist": (10000, 10000), "fashion-mnist": (60000, 10000)}
    for name, sizes in expected.items():
        for split, size in zip(("train", "test"), sizes, strict=True):
            ds = D.load(name, split, root=SHARED)
            assert len(ds) == size and ds.images.shape[1:] == (28, 28)
            assert float(ds.images.max()) == 1.0 and set(ds.labels.tolist()) == set(range(10))
    # the shared copies are re-gzipped, so their content sha256 (not the .gz md5) matches;
    # the MNIST-10k training files are not the official ones and must not verify
    for name, files in D.CHECKSUMS.items():
        for filename, checks in files.items():
            path = os.path.join(SHARED, name, filename)
            if os.path.exists(path):
                official = not (name == "mnist" and filename.startswith("train"))
                assert D.verify_file(path, checks) == official, path
