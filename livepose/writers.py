"""Crash-safe outputs: JSONL and CSV flushed per frame, annotated video; all renamed into place on close.

Every writer writes to ``<stem>.partial<suffix>`` and close() renames it to the final name with one
os.replace, so a file under its final name is always complete, and a ``.partial`` file means the process
died before closing. close() runs on a normal exit and on exceptions (Ctrl-C included): what was written
is consistent either way.

What survives a SIGKILL (measured with opencv-python-headless 4.11 on Linux; tests/test_writers.py kills
a writer and checks it):
- JSONL/CSV: every frame written before the kill. Each frame is one write plus flush, so the data is in
  the OS before write returns; os.fsync (every WriterConfig.fsync_interval_s) also covers power loss.
- .avi (MJPG, the default for recordings that must survive a crash): playable up to what FFmpeg had
  flushed, which it does in 256 KiB blocks: killed after 121 frames of 320x240, 107 played back (the
  last ~256 KiB lost: 14 frames at this size, about 2 at 720p).
- .mp4 (mp4v): nothing playable. The moov index is written at release(), and OpenCV's writer exposes no
  fragmented-mp4 option (OPENCV_FFMPEG_WRITER_OPTIONS=movflags;frag_keyframe did not help). Use .mp4 for
  finished, shareable files and .avi where a crash must leave something to watch.
(avc1/H264 do not open in opencv-python-headless here; mp4v, MJPG and XVID do.)
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Sequence

import cv2
import numpy as np

from livepose.config import WriterConfig
from livepose.skeleton import KEYPOINT_NAMES

log = logging.getLogger(__name__)

FOURCC_BY_EXTENSION: dict[str, str] = {".avi": "MJPG", ".mp4": "mp4v", ".mkv": "MJPG"}
CSV_COLUMNS: tuple[str, ...] = ("frame", "t", "id", "joint", "x_raw", "y_raw", "s_raw",
                                "x_smooth", "y_smooth", "s_smooth")
_COORD_DECIMALS = 2   # pixels: 0.01 px is far below keypoint noise
_SCORE_DECIMALS = 4
_TIME_DECIMALS = 6


class WriterError(OSError):
    """An output cannot be written (folder missing and not creatable, not writable, codec refused)."""


def partial_path(path: str | Path) -> Path:
    """Where a writer keeps `path` until close(): out.jsonl -> out.partial.jsonl."""
    path = Path(path)
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class _AtomicOutput:
    """Writes to the partial path; close() flushes, closes and renames it to the final path."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.partial = partial_path(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriterError(f"cannot create output folder {self.path.parent}: {exc.strerror or exc}") from exc
        if not os.access(self.path.parent, os.W_OK | os.X_OK):
            raise WriterError(f"output folder {self.path.parent} is not writable")
        self._closed = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._finish()
        if self.partial.exists():
            os.replace(self.partial, self.path)
        else:
            log.warning("%s: nothing was written, so no file was created", self.path)

    def _finish(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _LineOutput(_AtomicOutput):
    """A text file flushed after every frame and fsynced at most every fsync_interval_s."""

    def __init__(self, path: str | Path, cfg: WriterConfig, newline: str):
        super().__init__(path)
        self._fsync_interval = cfg.fsync_interval_s
        self._last_fsync = time.monotonic()
        try:
            self._file: IO[str] = open(self.partial, "w", encoding="utf-8", newline=newline)
        except OSError as exc:
            raise WriterError(f"cannot write {self.partial}: {exc.strerror or exc}") from exc

    def _end_frame(self) -> None:
        self._file.flush()
        now = time.monotonic()
        if now - self._last_fsync >= self._fsync_interval:
            os.fsync(self._file.fileno())
            self._last_fsync = now

    def _finish(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


class JsonlWriter(_LineOutput):
    """One JSON object per line, one line per frame; numpy arrays and scalars are written as lists and numbers."""

    def __init__(self, path: str | Path, cfg: WriterConfig = WriterConfig()):
        super().__init__(path, cfg, newline="\n")
        self.records = 0

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record, separators=(",", ":"), default=_json_default) + "\n")
        self.records += 1
        self._end_frame()


@dataclass(frozen=True)
class JsonlContents:
    records: list[dict]
    partial_line: str | None   # an unfinished last line (the writer was killed mid-write), else None


