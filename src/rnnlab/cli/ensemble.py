"""``rnnlab ensemble RUN RUN ... [--data-dir DIR]``: the mean of classifier runs' predicted
probabilities (:mod:`rnnlab.evaluation.ensemble`), each member's and the ensemble's accuracy
on the runs' validation and test splits. Whether to use the ensemble is decided on
validation, never on test.
"""

from __future__ import annotations

from .common import UsageError

HELP = "accuracy of the mean of classifier runs' probabilities (validation and test)"
SHARED = ("data_dir",)
OVERRIDES = False


def add_arguments(p) -> None:
    p.add_argument("runs", nargs="+", help="run folders of classifiers trained on the same data")


def run(args) -> int:
    from rnnlab.evaluation.ensemble import ensemble_accuracy

    try:
        result = ensemble_accuracy(args.runs, data_dir=getattr(args, "data_dir", None))
    except ValueError as e:  # members that disagree (labels, shapes) are the user's input
        raise UsageError(str(e)) from e
    for name, acc in result.items():
        members = "  ".join(f"{a:.4f}" for a in acc["members"])
        print(f"{name}: members {members}  ensemble {acc['ensemble']:.4f}")
    return 0
