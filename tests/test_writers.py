"""Writers on real frames and real keypoints: round trips, atomic rename, and what survives a SIGKILL."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from livepose.config import WriterConfig
from livepose.skeleton import KEYPOINT_NAMES
from livepose.writers import (CSV_COLUMNS, CsvWriter, JsonlWriter, VideoWriter, WriterError, partial_path,
                              read_jsonl)

ROOT = Path(__file__).resolve().parents[1]
JHMDB = "sequences_gt/jhmdb_goal_keeping_tips_catch_fr_med_2"


@pytest.fixture(scope="module")
def clip(shared_data):
    """Real frames (RGB) and their ground-truth keypoints (T, 17, 3)."""
    gt = json.loads((shared_data / JHMDB / "gt.pose17.json").read_text())
    frames = [cv2.cvtColor(cv2.imread(str(shared_data / JHMDB / f["file"])), cv2.COLOR_BGR2RGB)
              for f in gt["frames"][:12]]
    keypoints = np.array([f["people"][0]["keypoints"] for f in gt["frames"][:12]], dtype=np.float64)
    return frames, keypoints


def test_jsonl_round_trip_is_atomic(tmp_path, clip):
    _, keypoints = clip
    path = tmp_path / "out" / "run.jsonl"          # the folder is created
    with JsonlWriter(path, WriterConfig(fsync_interval_s=0.0)) as writer:
        for i, kp in enumerate(keypoints):
            writer.write({"frame": i, "t": np.float32(i / 30), "keypoints": kp, "ids": np.array([1])})
        assert writer.partial.exists() and not path.exists()
    assert path.exists() and not partial_path(path).exists()
    contents = read_jsonl(path)
    assert contents.partial_line is None
    assert [r["frame"] for r in contents.records] == list(range(len(keypoints)))
    np.testing.assert_allclose([r["keypoints"] for r in contents.records], keypoints)


def test_jsonl_reader_reports_a_partial_last_line_and_rejects_corruption_elsewhere(tmp_path, caplog):
    path = tmp_path / "run.jsonl"
    with JsonlWriter(path) as writer:
        for i in range(3):
            writer.write({"frame": i})
    with open(path, "a") as f:
        f.write('{"frame": 3, "keypo')
    contents = read_jsonl(path)
    assert [r["frame"] for r in contents.records] == [0, 1, 2]
    assert contents.partial_line == '{"frame": 3, "keypo'
    assert "unfinished last line" in caplog.text
    lines = path.read_text().split("\n")
    path.write_text("\n".join([lines[0], "{broken", lines[1]]) + "\n")
    with pytest.raises(ValueError, match="line 2"):
        read_jsonl(path)


def test_exception_inside_the_block_still_finishes_the_file(tmp_path):
    path = tmp_path / "run.jsonl"
    with pytest.raises(KeyboardInterrupt):
        with JsonlWriter(path) as writer:
            writer.write({"frame": 0})
            raise KeyboardInterrupt
    assert read_jsonl(path).records == [{"frame": 0}]


def test_csv_rows_per_frame_person_joint(tmp_path, clip):
    _, keypoints = clip
    path = tmp_path / "run.csv"
    smooth = keypoints[1].copy()
    smooth[3] = np.nan                              # a joint the filter dropped
    with CsvWriter(path) as writer:
        writer.write_frame(0, 0.0, [7], keypoints[0][None])                               # no smoothing yet
        writer.write_frame(1, 1 / 30, [7, 9], np.stack([keypoints[1], keypoints[2]]),
                           np.stack([smooth, keypoints[2]]))
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    body = rows[1:]
    assert len(body) == 17 * 3
    assert [r[3] for r in body[:17]] == list(KEYPOINT_NAMES)
    first = body[0]
    assert first[:3] == ["0", "0.000000", "7"] and first[7:] == ["", "", ""]
    assert float(first[4]) == pytest.approx(keypoints[0, 0, 0], abs=0.005)
    dropped = body[17 + 3]
    assert dropped[2] == "7" and dropped[7:] == ["", "", ""] and dropped[4] != ""
    second_person = body[34 + 5]
    assert second_person[2] == "9" and second_person[3] == "left_shoulder"
    assert float(second_person[8]) == pytest.approx(keypoints[2, 5, 1], abs=0.005)


@pytest.mark.parametrize("name", ["clip.mp4", "clip.avi"])
def test_video_is_playable_after_close(tmp_path, clip, name):
    frames, _ = clip
    path = tmp_path / name
    with VideoWriter(path, fps=30) as writer:
        for frame in frames:
            writer.write(frame)
    assert path.exists() and not partial_path(path).exists()
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened() and cap.get(cv2.CAP_PROP_FPS) == pytest.approx(30)
    decoded = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        decoded.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    assert len(decoded) == len(frames)
    for got, sent in zip(decoded, frames):
        assert got.shape == sent.shape
        assert np.abs(got.astype(int) - sent.astype(int)).mean() < 6   # lossy codecs, same picture


def test_unwritable_destination_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for cls, args in ((JsonlWriter, ()), (CsvWriter, ()), (VideoWriter, (30,))):
        with pytest.raises(WriterError, match="cannot create output folder"):
            cls(blocker / "sub" / "out.mp4", *args)
    if os.geteuid() != 0:   # root ignores permission bits
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        with pytest.raises(WriterError, match="not writable"):
            JsonlWriter(locked / "run.jsonl")
    with pytest.raises(ValueError, match="no codec"):
        VideoWriter(tmp_path / "clip.webm", fps=30)


CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import cv2, numpy as np
    from livepose.writers import CsvWriter, JsonlWriter, VideoWriter
    clip, out = Path(sys.argv[1]), Path(sys.argv[2])
    gt = json.loads((clip / "gt.pose17.json").read_text())
    frames = [cv2.cvtColor(cv2.imread(str(clip / f["file"])), cv2.COLOR_BGR2RGB) for f in gt["frames"]]
    kps = np.array([f["people"][0]["keypoints"] for f in gt["frames"]], dtype=float)
    jsonl, table, video = JsonlWriter(out / "run.jsonl"), CsvWriter(out / "run.csv"), VideoWriter(out / "run.avi", 30)
    i = 0
    while True:   # never closes: the parent kills it
        k = i % len(frames)
        jsonl.write({"frame": i, "t": i / 30, "ids": [1], "keypoints": kps[k][None]})
        table.write_frame(i, i / 30, [1], kps[k][None])
        video.write(frames[k])
        print(i, flush=True)
        i += 1
""")


