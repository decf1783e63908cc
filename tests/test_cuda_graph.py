"""Whole-step CUDA graphs (rnnlab.training.cuda_graph): the fallback reasons and message on
CPU, drop_last batches, the captured body's math and warm-up undo (run eagerly on CPU), and,
on a GPU, graph vs eager training."""

import copy
import functools

import pytest
import torch

from rnnlab.models.classifiers import SequenceClassifier
from rnnlab.training.config import apply_overrides, load_preset
from rnnlab.training.cuda_graph import GraphedStep, device_lr, fallback_reason
from rnnlab.training.experiment import train
from rnnlab.training.families.classify import classify_step
from rnnlab.training.loop import Batches
from rnnlab.training.update import NonFiniteError, Update


def _cfg(*flags):
    # digits-lstm steps a one-cycle schedule per batch, which the graph cannot: use none
    base = ["--train.epochs=2", "--train.schedule=none"]
    return apply_overrides(load_preset("digits-lstm"), [*base, *flags])


@pytest.mark.parametrize(
    ("flags", "device", "needle"),
    [
        ([], "cpu", "the device is cpu"),
        (["--model.family=gan", "--model.kind=mlp"], "cuda", "family 'gan' is not captured"),
        (["--train.adversarial=fgsm"], "cuda", "adversarial"),
        (["--train.optimizer=rmsprop"], "cuda", "no capturable step"),
        (["--train.schedule=cosine"], "cuda", "every batch"),
        (["--train.schedule=onecycle"], "cuda", "every batch"),
        (["--train.optimizer=sgd", "--train.schedule=step"], "cuda", "float learning rate"),
        (["--train.precision=fp16"], "cuda", "GradScaler"),
    ],
)
def test_fallback_reason_names_what_the_graph_cannot_do(flags, device, needle):
    assert needle in fallback_reason(_cfg(*flags), device)


@pytest.mark.parametrize(
    "flags",
    [[], ["--train.optimizer=sgd"], ["--train.schedule=step"], ["--train.schedule=plateau"],
     ["--train.clip_norm=1.0", "--train.precision=bf16"], ["--train.optimizer=adamw"]],
)  # fmt: skip
def test_graphable_configs_have_no_fallback_reason(flags):
    assert fallback_reason(_cfg(*flags), "cuda") is None
    assert "torch.distributed" in fallback_reason(_cfg(*flags), "cuda", world_size=2)


def test_cuda_graph_flag_on_cpu_trains_eagerly_and_says_why_once(tmp_path):
    lines = []
    cfg = _cfg("--train.cuda_graph=true", "--train.device=cpu")
    result = train(cfg, dry_run=True, log=lines.append, progress=False)
    said = [line for line in lines if line.startswith("cuda graph")]
    assert said == [
        "cuda graph: off, the device is cpu (CUDA graphs need a CUDA device); "
        "training with the eager step"
    ]
    assert result["epochs"] == 2 and "cuda_graph_replays" not in result
    assert 0.0 <= result["test_accuracy"] <= 1.0


def test_cli_flag_sets_the_key(tmp_path, capsys):
    from rnnlab.cli import main

    assert main(["train", "digits-lstm", "--dry-run", "--cuda-graph", "--no-progress",
                 "--device", "cpu", "--train.epochs=1"]) == 0  # fmt: skip
    assert capsys.readouterr().out.count("cuda graph: off, the device is cpu") == 1


def test_drop_last_batches_are_the_full_ones_in_the_same_order():
    x = torch.arange(50)
    full = [b[0] for b in Batches(x, batch_size=16, seed=3)]
    dropped = Batches(x, batch_size=16, seed=3, drop_last=True)
    assert len(dropped) == 3
    assert [b[0].tolist() for b in dropped] == [b.tolist() for b in full[:3]]


