"""Whole-step CUDA graphs: ``train.cuda_graph = true`` (CLI ``--cuda-graph``).

A small recurrent model on a GPU is bound by kernel launches, not arithmetic: one Adam step
of an LSTM(128) row classifier launches hundreds of kernels, each costing microseconds of
host time. :class:`GraphedStep` records forward, loss, backward, gradient clipping, the
optimizer step and the epoch's metric sums ONCE into a :class:`torch.cuda.CUDAGraph`, then
replays it per batch after copying the batch into static input/target buffers. It follows
PyTorch's "whole network capture" recipe (``torch.cuda.graphs``; the CUDA Graphs section of
the CUDA semantics notes): warm up on a side stream, ``zero_grad(set_to_none=True)`` before
capture so ``backward`` allocates ``.grad`` from the graph's private pool, and an optimizer
built with ``capturable=True`` (Adam/AdamW keep ``step`` on the device; SGD needs nothing).

What this path needs, and what it does about it:

- **Static shapes.** The training tensors are moved to the GPU once and batches are drawn
  with ``drop_last=True`` (the last partial batch of each epoch is dropped; the order is the
  same CPU-drawn permutation as the eager path, so resume stays exact). A batch of another
  shape (or with ``lengths``) runs the eager step.
- **No host reads per step.** The loss, the correct count and the gradient norm are summed
  into device tensors inside the graph and read once per epoch. The NaN guard is a count of
  non-finite steps, also read once per epoch: the trade-off is that a non-finite loss is
  noticed at the end of its epoch (the weights in memory are then bad; the last checkpoint,
  written at the previous epoch's end, is the good one and training stops there), where the
  eager step refuses to apply the bad update at once. Clipping by norm or value uses tensor
  ops (``clip_grad_norm_`` / ``clip_grad_value_``), which do not sync.
- **The learning rate lives on the device.** Under capture a float lr is baked into the
  kernels, so Adam/AdamW get a 0-dim device tensor lr; schedules stepped per epoch (step,
  plateau) ``fill_`` it between replays. Per-batch schedules (cosine, onecycle; onecycle
  also cycles beta1, a float) and SGD with any schedule fall back to the eager step.
- **Falling back.** :func:`fallback_reason` names the first thing the config asks for that
  the graph cannot do (CPU device, torch.distributed, a family other than classify/regress,
  adversarial training, RMSprop/AdaGrad, the schedules above, fp16 loss scaling, which reads
  the overflow flag on the host every step). If warm-up or capture itself fails, the model
  and optimizer are restored and the eager step continues. Either way one line says why.

Warm-up runs 3 real steps on the first batch; their effect on the weights, buffers and
optimizer state is undone (copied back in place, keeping the tensors the graph points at),
so graph and eager runs start their first step from the same state. Dropout inside the graph
draws from the CUDA generator's graph-safe Philox offsets, so its masks differ from an eager
run's: the two agree in distribution, not bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .loop import Step
from .update import NonFiniteError, Update

__all__ = ["GRAPH_FAMILIES", "GraphedStep", "device_lr", "fallback_reason"]

GRAPH_FAMILIES = ("classify", "regress")  # the losses a captured step computes
GRAPH_OPTIMIZERS = ("adam", "adamw", "sgd")
CAPTURABLE = ("adam", "adamw")  # built with capturable=True (SGD has no host state)
WARMUP_STEPS = 3


def fallback_reason(cfg, device: str | torch.device, world_size: int = 1) -> str | None:
    """Why ``cfg`` cannot train with a captured step on ``device``; ``None`` when it can."""
    t, m = cfg.train, cfg.model
    kind = torch.device(device).type
    if kind != "cuda":
        return f"the device is {kind} (CUDA graphs need a CUDA device)"
    if world_size > 1:
        return "torch.distributed runs (gradients are all-reduced outside the step)"
    from .families import get, registry

    if "cuda_graph" not in get(m.family).supports:
        covered = [f.name for f in registry().values() if "cuda_graph" in f.supports]
        return (
            f"family {m.family!r} is not captured (graphs cover {', '.join(covered)}: "
            "one optimizer, one backward, static shapes)"
        )
    if t.adversarial != "none":
        return "adversarial training crafts its inputs in a separate attack loop"
    if t.optimizer not in GRAPH_OPTIMIZERS:
        return f"optimizer {t.optimizer!r} has no capturable step (adam, adamw and sgd do)"
    if t.schedule in ("cosine", "onecycle"):
        return f"schedule {t.schedule!r} changes the learning rate on the host every batch"
    if t.schedule != "none" and t.optimizer == "sgd":
        return f"sgd bakes a float learning rate into the graph; schedule {t.schedule!r} needs it"
    if t.precision == "fp16":
        return "fp16 loss scaling (GradScaler) reads the overflow flag on the host every step"
    return None


def device_lr(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Make each param group's lr a 0-dim tensor on ``device`` (capturable Adam reads it
    there; LR schedulers ``fill_`` a tensor lr in place). Also after ``resume``."""
    for group in optimizer.param_groups:
        lr = group["lr"]
        if not (isinstance(lr, Tensor) and lr.device == device):
            group["lr"] = torch.tensor(float(lr), dtype=torch.float32, device=device)


