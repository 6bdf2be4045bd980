"""`livepose weights average`: the uniform weight average of runs of one network, on the shipped files."""

from __future__ import annotations

import numpy as np

from livepose.cli import main as cli
from livepose.data import ASSETS
from livepose.nets.weights import META_KEY, SHIPPED, read_npz_arrays, read_npz_meta, savez_atomic, write_npz_meta

R18 = ASSETS / SHIPPED["r18-128x96"]


def test_average_is_the_layerwise_mean_without_the_old_calibration(tmp_path, capsys):
    first = read_npz_arrays(R18)
    shifted = {k: v if k == META_KEY else (v.astype(np.float32) + 0.5).astype(v.dtype) for k, v in first.items()}
    other = tmp_path / "other.npz"
    savez_atomic(other, shifted)
    write_npz_meta(other, score_scale=1.3)
    out = tmp_path / "soup.npz"
    assert cli(["weights", "average", str(R18), str(other), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    soup = read_npz_arrays(out)
    assert soup.keys() == first.keys()
    for k in first:
        if k != META_KEY:
            expected = ((first[k].astype(np.float32) + shifted[k].astype(np.float32)) / 2).astype(first[k].dtype)
            np.testing.assert_array_equal(soup[k], expected)
    meta = read_npz_meta(out)
    assert "score_scale" not in meta and meta["input_size"] == read_npz_meta(R18)["input_size"]


def test_averaging_two_different_networks_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "soup.npz"
    assert cli(["weights", "average", str(R18), str(ASSETS / SHIPPED["default"]), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not runs of one network" in err and "Traceback" not in err and not out.exists()


def test_a_missing_or_single_file_is_one_line_and_keeps_an_earlier_output(tmp_path, capsys):
    out = tmp_path / "soup.npz"
    out.write_bytes(b"an earlier result")
    for paths in ([str(R18), str(tmp_path / "missing.npz")], [str(R18)]):
        assert cli(["weights", "average", *paths, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("livepose weights average: ") and err.count("\n") == 1 and "Traceback" not in err
        assert out.read_bytes() == b"an earlier result"
