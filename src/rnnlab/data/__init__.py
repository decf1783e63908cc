"""Bytes on disk -> tensors: IDX files, named image datasets, the user's own files (CSV,
.npy/.npz, UCR/UEA .ts), sequence views, synthetic tasks."""

from .datasets import (
    CHECKSUMS,
    DATASETS,
    Checksum,
    DatasetNotFoundError,
    DownloadError,
    ImageDataset,
    describe,
    download,
    load,
    verify_file,
)
from .files import read_sequences, read_series
from .idx import IDXError, read_idx, read_idx_header, write_idx
from .records import DataFileError, Sequences, Series
from .sequences import (
    batchify,
    images_to_sequences,
    lengths_to_mask,
    pad_sequences,
    pixel_permutation,
    tbptt_chunks,
)
from .synthetic import (
    adding_problem,
    copy_memory,
    copy_memory_baseline,
    synthetic_images,
    variable_length_sequences,
)

__all__ = [
    "CHECKSUMS", "DATASETS", "Checksum", "DataFileError", "DatasetNotFoundError", "DownloadError",
    "IDXError", "ImageDataset", "adding_problem", "batchify", "copy_memory",
    "copy_memory_baseline", "describe", "download", "images_to_sequences", "lengths_to_mask",
    "load", "pad_sequences", "pixel_permutation", "read_idx", "read_idx_header",
    "read_sequences", "read_series", "Sequences", "Series",
    "synthetic_images", "tbptt_chunks", "variable_length_sequences", "verify_file", "write_idx",
]  # fmt: skip
