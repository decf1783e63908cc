"""Image datasets by name: a registry, a search path, verified downloads, one dataset type.

``digits`` (scikit-learn's bundled 8x8 digits) is embedded and always there. ``mnist``,
``fashion-mnist`` and ``kmnist`` are read from the standard IDX files (gz or not), looked
for in, in order: ``root``; ``$RNNLAB_DATA``; ``~/.cache/rnnlab/<name>``;
``/usr/share/datasets/<name>`` (Debian's ``dataset-fashion-mnist`` puts Fashion-MNIST
there). ``root`` and ``$RNNLAB_DATA`` may name the folder holding the files or a parent
holding ``<name>/``. ``download`` fetches the files from the official mirrors, checks each
against the published checksums and only then moves it into place.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import os
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from rnnlab.utils import atomic_write

from .idx import IDXError, read_idx, read_idx_header

__all__ = [
    "Checksum", "DatasetNotFoundError", "DownloadError", "ImageDataset", "CHECKSUMS",
    "DATASETS", "describe", "download", "load", "verify_file",
]  # fmt: skip

SPLITS = ("train", "test")
SYSTEM_DIR = Path("/usr/share/datasets")
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


class DatasetNotFoundError(FileNotFoundError):
    """A file-based dataset is in none of the places searched."""


class DownloadError(OSError):
    """No mirror delivered a complete file with the expected checksum."""


@dataclass(frozen=True)
class Checksum:
    """A published digest: ``of="file"`` hashes the bytes as served (usually the .gz),
    ``of="content"`` the decompressed IDX bytes (robust to re-compression)."""

    algorithm: str  # "md5" | "sha256"
    digest: str
    of: str = "file"


@dataclass(frozen=True)
class _Spec:
    title: str
    class_names: tuple[str, ...]
    image_shape: tuple[int, int]
    mirrors: tuple[str, ...] = ()
    source: str = ""


DIGITS = _Spec("scikit-learn digits (UCI optdigits), 8x8", tuple("0123456789"), (8, 8))
DATASETS: dict[str, _Spec] = {
    "digits": DIGITS,
    "mnist": _Spec(
        "MNIST (LeCun, Cortes & Burges), 28x28 digits",
        tuple("0123456789"),
        (28, 28),
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
    "fashion-mnist": _Spec(
        "Fashion-MNIST (Zalando Research), 28x28 grey",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat")
        + ("Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        (28, 28),
        (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
    ),
    "kmnist": _Spec(
        "Kuzushiji-MNIST (ROIS-CODH), 28x28 cursive hiragana",
        ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        (28, 28),
        ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    ),
}


def _md5(d: str) -> Checksum:
    return Checksum("md5", d)


def _content(d: str) -> Checksum:
    return Checksum("sha256", d, of="content")


# A file passes if ANY listed checksum matches. md5s: as published by each dataset's authors
# for the .gz their mirrors serve. Content sha256s: of the decompressed IDX, computed from the
# copies in shared/datasets (Debian's re-gzip of Fashion-MNIST; MNIST's official test set).
CHECKSUMS: dict[str, dict[str, tuple[Checksum, ...]]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": (_md5("f68b3c2dcbeaaa9fbdd348bbdeb94873"),),
        "train-labels-idx1-ubyte.gz": (_md5("d53e105ee54ea40749a09fcbcd1e9432"),),
        "t10k-images-idx3-ubyte.gz": (
            _md5("9fb629c4189551a2d022fa330f9573f3"),
            _content("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        ),
        "t10k-labels-idx1-ubyte.gz": (
            _md5("ec29112dd5afa0611ce80d1b7f02629c"),
            _content("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
        ),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": (
            _md5("8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            _content("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        ),
        "train-labels-idx1-ubyte.gz": (
            _md5("25c81989df183df01b3e8a0aad5dffbe"),
            _content("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        ),
        "t10k-images-idx3-ubyte.gz": (
            _md5("bef4ecab320f06d8554ea6380940ec79"),
            _content("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        ),
        "t10k-labels-idx1-ubyte.gz": (
            _md5("bb300cfdad3c16e7a12a480ee83cd310"),
            _content("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
        ),
    },
    "kmnist": {
        "train-images-idx3-ubyte.gz": (_md5("bdb82020997e1d708af4cf47b453dcf7"),),
        "train-labels-idx1-ubyte.gz": (_md5("e144d726b3acfaa3e44228e80efcd344"),),
        "t10k-images-idx3-ubyte.gz": (_md5("5c965bf0a639b31b8f53240b1b52f4d7"),),
        "t10k-labels-idx1-ubyte.gz": (_md5("7320c461ea6c1c855c0b718fb2a4b134"),),
    },
}


@dataclass(eq=False)
class ImageDataset(Dataset):
    """Grey images ``(N, H, W)`` float32 in [0, 1] with int64 labels ``(N,)``."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    name: str
    split: str
    location: str = ""

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.dtype != torch.float32:
            raise ValueError(
                f"`images` must be float32 (N, H, W), got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.shape != (len(self.images),) or self.labels.dtype != torch.int64:
            raise ValueError(
                f"`labels` must be int64 ({len(self.images)},), got {self.labels.dtype} "
                f"{tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int]:
        return (int(self.images.shape[1]), int(self.images.shape[2]))


def _check_name(name: str) -> _Spec:
    if name not in DATASETS:
        raise ValueError(f"`name` must be one of {sorted(DATASETS)}, got {name!r}")
    return DATASETS[name]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}")


def _search_dirs(name: str, root: str | os.PathLike | None) -> list[Path]:
    """Folders to look in, in order."""
    dirs: list[Path] = []
    for base in (root, os.environ.get("RNNLAB_DATA") or None):
        if base is not None:
            dirs += [Path(base).expanduser(), Path(base).expanduser() / name]
    return dirs + [Path.home() / ".cache" / "rnnlab" / name, SYSTEM_DIR / name]


def _file_in(folder: Path, filename: str) -> Path | None:
    for candidate in (folder / filename, folder / filename.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _find_split(name: str, split: str, root) -> tuple[Path, Path] | None:
    for folder in _search_dirs(name, root):
        found = [_file_in(folder, f) for f in FILES[split]]
        if all(found):
            return found[0], found[1]
    return None


def _not_found(name: str, split: str, root) -> DatasetNotFoundError:
    looked = "\n".join(f"  {d}" for d in _search_dirs(name, root))
    return DatasetNotFoundError(
        f"dataset {name!r} ({split}: {' + '.join(FILES[split])}, gz or not) not found; "
        f"looked in:\n{looked}\nget it with `rnnlab datasets download {name}` "
        f"(or `--data-dir DIR` for a folder that holds it)"
    )


@functools.lru_cache(maxsize=2)
def _digits_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    index = np.arange(len(bunch.target))
    train, test = train_test_split(index, test_size=360, stratify=bunch.target, random_state=0)
    pick = np.sort(train if split == "train" else test)
    return (bunch.images[pick] / 16.0).astype(np.float32), bunch.target[pick].astype(np.int64)


def _load_digits(split: str) -> ImageDataset:
    images, labels = (torch.tensor(a) for a in _digits_arrays(split))  # copies: cache stays
    location = "embedded: sklearn.datasets.load_digits (360 test, stratified, seed 0)"
    return ImageDataset(images, labels, list(DIGITS.class_names), "digits", split, location)


def _load_files(name: str, split: str, image_file: Path, label_file: Path) -> ImageDataset:
    spec = DATASETS[name]
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.ndim >= 1 and len(images) == 0:
        raise IDXError(f"{image_file}: holds 0 images; expected at least one")
    if images.ndim != 3 or images.shape[1:] != spec.image_shape:
        raise IDXError(
            f"{image_file}: expected images (N, {spec.image_shape[0]}, {spec.image_shape[1]}), "
            f"got {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise IDXError(
            f"{label_file}: expected 1-d integer labels, got {labels.dtype} {labels.shape}"
        )
    if len(images) != len(labels):
        raise IDXError(
            f"{image_file} holds {len(images)} images but {label_file} holds {len(labels)} labels"
        )
    n_classes = len(spec.class_names)
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise IDXError(
            f"{label_file}: labels must lie in [0, {n_classes}), got {labels.min()}..{labels.max()}"
        )
    if images.dtype == np.uint8:
        x = torch.from_numpy(images).float().div_(255.0)
    else:
        x = torch.from_numpy(images.astype(np.float32))
        if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise IDXError(f"{image_file}: float images must be finite and in [0, 1]")
    y = torch.from_numpy(labels.astype(np.int64))
    return ImageDataset(x, y, list(spec.class_names), name, split, str(image_file.parent))


def load(
    name: str, split: str = "train", root: str | os.PathLike | None = None, download: bool = False
) -> ImageDataset:
    """Load dataset ``name``'s ``split`` ("train" or "test") as an :class:`ImageDataset`.

    File-based sets are searched for as the module docstring says (an explicit ``root``
    comes first, then the other places); with ``download=True`` a missing set is fetched
    into ``root/<name>`` (see :func:`download`) first. Raises
    :class:`DatasetNotFoundError` listing every place looked otherwise.
    """
    _check_name(name)
    _check_split(split)
    if name == "digits":
        return _load_digits(split)
    found = _find_split(name, split, root)
    if found is None and download:
        _download(name, root)
        found = _find_split(name, split, root)
    if found is None:
        raise _not_found(name, split, root)
    return _load_files(name, split, *found)


def verify_file(path: str | os.PathLike, checksums: tuple[Checksum, ...]) -> bool:
    """True when ``path`` matches at least one of ``checksums``."""
    data = Path(path).read_bytes()
    content = None
    for c in checksums:
        if c.of == "content" and content is None:
            try:
                content = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
            except (OSError, EOFError, ValueError, zlib.error):
                return False
        blob = content if c.of == "content" else data
        if hashlib.new(c.algorithm, blob, usedforsecurity=False).hexdigest() == c.digest:
            return True
    return False


def _fetch(url: str, folder: Path, filename: str, checks, timeout: float) -> None:
    """Fetch ``url`` into ``folder/filename`` via a temp file; raise on any failure."""
    with atomic_write(folder / filename) as out:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            expected = resp.headers.get("Content-Length")
            got = 0
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                got += len(chunk)
        out.flush()
        if expected is not None and got != int(expected):
            raise DownloadError(f"{url}: truncated, got {got} of {expected} bytes")
        if not verify_file(out.name, checks):
            raise DownloadError(f"{url}: checksum mismatch (expected {checks[0].digest})")


def download(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    base_url: str | None = None,
    timeout: float = 30.0,
) -> Path:
    """Fetch all of ``name``'s files into ``root/<name>`` and return that folder.

    ``root`` defaults to ``$RNNLAB_DATA`` or ``~/.cache/rnnlab``. Each file is tried on
    each mirror in turn (``base_url`` replaces the mirrors), streamed to a temporary file in
    the target folder, checked against :data:`CHECKSUMS` and renamed into place only then;
    files already present and valid are kept. ``timeout`` (seconds) bounds each network
    wait. Raises :class:`DownloadError` naming every failed attempt.
    """
    spec = _check_name(name)
    if name not in CHECKSUMS:
        raise ValueError(f"`name` {name!r} has no download: it is embedded")
    base = root if root is not None else os.environ.get("RNNLAB_DATA") or None
    folder = (Path(base).expanduser() if base else Path.home() / ".cache" / "rnnlab") / name
    folder.mkdir(parents=True, exist_ok=True)
    mirrors = (base_url,) if base_url else spec.mirrors
    for filename, checks in CHECKSUMS[name].items():
        if (folder / filename).is_file() and verify_file(folder / filename, checks):
            continue
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + filename
            try:
                _fetch(url, folder, filename, checks, timeout)
                break
            except (OSError, http.client.HTTPException) as e:
                errors.append(f"  {url}: {e}")
        else:
            raise DownloadError(f"could not download {name}/{filename}:\n" + "\n".join(errors))
    return folder


_download = download  # `load` has a parameter named `download`


def describe(root: str | os.PathLike | None = None) -> list[dict]:
    """One dict per dataset: name, title, classes, ``splits`` {split: size or None},
    ``location`` (where found, or None) and ``how_to_get``."""
    rows = []
    for name, spec in DATASETS.items():
        row = {"name": name, "title": spec.title, "classes": len(spec.class_names)}
        if name == "digits":
            row |= {"splits": {"train": 1437, "test": 360}, "location": "embedded (scikit-learn)"}
            row["how_to_get"] = "always available"
        else:
            sizes, places = {}, []
            for split in SPLITS:
                found = _find_split(name, split, root)
                sizes[split] = None
                if found:
                    places.append(str(found[0].parent))
                    try:
                        sizes[split] = read_idx_header(found[1])[1][0]
                    except (IDXError, OSError) as e:
                        row["error"] = str(e)
            row |= {"splits": sizes, "location": ", ".join(dict.fromkeys(places)) or None}
            row["how_to_get"] = f"rnnlab datasets download {name}  (or --data-dir DIR)"
        rows.append(row)
    return rows