def _toy(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    return torch.randn(n, 6, 4, generator=g) + y[:, None, None].float(), y


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_captured_body_matches_the_eager_step_after_undone_warm_up(optimizer):
    """The body the graph records, run eagerly on CPU: 3 warm-up steps are undone exactly, and
    one body step then equals one ``classify_step`` (weights, loss, accuracy, grad norm)."""
    torch.manual_seed(0)
    model = SequenceClassifier("lstm", 4, 8, 3)
    twin = copy.deepcopy(model)

    def make(m):
        if optimizer == "sgd":
            return torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        return torch.optim.Adam(m.parameters(), lr=0.01)

    opt, twin_opt = make(model), make(twin)
    x, y = _toy()
    kw = {"update": Update(clip_norm=0.5)}
    step = GraphedStep("classify", functools.partial(classify_step, **kw), **kw)
    step._prepare(x, y)
    saved = step._snapshot(model, opt)
    for _ in range(3):
        opt.zero_grad(set_to_none=True)
        step._body(model, opt)
    step._restore(model, opt, *saved)
    step.on_epoch_start(0, 1)
    step._body(model, opt)
    step._seen = len(x)
    sums, seen = step.epoch_metrics()
    ref = classify_step(twin, (x, y), twin_opt, **kw)
    assert seen == len(x)
    assert sums["loss"] / seen == pytest.approx(ref["loss"], rel=1e-5)
    assert sums["accuracy"] / seen == pytest.approx(ref["accuracy"])
    assert sums["grad_norm"] / seen == pytest.approx(ref["grad_norm"], rel=1e-5)
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_non_finite_captured_step_is_reported_at_the_epoch_end():
    model = SequenceClassifier("gru", 4, 8, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _toy()
    step = GraphedStep("classify", classify_step)
    step._prepare(x * float("nan"), y)
    step._body(model, opt)
    step._seen = len(x)
    with pytest.raises(NonFiniteError, match="non-finite"):
        step.epoch_metrics()


def test_capture_failure_falls_back_to_the_eager_step_with_one_line():
    lines = []
    model = SequenceClassifier("gru", 4, 8, 3)
    opt = torch.optim.Adam(model.parameters())
    step = GraphedStep("classify", classify_step, log=lines.append)
    x, y = _toy()
    first = step(model, (x, y), opt)  # CPU tensors: capture refuses, eager runs
    second = step(model, (x, y), opt)
    assert set(first) >= {"loss", "accuracy"} and set(second) >= {"loss", "accuracy"}
    assert len(lines) == 1 and lines[0].startswith("cuda graph: off, capture failed")
    assert step.replays == 0 and step.epoch_metrics() == ({}, 0)


def test_device_lr_makes_a_tensor_lr_that_schedules_fill_in_place():
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    device_lr(opt, torch.device("cpu"))
    lr = opt.param_groups[0]["lr"]
    assert isinstance(lr, torch.Tensor) and lr.item() == pytest.approx(0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)
    opt.step()  # no gradients: moves nothing, but the scheduler wants a step first
    scheduler.step()
    assert opt.param_groups[0]["lr"] is lr and lr.item() == pytest.approx(0.05)


@pytest.mark.gpu
def test_graph_and_eager_training_agree_and_the_graph_is_used(tmp_path):
    # 1024 digits at batch 32: no partial batch, so drop_last drops nothing and both paths
    # see the same batches; no dropout, so they compute the same function
    flags = ["--train.device=cuda", "--data.val_fraction=0", "--data.limit=1024",
             "--data.batch_size=32", "--train.epochs=3"]  # fmt: skip
    curves, results = {}, {}
    for graph in (False, True):
        lines = []
        cfg = _cfg(*flags, f"--train.cuda_graph={str(graph).lower()}",
                   f"--run.out_dir={tmp_path}", f"--run.name=g{int(graph)}")  # fmt: skip
        results[graph] = train(cfg, dry_run=False, log=lines.append, progress=False)
        curves[graph] = [
            float(line.split("train_loss ")[1].split()[0]) for line in lines
            if line.startswith("epoch ")
        ]  # fmt: skip
        if graph:
            assert any(line.startswith("cuda graph: captured") for line in lines), lines
    assert results[True]["cuda_graph_replays"] == 3 * 1024 // 32
    assert "cuda_graph_replays" not in results[False]
    assert curves[True] == pytest.approx(curves[False], rel=0.05, abs=0.02)
    assert results[True]["test_accuracy"] == pytest.approx(results[False]["test_accuracy"],
                                                           abs=0.05)  # fmt: skip


def _benchmark():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_recurrent.py"
    spec = importlib.util.spec_from_file_location("gpu_recurrent", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_benchmark_imports_and_without_cuda_measures_nothing(capsys, monkeypatch):
    bench = _benchmark()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main([]) == 0
    assert capsys.readouterr().out.startswith("no CUDA: nothing measured")


def test_gpu_benchmark_epoch_driver_runs_on_cpu():
    bench = _benchmark()
    model = bench.TorchRowClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.rand(2 * bench.BATCH + 5, 28, 28), torch.randint(0, 10, (2 * bench.BATCH + 5,))
    before = [p.detach().clone() for p in model.parameters()]
    bench._epoch_runner(model, bench._Step(bench._torch_step, opt), x, y)()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
