"""User-file readers: each round-trips a file it writes into the same tensors and lengths, and
every bad input is one DataFileError naming the file, the place, what was expected and what
came."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from rnnlab.data.files import (
    read_arrays,
    read_csv_long,
    read_csv_wide,
    read_sequences,
    read_series,
    write_arrays,
    write_csv_long,
    write_csv_wide,
    write_series,
)
from rnnlab.data.records import DataFileError, class_names, encode_labels, fill_missing
from rnnlab.data.ts_format import read_ts, write_ts


def _ragged(channels: int, lengths=(5, 3, 7), seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, channels)).astype(np.float32) for n in lengths]


def _same(data, seqs, labels):
    assert data.lengths.tolist() == [len(s) for s in seqs]
    for got, want in zip(data.arrays(), seqs, strict=True):
        np.testing.assert_array_equal(got, want)
    assert data.labels == (None if labels is None else [str(v) for v in labels])
    # padding is zero
    for row, n in zip(data.x, data.lengths.tolist(), strict=True):
        assert (row[n:] == 0).all()


@pytest.mark.parametrize("lengths", [(4, 4, 4), (5, 3, 7)], ids=["equal", "unequal"])
def test_wide_csv_round_trip(tmp_path, lengths):
    seqs, labels = _ragged(1, lengths), ["a", "b", "a"]
    path = write_csv_wide(tmp_path / "w.csv", seqs, labels)
    _same(read_csv_wide(path, label="label"), seqs, labels)
    _same(read_sequences(path, label="label"), seqs, labels)
    _same(read_sequences(write_csv_wide(tmp_path / "n.tsv", seqs)), seqs, None)


def test_wide_csv_without_header_takes_a_label_index(tmp_path):
    path = tmp_path / "ucr.csv"
    path.write_text("1,0.5,0.25\n2,1.5,2.5\n")
    data = read_csv_wide(path, label="0")
    assert data.labels == ["1", "2"]
    np.testing.assert_allclose(data.x[:, :, 0], [[0.5, 0.25], [1.5, 2.5]])


@pytest.mark.parametrize("channels", [1, 3])
def test_long_csv_round_trip(tmp_path, channels):
    seqs, labels = _ragged(channels), ["x", "y", "z"]
    path = write_csv_long(tmp_path / "l.csv", seqs, labels)
    _same(read_csv_long(path, id_column="id", label="label", time_column="step"), seqs, labels)
    data = read_sequences(path, id_column="id", label="label", time_column="step")
    assert data.channels == [f"c{i}" for i in range(channels)]


@pytest.mark.parametrize("lengths", [(4, 4, 4), (5, 3, 7)], ids=["equal", "unequal"])
@pytest.mark.parametrize("channels", [1, 2])
def test_npz_round_trip(tmp_path, lengths, channels):
    seqs, labels = _ragged(channels, lengths), [0, 1, 1]
    path = write_arrays(tmp_path / "a.npz", seqs, labels)
    _same(read_arrays(path), seqs, labels)


def test_npy_and_padded_npz_with_lengths(tmp_path):
    x = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    np.save(tmp_path / "x.npy", x)
    data = read_sequences(tmp_path / "x.npy")
    assert data.x.shape == (2, 4, 3) and data.lengths.tolist() == [4, 4]
    np.savez(tmp_path / "p.npz", x=x, lengths=np.array([2, 4]), y=np.array(["u", "v"]))
    data = read_sequences(tmp_path / "p.npz")
    assert data.lengths.tolist() == [2, 4] and data.labels == ["u", "v"]
    assert (data.x[0, 2:] == 0).all() and (data.x[0, :2] == torch.from_numpy(x[0, :2])).all()


@pytest.mark.parametrize("lengths", [(6, 6, 6), (5, 3, 7)], ids=["equal", "unequal"])
@pytest.mark.parametrize("channels", [1, 4], ids=["univariate", "multivariate"])
def test_ts_round_trip(tmp_path, lengths, channels):
    seqs, labels = _ragged(channels, lengths), ["-1", "1", "1"]
    path = write_ts(tmp_path / "d.ts", seqs, labels)
    _same(read_ts(path), seqs, labels)
    _same(read_sequences(write_ts(tmp_path / "u.ts", seqs)), seqs, None)


def test_series_round_trip(tmp_path):
    values = np.random.default_rng(0).normal(size=(10, 2)).astype(np.float32)
    time = [f"2020-01-01 {h:02d}:00:00" for h in range(10)]
    path = write_series(tmp_path / "s.csv", values, ["load", "OT"], time)
    s = read_series(path)
    assert s.channels == ["load", "OT"] and s.time == time and s.column("OT") == 1
    np.testing.assert_array_equal(s.values.numpy(), values)


def test_labels_map_to_sorted_classes_numerically():
    assert class_names(["10", "2", "-1", "2"]) == ["-1", "2", "10"]
    assert class_names(["cat", "ant"]) == ["ant", "cat"]
    assert encode_labels(["2", "-1"], ["-1", "2"], "f").tolist() == [1, 0]
    with pytest.raises(DataFileError, match="training classes -1, 2, got '7'"):
        encode_labels(["7"], ["-1", "2"], "f")


def test_fill_rules():
    v = np.array([[np.nan], [1.0], [np.nan], [3.0], [np.inf]])
    np.testing.assert_array_equal(fill_missing(v, "ffill")[:, 0], [1, 1, 1, 3, 3])
    np.testing.assert_array_equal(fill_missing(v, "zero")[:, 0], [0, 1, 0, 3, 0])
    np.testing.assert_array_equal(fill_missing(v, "linear")[:, 0], [1, 1, 2, 3, 3])


def test_nan_is_an_error_unless_a_fill_rule_is_given(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("time,v\n1,1.0\n2,nan\n3,3.0\n")
    with pytest.raises(DataFileError, match=r"s\.csv, line 3, column v: expected a finite"):
        read_series(path)
    assert read_series(path, fill="linear").values[:, 0].tolist() == [1.0, 2.0, 3.0]
    path.write_text("time,v\n1,1.0\n2,inf\n")
    with pytest.raises(DataFileError, match="line 3, column v: expected a finite number, got inf"):
        read_series(path)


# ----------------------------------------------------------------------------- bad input
def _raises(match: str, fn, *args, **kwargs):
    with pytest.raises(DataFileError, match=match) as e:
        fn(*args, **kwargs)
    assert "\n" not in str(e.value)


def test_ragged_csv_row(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("label,t0,t1\na,1,2\nb,1,2,3\n")
    _raises(r"r\.csv, line 3: expected 3 cells \(as the first row\), got 4", read_csv_wide, path,
            label="label")  # fmt: skip


def test_non_numeric_cell(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("label,t0,t1\na,1,two\n")
    _raises(r"line 2, column t1: expected a number, got 'two'", read_csv_wide, path, label="label")
    series = tmp_path / "s.csv"
    series.write_text("date,OT\n2020,1.0\n2021,x\n")
    _raises(r"s\.csv, line 3, column OT: expected a number, got 'x'", read_series, series)


def test_missing_label_column(tmp_path):
    path = write_csv_wide(tmp_path / "w.csv", _ragged(1), ["a", "b", "c"])
    _raises(r"expected a label column 'kind', got label, t0", read_csv_wide, path, label="kind")
    long = write_csv_long(tmp_path / "l.csv", _ragged(2), ["a", "b", "c"])
    _raises("expected a sequence-id column 'seq'", read_csv_long, long, id_column="seq")
    s = read_series(write_series(tmp_path / "s.csv", np.zeros((3, 1)), ["v"], ["1", "2", "3"]))
    _raises(r"expected a column named 'OT', got columns v", s.column, "OT")


def test_long_csv_label_must_be_constant_per_sequence(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("id,label,v\ns0,a,1\ns0,b,2\n")
    _raises(r"line 3, column label: expected one label per sequence \('a' on line 2",
            read_csv_long, path, id_column="id", label="label")  # fmt: skip


@pytest.mark.parametrize(
    "header, data, match",
    [
        ("@dimensions 2\n@classLabel true 1 2", "1,2:3,4:1\n1,2:3:2",
         r"line 5: expected one length for all channels"),
        ("@dimensions 3\n@classLabel true 1 2", "1,2:3,4:1",
         r"line 4: expected 3 channels \(the header\), got 2"),
        ("@univariate true\n@equalLength true\n@seriesLength 3\n@classLabel true a",
         "1,2,3:a\n1,2:a",
         r"line 7: expected 3 steps \(@seriesLength\), got 2"),
        ("@classLabel true 1 2", "1,2,3:7", r"line 3: expected a class label among 1 2"),
        ("@classLabel false", "1,oops,3", r"line 3, channel 0: expected a number, got 'oops'"),
        ("@equalLength true\n@classLabel false", "1,2,3\n1,2",
         r"line 1: @equalLength true, but the series have lengths 2 to 3"),
        ("@classLabel false", "1,?,3", r"line 3, channel 0, step 1: expected a finite number"),
    ],
)  # fmt: skip
def test_ts_header_disagreeing_with_data(tmp_path, header, data, match):
    path = tmp_path / "bad.ts"
    path.write_text(f"{header}\n@data\n{data}\n")
    _raises(match, read_ts, path)


def test_ts_without_data_section(tmp_path):
    path = tmp_path / "h.ts"
    path.write_text("@problemName x\n@univariate true\n")
    _raises(r"h\.ts: expected an @data line", read_ts, path)


def test_npz_without_x(tmp_path):
    np.savez(tmp_path / "a.npz", data=np.zeros((2, 3)))
    _raises(r"a\.npz: expected keys x \(required\), y, lengths, got data", read_arrays,
            tmp_path / "a.npz")  # fmt: skip


def test_pickled_object_arrays_are_refused_with_how_to_save_ragged_data(tmp_path):
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.zeros((3, 2)), np.zeros((5, 2))
    np.savez(tmp_path / "o.npz", x=ragged)
    _raises(r"key 'x': expected a numeric array, got a pickled object array; save ragged data "
            r"as x = np.concatenate\(seqs\)", read_arrays, tmp_path / "o.npz")  # fmt: skip
    np.save(tmp_path / "o.npy", ragged, allow_pickle=True)
    _raises("pickled object array, which rnnlab never unpickles", read_arrays, tmp_path / "o.npy")
    (tmp_path / "p.npy").write_bytes(pickle.dumps({"x": [1, 2]}))
    _raises(r"p\.npy: expected", read_arrays, tmp_path / "p.npy")


def test_bad_lengths_and_shapes(tmp_path):
    np.savez(tmp_path / "l.npz", x=np.zeros((2, 3)), lengths=np.array([4, 1]))
    _raises(r"key 'lengths': expected 2 lengths <= 3", read_arrays, tmp_path / "l.npz")
    np.savez(tmp_path / "s.npz", x=np.zeros(3))
    _raises(r"key 'x': expected shape \(N, T\) or \(N, T, C\), got \(3,\)", read_arrays,
            tmp_path / "s.npz")  # fmt: skip
    np.savez(tmp_path / "y.npz", x=np.zeros((2, 3)), y=np.array([1, 2, 3]))
    _raises(r"key 'y': expected 2 integer or string labels", read_arrays, tmp_path / "y.npz")


def test_unknown_suffix_and_missing_file(tmp_path):
    (tmp_path / "d.xlsx").write_bytes(b"PK")
    _raises(r"d\.xlsx: expected a file ending in .csv", read_sequences, tmp_path / "d.xlsx")
    _raises(r"nope\.csv: expected a data file, got no such file", read_sequences,
            tmp_path / "nope.csv")  # fmt: skip
