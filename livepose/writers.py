"""Crash-safe outputs: JSONL and CSV flushed per frame, annotated video; all renamed into place on close.

Every writer writes to ``<stem>.partial<suffix>`` and close() renames it to the final name with one
os.replace, so a file under its final name is always complete, and a ``.partial`` file means the process
died before closing or the run failed. Leaving a ``with`` block normally or by Ctrl-C/SIGTERM closes (the
frames written are a valid, shorter output); leaving it by any other error, or after a write failed (a full
disk), abandons: the ``.partial`` file is kept (removed when empty) and an earlier file under the final name
is never touched. A write that fails part-way is cut back to the last whole frame, so every JSONL line parses.

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
import io
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Sequence

import cv2
import numpy as np

from livepose.atomic import write_atomic
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


def check_outputs(outputs: dict[str, Path | None], inputs: Sequence[str | Path] = ()) -> None:
    """Refuse, before anything is opened, outputs that would lose data: two on one path, one on an input, a video
    extension with no codec, or a folder that cannot be created or written. ``outputs`` maps option -> path."""
    seen: dict[Path, str] = {Path(p).resolve(): "the input" for p in inputs if Path(p).exists()}
    for option, path in outputs.items():
        if path is None:
            continue
        path = Path(path)
        real = path.resolve()
        for target in (real, partial_path(real)):
            if target in seen:
                raise WriterError(f"{option} {path} is the same file as {seen[target]}: give each output its own "
                                  "path")
        seen[real] = seen[partial_path(real)] = f"{option}"
        if option == "--out" and path.suffix.lower() not in FOURCC_BY_EXTENSION:
            raise WriterError(f"{option} {path}: no codec known for {path.suffix or 'no extension'!r} videos; use "
                              f"one of {', '.join(sorted(FOURCC_BY_EXTENSION))}")
        if path.is_dir():
            raise WriterError(f"{option} {path} is a folder: give a file name")
        _check_folder(path)


def _check_folder(path: Path) -> None:
    """Create ``path``'s folder and prove it takes a file (permission bits, read-only mounts and root included)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriterError(f"cannot create output folder {path.parent}: {exc.strerror or exc}") from exc
    try:
        tempfile.TemporaryFile(dir=path.parent).close()
    except OSError as exc:
        raise WriterError(f"output folder {path.parent} is not writable ({exc.strerror or exc})") from exc