def read_jsonl(path: str | Path) -> JsonlContents:
    """Read a JSONL file, tolerating (and reporting) an unfinished last line; corruption elsewhere raises."""
    text = Path(path).read_text(encoding="utf-8")
    lines = text.split("\n")
    tail = lines.pop()   # after the last newline: "" when the file ends cleanly
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {number} is not valid JSON ({exc.msg}); only the last line may be "
                             "unfinished") from exc
    partial = tail if tail.strip() else None
    if partial is not None:
        log.warning("%s: ignoring an unfinished last line of %d characters (the writer stopped mid-line)",
                    path, len(partial))
    return JsonlContents(records, partial)


def _fmt(value: float, decimals: int) -> str:
    return "" if not np.isfinite(value) else f"{value:.{decimals}f}"


class CsvWriter(_LineOutput):
    """One row per frame x person x joint, raw and smoothed side by side (empty cells where missing)."""

    def __init__(self, path: str | Path, cfg: WriterConfig = WriterConfig(),
                 joint_names: Sequence[str] = KEYPOINT_NAMES):
        super().__init__(path, cfg, newline="")
        self.joint_names = tuple(joint_names)
        self._csv = csv.writer(self._file)
        self._csv.writerow(CSV_COLUMNS)
        self._end_frame()

    def write_frame(self, frame: int, t: float, ids: Sequence[int], raw: np.ndarray,
                    smooth: np.ndarray | None = None) -> None:
        """raw and smooth: (people, joints, 3) arrays of x, y, score in image pixels; smooth may be None."""
        raw = np.asarray(raw, dtype=np.float64).reshape(len(ids), len(self.joint_names), 3)
        smooth = (np.full_like(raw, np.nan) if smooth is None
                  else np.asarray(smooth, dtype=np.float64).reshape(raw.shape))
        t_text = _fmt(t, _TIME_DECIMALS)
        for person, track_id in enumerate(ids):
            for joint, name in enumerate(self.joint_names):
                r, s = raw[person, joint], smooth[person, joint]
                self._csv.writerow((frame, t_text, int(track_id), name,
                                    _fmt(r[0], _COORD_DECIMALS), _fmt(r[1], _COORD_DECIMALS),
                                    _fmt(r[2], _SCORE_DECIMALS),
                                    _fmt(s[0], _COORD_DECIMALS), _fmt(s[1], _COORD_DECIMALS),
                                    _fmt(s[2], _SCORE_DECIMALS)))
        self._end_frame()


class VideoWriter(_AtomicOutput):
    """OpenCV video from RGB frames; the codec follows the extension (FOURCC_BY_EXTENSION) unless given.

    The size is fixed by the first frame. See the module docstring for what survives a crash (.avi does).
    """

    def __init__(self, path: str | Path, fps: float, fourcc: str | None = None):
        super().__init__(path)
        extension = self.path.suffix.lower()
        if fourcc is None and extension not in FOURCC_BY_EXTENSION:
            raise ValueError(f"no codec known for {extension!r} videos: use one of {sorted(FOURCC_BY_EXTENSION)} "
                             "or pass fourcc")
        if not fps > 0:
            raise ValueError(f"video fps must be positive, got {fps}")
        self.fourcc = fourcc or FOURCC_BY_EXTENSION[extension]
        self.fps = fps
        self.frames = 0
        self.size: tuple[int, int] | None = None
        self._writer: cv2.VideoWriter | None = None

    def write(self, image: np.ndarray) -> None:
        """Append one RGB uint8 frame."""
        height, width = image.shape[:2]
        if self._writer is None:
            self._writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*self.fourcc), self.fps,
                                           (width, height))
            if not self._writer.isOpened():
                raise WriterError(f"OpenCV cannot write {self.partial} with codec {self.fourcc!r} "
                                  f"(opencv-python-headless writes mp4v in .mp4 and MJPG in .avi)")
            self.size = (width, height)
        elif (width, height) != self.size:
            raise ValueError(f"frame {self.frames} is {width}x{height} but {self.path.name} is "
                             f"{self.size[0]}x{self.size[1]}")
        self._writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def _finish(self) -> None:
        if self._writer is not None:
            self._writer.release()
