"""Shared test setup: tiny sizes, deterministic seeds, `gpu`/`slow` markers that skip cleanly."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 parity tests run on torch

import pytest
import torch

# Parity tests compare to 1e-5 in float32: TF32 would round matmuls to 10 mantissa bits.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

SHARED_DATASETS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets")


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CUDA (gpu marker)")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