class _AtomicOutput:
    """Writes to the partial path; close() flushes, closes and renames it to the final path, abandon() does not."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.partial = partial_path(self.path)
        _check_folder(self.path)
        self._closed = False
        self.failed: str | None = None    # why a write failed; a failed output is never renamed into place

    def close(self) -> None:
        """Finish and rename into place; after a failed write, abandon() instead and raise WriterError."""
        if self._closed:
            return
        if self.failed is not None:
            self.abandon()
            raise WriterError(f"{self.path} was not written: {self.failed}; what was written is in {self.partial}")
        self._closed = True
        try:
            self._finish()
        except OSError as exc:
            self.failed = exc.strerror or str(exc)
            self.abandon()
            raise WriterError(f"cannot finish {self.partial}: {self.failed}") from exc
        if self.partial.exists():
            os.replace(self.partial, self.path)
        else:
            log.warning("%s: nothing was written, so no file was created", self.path)

    def abandon(self) -> None:
        """Stop without touching the final path: keep the ``.partial`` file for inspection, or remove it if empty."""
        if self._closed:
            return
        self._closed = True
        try:
            self._release()
        except OSError:
            pass                          # already failing: the first error is the one reported
        if self.partial.exists() and self.partial.stat().st_size == 0:
            self.partial.unlink()

    def _finish(self) -> None:
        """Flush and close, raising on failure."""
        raise NotImplementedError

    def _release(self) -> None:
        """Close without the guarantees of _finish (used when abandoning)."""
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None or issubclass(exc_type, (KeyboardInterrupt, GeneratorExit)):
            self.close()                  # a normal end, the user or the consumer stopping: shorter but whole
        else:
            self.abandon()


class _LineOutput(_AtomicOutput):
    """A text file written one whole frame per unbuffered write and fsynced at most every fsync_interval_s.

    A write that fails part-way (a full disk) is truncated back to the last whole frame, so the file never ends in
    a torn line, and the output is marked failed.
    """

    def __init__(self, path: str | Path, cfg: WriterConfig):
        super().__init__(path)
        self._fsync_interval = cfg.fsync_interval_s
        self._last_fsync = time.monotonic()
        self._size = 0                    # bytes of whole frames in the file
        try:
            self._file: IO[bytes] = open(self.partial, "wb", buffering=0)
        except OSError as exc:
            raise WriterError(f"cannot write {self.partial}: {exc.strerror or exc}") from exc

    def _write_frame(self, text: str) -> None:
        if self.failed is not None:
            raise WriterError(f"{self.partial}: an earlier write failed ({self.failed})")
        data = memoryview(text.encode("utf-8"))
        try:
            while data:
                data = data[self._file.write(data):]
            now = time.monotonic()
            if now - self._last_fsync >= self._fsync_interval:
                os.fsync(self._file.fileno())
                self._last_fsync = now
        except OSError as exc:
            self.failed = exc.strerror or str(exc)
            self._file.truncate(self._size)
            raise WriterError(f"cannot write {self.partial}: {self.failed}") from exc
        self._size = self._file.tell()

    def _finish(self) -> None:
        os.fsync(self._file.fileno())
        self._file.close()

    def _release(self) -> None:
        self._file.close()


class JsonlWriter(_LineOutput):
    """One JSON object per line, one line per frame; numpy arrays and scalars are written as lists and numbers."""

    def __init__(self, path: str | Path, cfg: WriterConfig = WriterConfig()):
        super().__init__(path, cfg)
        self.records = 0

    def write(self, record: dict) -> None:
        self._write_frame(json.dumps(record, separators=(",", ":"), default=_json_default) + "\n")
        self.records += 1


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
        super().__init__(path, cfg)
        self.joint_names = tuple(joint_names)
        self._rows = io.StringIO(newline="")     # one frame's rows, written to the file in one go
        self._csv = csv.writer(self._rows)
        self._csv.writerow(CSV_COLUMNS)
        self._flush_rows()

    def _flush_rows(self) -> None:
        text = self._rows.getvalue()
        self._rows.seek(0)
        self._rows.truncate()
        self._write_frame(text)

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
        self._flush_rows()


class VideoWriter(_AtomicOutput):
    """OpenCV video from RGB frames; the codec follows the extension (FOURCC_BY_EXTENSION) unless given.

    The size is fixed by the first frame; a frame of another size (an image folder of mixed sizes) is scaled to fit
    and padded with black (``letterboxed`` counts them). close() checks that the file plays back every frame, since
    OpenCV drops frames silently when the disk fills. See the module docstring for what survives a crash.
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
        self.letterboxed = 0
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
            if not self.letterboxed:
                log.warning("%s: frame %d is %dx%d, the video %dx%d: frames of other sizes are letterboxed",
                            self.path.name, self.frames, width, height, *self.size)
            image = letterbox(image, self.size)
            self.letterboxed += 1
        self._writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def _release(self) -> None:
        if self._writer is not None:
            self._writer.release()

    def _finish(self) -> None:
        self._release()
        if self.frames:
            cap = cv2.VideoCapture(str(self.partial))
            playable = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
            cap.release()
            if playable < self.frames:
                raise WriterError(f"only {playable} of {self.frames} frames can be played back (disk full?)")


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to fit ``size`` (width, height) without distortion, centred on black."""
    width, height = size
    scale = min(width / image.shape[1], height / image.shape[0])
    w, h = max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))
    out = np.zeros((height, width, 3), np.uint8)
    x, y = (width - w) // 2, (height - h) // 2
    out[y:y + h, x:x + w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return out


def coco_images_path(path: str | Path) -> Path:
    """The images list beside a COCO results file: results.json -> results.images.json."""
    path = Path(path)
    return path.with_name(f"{path.stem}.images{path.suffix}")


class CocoWriter(_AtomicOutput):
    """COCO keypoint results, the list pycocotools' ``loadRes`` and pose benchmarks read, written at close.

    One entry per person and frame: ``image_id`` (the frame index: the file's position in an image folder),
    ``category_id`` 1, ``keypoints`` as 17 x (x, y, score) with missing joints as 0, ``score`` (the mean score of the
    joints found) and ``track_id``. ``<stem>.images.json`` beside it maps each ``image_id`` to its frame: file name
    (``video.mp4#frame=12`` for a video), frame index, time in the source, width and height.
    """

    def __init__(self, path: str | Path, source_name: str, file_names: Sequence[str] | None = None):
        super().__init__(path)
        self.images_path = coco_images_path(self.path)
        self._source_name = Path(source_name).name
        self._file_names = file_names
        self._results: list[dict] = []
        self._images: list[dict] = []

    def write(self, frame_index: int, source_time: float, size: tuple[int, int],
              people: Sequence[tuple[int, np.ndarray]]) -> None:
        """``people``: (track id, (J, 3) x, y, score) pairs of one frame; ``size`` the frame's (width, height)."""
        name = (Path(self._file_names[frame_index]).name if self._file_names is not None
                else f"{self._source_name}#frame={frame_index}")
        self._images.append({"id": int(frame_index), "file_name": name, "frame": int(frame_index),
                             "time": round(float(source_time), _TIME_DECIMALS), "width": int(size[0]),
                             "height": int(size[1])})
        for track_id, keypoints in people:
            kp = np.nan_to_num(np.asarray(keypoints, np.float64), nan=0.0)
            found = kp[:, 2] > 0
            self._results.append({
                "image_id": int(frame_index), "category_id": 1, "track_id": int(track_id),
                "keypoints": [round(float(v), _COORD_DECIMALS) for v in kp.reshape(-1)],
                "score": round(float(kp[found, 2].mean()) if found.any() else 0.0, _SCORE_DECIMALS)})

    def _finish(self) -> None:
        write_atomic(self.images_path, json.dumps(self._images, separators=(",", ":")))
        self.partial.write_text(json.dumps(self._results, separators=(",", ":")), encoding="utf-8")

    def _release(self) -> None:
        """Nothing is on disk before close."""


def write_result(writer: JsonlWriter | CsvWriter | CocoWriter, result) -> None:
    """One pipeline FrameResult into a keypoint writer of any format (the CLI run and the app's export share it)."""
    rec = result.record()
    if isinstance(writer, JsonlWriter):
        writer.write(rec.to_dict())
    elif isinstance(writer, CsvWriter):
        writer.write_frame(rec.frame, rec.t, [p.id for p in rec.people], [p.raw for p in rec.people],
                           [p.smoothed for p in rec.people])
    else:
        height, width = result.frame.image.shape[:2]
        writer.write(rec.frame, rec.source_time, (width, height), [(p.id, p.smoothed) for p in rec.people])
