"""``rnnlab predict RUN INPUT [--out FILE]``: a run of a family on the user's own files
(seq-classify, forecast, seq-anomaly) predicts on INPUT in its training format and writes a
CSV (:mod:`rnnlab.training.families._predict`); a text-classify run reads INPUT as one
sentence a line (or a CSV's ``text`` column) and writes ``line,label,p_<label>...``
(:func:`rnnlab.training.families.text_classify.predict_sentences`); otherwise the class of
each image in INPUT
(``.npy`` holding
``(N, H, W)`` or ``(H, W)``, or an IDX file) by an image classifier's run folder; prints
``index<TAB>class<TAB>name`` per image. uint8 images are scaled by 1/255; float images must
already be in [0, 1]. The ``.npy`` header is read and checked (plain numeric dtype, size
that the file holds) before any array is allocated; nothing is ever unpickled."""

from __future__ import annotations

import math
from pathlib import Path

from .common import UsageError, open_run

HELP = "classify images with a run"
SHARED: tuple[str, ...] = ()
OVERRIDES = False


def add_arguments(p) -> None:
    p.add_argument("run", help="a run folder of an image, own-data or text classifier")
    p.add_argument("input", help=".npy (N, H, W) or IDX images file; own-data runs: a file "
                   "in the training data's format; text-classify runs: one sentence a "
                   "line")  # fmt: skip
    p.add_argument("--out", help="own-data runs: write the predictions CSV here (else stdout)")


def read_npy(path: Path):
    """The array in ``.npy`` file ``path``, after its header passed the checks above."""
    import numpy as np
    from numpy.lib import format as npy

    with open(path, "rb") as f:
        try:
            version = npy.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = npy.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = npy.read_array_header_2_0(f)
        except ValueError as e:
            hint = " (an .npz archive renamed?)" if path.read_bytes()[:2] == b"PK" else ""
            raise UsageError(f"INPUT {path}: not a .npy file{hint}: {e}") from None
        offset = f.tell()
    if dtype.fields is not None or dtype.kind not in "buif":
        raise UsageError(f"INPUT {path}: expected a numeric dtype, got {dtype}")
    need = math.prod(shape) * dtype.itemsize
    have = path.stat().st_size - offset
    if need > have:
        raise UsageError(
            f"INPUT {path}: its header declares {shape} ({need:,} bytes) but the file holds "
            f"{have:,} bytes"
        )
    return np.load(path, allow_pickle=False)


def read_images(path: Path):
    """Images ``(N, H, W)`` as float32 in [0, 1] from an ``.npy`` or IDX file."""
    import numpy as np
    import torch

    from rnnlab.data import read_idx

    if not path.is_file():
        raise UsageError(f"INPUT {path} does not exist")
    array = read_npy(path) if path.suffix == ".npy" else read_idx(path)
    if array.ndim == 2:
        array = array[None]
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3 or array.shape[0] == 0:
        raise UsageError(f"INPUT {path}: expected images (N, H, W), got shape {array.shape}")
    images = torch.from_numpy(array.astype(np.float32))
    if array.dtype == np.uint8:
        images /= 255.0
    if not torch.isfinite(images).all():
        raise UsageError(f"INPUT {path}: images hold NaN or inf")
    lo, hi = float(images.min()), float(images.max())
    if lo < 0.0 or hi > 1.0:  # 0-255 floats would be read as saturated pixels, silently
        raise UsageError(
            f"INPUT {path}: {array.dtype} images must be in [0, 1], got [{lo:g}, {hi:g}] "
            "(store uint8 0-255 images as uint8: they are scaled by 1/255)"
        )
    return images


def run(args) -> int:
    import torch

    from rnnlab.data import DATASETS
    from rnnlab.training import experiment, families
    from rnnlab.training.families import _predict as own

    family = own.family_of(args.run)
    if family in own.FILE_FAMILIES:
        own.write_predictions(args.run, args.input, args.out)
        return 0
    if family == "text-classify":
        from rnnlab.training.families.text_classify import predict_sentences

        cfg, model = open_run(args.run)
        own.write_csv(*predict_sentences(cfg, model, Path(args.input)), args.out)
        return 0
    cfg, model = open_run(args.run)
    images = read_images(Path(args.input))
    if "classes" not in families.get(cfg.model.family).supports:
        raise UsageError(
            f"RUN {args.run} is a {cfg.model.family} run; predict takes image classifiers"
        )
    spec = DATASETS[cfg.data.dataset]
    if tuple(images.shape[1:]) != spec.image_shape:
        raise UsageError(
            f"INPUT {args.input}: the run expects {spec.image_shape} images, "
            f"got {tuple(images.shape[1:])}"
        )
    with torch.no_grad():
        classes = model(experiment.model_input(cfg, images)).argmax(-1).tolist()
    for i, c in enumerate(classes):
        print(f"{i}\t{c}\t{spec.class_names[c]}")
    return 0
