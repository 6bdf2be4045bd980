"""`livepose bench` end to end on the real squats clip: table printed, JSON written with the MediaPipe ratio."""

from __future__ import annotations

import json

import pytest

from livepose.cli import main as cli
from livepose.pipeline import STAGES


SQUATS = "sequences_pseudo_gt/tfjs_pose_squats/pose_squats.mp4"


def test_bench_prints_table_and_writes_ratio(shared_data, small_weights, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert cli(["bench", str(shared_data / SQUATS), "--model", str(small_weights), "--frames", "20", "--repeats", "1",
                "--warmup", "2", "--people", "1,2", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    for word in (*STAGES, "pipeline fps", "frame age", "peak RSS", "ms/person", "livepose/MediaPipe",
                 "livepose/MoveNet Thunder"):
        assert word in text
    m = json.loads(out.read_text())
    assert m["frames_per_pass"] == 20 and m["repeats"] == 1
    assert set(m["stages_ms"]) == set(STAGES)
    assert all(v["median"] >= 0 and v["p95"] >= v["median"] for v in m["stages_ms"].values())
    assert m["stages_ms"]["infer"]["median"] > 0 and m["stages_ms"]["total"]["median"] > m["stages_ms"]["infer"]["median"]
    assert 0 < m["detector_calls_per_frame"] <= 1
    # the wall-clock rate agrees with the per-frame timings (a unit or bookkeeping slip is off by 10x or more)
    per_frame_s = m["stages_ms"]["total"]["median"] / 1e3
    assert 0.3 <= m["fps_compute"] * per_frame_s <= 1.5, (m["fps_compute"], per_frame_s)
    assert 0.3 <= m["fps"] * per_frame_s <= 3.0, (m["fps"], per_frame_s)
    assert m["stages_ms"]["capture_wait"]["p95"] == 0      # timed on decoded frames in memory, as MediaPipe is
    rt = m["realtime"]
    assert rt["frames_processed"] > 0 and rt["frames_processed"] + rt["frames_dropped"] <= 20
    assert rt["frame_age_ms"]["median"] >= 0.5 * m["stages_ms"]["total"]["median"]   # no result before its work
    assert [r["people"] for r in m["per_person"]] == [1, 2] and all(r["ms_per_batch"] > 0 for r in m["per_person"])
    assert m["peak_rss_mb"]["livepose"] > 100 and m["peak_rss_mb"]["with_mediapipe"] >= m["peak_rss_mb"]["livepose"]
    assert m["mediapipe"]["detection_rate"] > 0.9        # one clear person on a white background
    assert m["ratio"] == pytest.approx(m["fps_compute"] / m["mediapipe"]["fps"])
    assert m["movenet"]["detection_rate"] > 0.9
    assert m["ratio_movenet"] == pytest.approx(m["fps_compute"] / m["movenet"]["fps"])


def test_bench_refuses_an_unknown_rival_before_loading(shared_data, tmp_path, capsys):
    assert cli(["bench", str(shared_data / SQUATS), "--rival", "openpose"]) == 2
    assert "unknown rival 'openpose'" in capsys.readouterr().err


def test_bench_app_counts_frames_the_real_window_paints(shared_data, small_weights, tmp_path, capsys, qapp):
    """`livepose bench-app`: the real window replays a 640x480 copy live; painted frames and ages come back."""
    out = tmp_path / "app.json"
    assert cli(["bench-app", "--model", str(small_weights), "--seconds", "3", "--warmup-s", "1",
                "--json", str(out)]) == 0
    assert "display fps" in capsys.readouterr().out
    m = json.loads(out.read_text())
    assert m["size"] == [640, 480] and m["video_fps"] == pytest.approx(50, abs=1)
    assert m["frames_painted"] >= 2 and m["display_fps"] == pytest.approx((m["frames_painted"] - 1) / m["seconds"])
    assert m["display_fps"] < m["video_fps"] * 1.05          # a live replay never shows more than the clip has
    assert m["frame_age_ms"]["median"] > 0 and {"detect", "infer", "total"} <= set(m["stages_ms"])