def _total_norm(grads: list[Tensor]) -> Tensor:
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


class GraphedStep(Step):
    """A train step ``(model, batch, optimizer) -> {}`` that replays one captured CUDA graph.

    ``kind``: "classify" (cross-entropy; sums loss, correct count, gradient norm) or
    "regress" (MSE). ``eager``: the ordinary step with the same options, used for batches the
    graph cannot take and after a failed capture. ``update``: the run's
    :class:`~.update.Update`, whose clipping, penalty, constraint and precision (bf16
    autocast, captured with ``cache_enabled=False``) the captured body applies on the
    device; its non-finite guard becomes a device-side count that :meth:`epoch_metrics`
    checks once per epoch (a host check per step would break the graph). ``replays``
    counts the steps the graph ran; ``reason`` is why it is not used (``None`` while it is).
    """

    def __init__(
        self,
        kind: str,
        eager: Callable,
        *,
        update: Update | None = None,
        log: Callable[[str], None] | None = print,
    ) -> None:
        if kind not in GRAPH_FAMILIES:
            raise ValueError(f"`kind` must be one of {', '.join(GRAPH_FAMILIES)}, got {kind!r}")
        self.kind, self.eager = kind, eager
        update = update or Update()
        self.clip_norm, self.clip_value = update.clip_norm, update.clip_value
        self.penalty, self.after_step = update.penalty, update.constraint
        self.amp = update.precision
        self.log = log or (lambda _: None)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.reason: str | None = None
        self.replays = 0
        self._static: tuple[Tensor, Tensor] | None = None
        self._sums: dict[str, Tensor] = {}
        self._seen = 0

    # ------------------------------------------------------------------ the loop's hooks
    def on_epoch_start(self, epoch: int, steps: int) -> None:
        for t in self._sums.values():
            t.zero_()
        self._seen = 0

    def epoch_metrics(self) -> tuple[dict[str, float], int]:
        """The graph's sums this epoch (one device -> host copy) and the examples they
        cover; :class:`NonFiniteError` if any captured step saw a non-finite loss or norm."""
        if not self._seen:
            return {}, 0
        keys = sorted(self._sums)
        values = dict(zip(keys, torch.stack([self._sums[k] for k in keys]).tolist(), strict=True))
        bad = int(values.pop("nonfinite"))
        if bad:
            raise NonFiniteError(f"{bad} captured step(s) had a non-finite loss or gradient norm")
        return values, self._seen

    # ------------------------------------------------------------------ the step
    def __call__(self, model: nn.Module, batch, optimizer) -> dict[str, float]:
        if self.reason is not None or len(batch) != 2:
            return self.eager(model, batch, optimizer)
        x, y = batch
        if self.graph is None:
            try:
                self._capture(model, x, y, optimizer)
            except Exception as e:  # any failure to warm up or capture means: run eager
                self.reason = f"capture failed ({type(e).__name__}: {e})".splitlines()[0]
                self.graph = None
                self.log(f"cuda graph: off, {self.reason}; training with the eager step")
                return self.eager(model, batch, optimizer)
            self.log(
                f"cuda graph: captured forward+backward+{type(optimizer).__name__} step+metrics "
                f"for batches of {x.shape[0]} (the last partial batch of each epoch is dropped)"
            )
        sx, sy = self._static
        if x.shape != sx.shape or y.shape != sy.shape or x.device != sx.device:
            return self.eager(model, batch, optimizer)
        sx.copy_(x, non_blocking=True)
        sy.copy_(y, non_blocking=True)
        self.graph.replay()
        self.replays += 1
        self._seen += x.shape[0]
        return {}

    def _body(self, model: nn.Module, optimizer) -> None:
        """One step on the static buffers, all device work (captured, or run in warm-up)."""
        x, y = self._static
        model.train()
        with self.amp.autocast(cache_enabled=False):
            out = model(x, None)
            if self.kind == "classify":
                loss = F.cross_entropy(out, y)
            else:
                loss = F.mse_loss(out.float(), y)
            pen = self.penalty(model) if self.penalty is not None else None
            total = loss + pen if pen is not None else loss
        total.backward()
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if self.clip_value is not None:
            torch.nn.utils.clip_grad_value_(params, self.clip_value)
        if self.clip_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, self.clip_norm, foreach=True)
        else:
            norm = _total_norm([p.grad for p in params])
        optimizer.step()
        if self.after_step is not None:
            with torch.no_grad():
                self.after_step(model)
        with torch.no_grad():
            n = float(x.shape[0])
            loss = loss.detach().float()
            norm = norm.detach().float()
            self._sums["loss"].add_(loss * n)
            self._sums["grad_norm"].add_(norm * n)
            self._sums["nonfinite"].add_((~torch.isfinite(loss) | ~torch.isfinite(norm)).float())
            if self.kind == "classify":
                self._sums["accuracy"].add_((out.detach().argmax(-1) == y).sum().float())
            if pen is not None:
                self._sums["penalty"].add_(pen.detach().float() * n)

    def _prepare(self, x: Tensor, y: Tensor) -> None:
        """Static input/target buffers shaped like the first batch, and zeroed sums."""
        self._static = (x.clone(), y.clone())
        names = ["loss", "grad_norm", "nonfinite"]
        names += ["accuracy"] if self.kind == "classify" else []
        names += ["penalty"] if self.penalty is not None else []
        self._sums = {k: torch.zeros((), device=x.device) for k in names}

    def _capture(self, model: nn.Module, x: Tensor, y: Tensor, optimizer) -> None:
        if x.device.type != "cuda":
            raise RuntimeError(f"the batch is on {x.device}, not on the GPU")
        device = x.device
        self._prepare(x, y)
        saved = self._snapshot(model, optimizer)
        try:
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(WARMUP_STEPS):
                    optimizer.zero_grad(set_to_none=True)
                    self._body(model, optimizer)
            torch.cuda.current_stream(device).wait_stream(side)
        finally:
            self._restore(model, optimizer, *saved)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._body(model, optimizer)
        for t in self._sums.values():  # capture records without running; be explicit anyway
            t.zero_()
        self.graph = graph

    @staticmethod
    def _snapshot(model: nn.Module, optimizer) -> tuple[dict, dict]:
        saved_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
        saved_opt = {
            p: {k: v.clone() if isinstance(v, Tensor) else v for k, v in st.items()}
            for p, st in optimizer.state.items()
        }
        return saved_model, saved_opt

    @staticmethod
    @torch.no_grad()
    def _restore(model, optimizer, saved_model: dict, saved_opt: dict) -> None:
        """Undo the warm-up in place (the graph will point at these very tensors)."""
        for k, v in model.state_dict().items():
            v.copy_(saved_model[k])
        for p, st in optimizer.state.items():
            before = saved_opt.get(p)
            for k, v in st.items():
                if not isinstance(v, Tensor):
                    continue
                if before is not None and k in before:
                    v.copy_(before[k])
                else:  # state made by the warm-up: zeros are what a fresh optimizer starts from
                    v.zero_()
        optimizer.zero_grad(set_to_none=True)