def test_sigkill_leaves_readable_jsonl_csv_and_video(tmp_path, shared_data):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(shared_data / JHMDB), str(tmp_path)],
                             stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    written = -1
    try:
        for line in child.stdout:
            written = int(line)
            if written >= 120:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL and written >= 120
    frames_done = written + 1                     # frames fully written (printed after all three writers)
    assert not (tmp_path / "run.jsonl").exists()  # never finished, so never renamed

    contents = read_jsonl(tmp_path / "run.partial.jsonl")
    assert len(contents.records) >= frames_done
    assert [r["frame"] for r in contents.records] == list(range(len(contents.records)))

    with open(tmp_path / "run.partial.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    complete_frames = {int(r["frame"]) for r in rows if r["s_raw"] != ""}
    assert set(range(frames_done)) <= complete_frames

    cap = cv2.VideoCapture(str(tmp_path / "run.partial.avi"))
    assert cap.isOpened()
    readable = 0
    first = None
    while True:
        ok, image = cap.read()
        if not ok:
            break
        first = image if first is None else first
        readable += 1
    # MJPG in AVI loses only what FFmpeg had not flushed yet: the last few frames.
    assert 0.8 * frames_done <= readable <= frames_done + 1, (readable, frames_done)
    expected = cv2.imread(str(shared_data / JHMDB / "frames/00001.png"))
    assert np.abs(first.astype(int) - expected.astype(int)).mean() < 6
