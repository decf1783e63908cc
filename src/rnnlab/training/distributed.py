"""Distributed data parallel (torch.distributed), launched by ``torchrun``.

``torchrun --nproc_per_node=N -m rnnlab train PRESET`` starts N processes; each finds
``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` in its environment, :func:`setup` joins the
process group (gloo on CPU, nccl on GPU) and :func:`wrap` puts the model in
``DistributedDataParallel``, which all-reduces (averages) gradients in ``backward``. Each rank
reads its share of every global batch (:class:`rnnlab.training.loop.Batches`), so N
processes with ``batch_size`` B take the same steps as one process with B, up to float
rounding. Only rank 0 writes the run folder.

Truncated BPTT (several backwards per step through ``model.run``) is not wrapped: use one
process for ``family="tbptt"``.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from rnnlab.utils import pick_device

__all__ = ["cleanup", "is_main", "setup", "world", "wrap"]


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: (0, 1) outside torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def is_main() -> bool:
    return world()[0] == 0


def setup(device: str = "auto", timeout_s: float = 300.0) -> tuple[int, int, torch.device]:
    """Join the process group when launched by torchrun; returns ``(rank, world_size,
    device)``. Without torchrun's variables this is ``(0, 1, pick_device(device))``."""
    rank, size = world()
    dev = pick_device(device)
    if size <= 1 or (dist.is_available() and dist.is_initialized()):
        return rank, size, dev
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return dist.get_rank(), dist.get_world_size(), dev


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)`` inside a process group, else ``model``."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def cleanup() -> None:
    """Leave the process group (no-op outside one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
