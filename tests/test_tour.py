"""The tour (``make run``) runs end to end in its quick form."""

from rnnlab import tour


def test_listing_5_1_summary_totals():
    text = tour.listing_5_1()
    assert "Total params: 271,365" in text


def test_quick_tour_runs(capsys):
    assert tour.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "271,365" in out
