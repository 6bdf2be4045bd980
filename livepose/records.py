"""The JSONL record of a run: one line per frame, raw and smoothed keypoints of every tracked person.

One line::

    {"frame": 12, "t": 0.4, "source_time": 0.4,
     "people": [{"id": 3, "box": [x, y, w, h], "raw": [[x, y, s] * 17], "smoothed": [[x, y, s] * 17]}],
     "filter": {"method": "kalman", ...every SmoothConfig field...}, "timings_ms": {"detect": 4.1, ...}}

``source_time`` is the frame's time in its source (video PTS, index / fps for folders, capture time for cameras);
``t`` is the time the smoother saw, which the live pipeline takes from ``source_time`` (so today they are equal) and
``livepose smooth`` re-filters by, so a tool that re-times frames edits ``t`` alone. ``filter`` holds the whole SmoothConfig in effect at that frame, so a run whose settings changed at runtime
can be replayed exactly. A dropped keypoint (NaN) is written as ``null``, keeping the file strict JSON.
Floats are written with Python's shortest round-trip repr, so reading a record back gives bit-identical arrays.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from livepose.atomic import replacing
from livepose.config import SmoothConfig
from livepose.smooth import BankOutput


def _points_to_json(keypoints: np.ndarray, scores: np.ndarray) -> list[list[float | None]]:
    rows = np.concatenate([np.asarray(keypoints, np.float64), np.asarray(scores, np.float64)[:, None]], axis=1)
    return [[float(v) if np.isfinite(v) else None for v in row] for row in rows]


def _points_from_json(rows: Sequence[Sequence[float | None]]) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in rows], np.float64).reshape(-1, 3)


@dataclass
class PersonRecord:
    id: int
    box: np.ndarray          # (4,) xywh
    raw: np.ndarray          # (J, 3): x, y, score as the pose network gave them
    smoothed: np.ndarray     # (J, 3): after the temporal filter (== raw when smoothing is off)


@dataclass
class FrameRecord:
    frame: int
    t: float
    source_time: float
    people: list[PersonRecord]
    filter: dict = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)

    def to_dict(self) -> dict:
        """Plain JSON types only (NaN keypoints as None), for writers that serialise dicts."""
        return {
            "frame": int(self.frame), "t": float(self.t), "source_time": float(self.source_time),
            "people": [{"id": int(p.id), "box": [float(v) for v in p.box],
                        "raw": _points_to_json(p.raw[:, :2], p.raw[:, 2]),
                        "smoothed": _points_to_json(p.smoothed[:, :2], p.smoothed[:, 2])} for p in self.people],
            "filter": self.filter, "timings_ms": {k: float(v) for k, v in self.timings_ms.items()},
        }

    @classmethod
    def from_json(cls, line: str) -> "FrameRecord":
        d = json.loads(line)
        people = [PersonRecord(int(p["id"]), np.asarray(p["box"], np.float64), _points_from_json(p["raw"]),
                               _points_from_json(p["smoothed"])) for p in d["people"]]
        return cls(int(d["frame"]), float(d["t"]), float(d["source_time"]), people, dict(d.get("filter", {})),
                   dict(d.get("timings_ms", {})))

    def raw_arrays(self) -> tuple[list[int], np.ndarray, np.ndarray]:
        """Track ids, raw keypoints (N, J, 2) and raw scores (N, J): the smoother's input at this frame."""
        raw = np.stack([p.raw for p in self.people]) if self.people else np.zeros((0, 0, 3))
        return [p.id for p in self.people], raw[..., :2], raw[..., 2]


def filter_params(cfg: SmoothConfig) -> dict:
    """The ``filter`` field of a record: the whole smoothing config."""
    return dataclasses.asdict(cfg)


def smooth_config_from(params: dict) -> SmoothConfig:
    """The SmoothConfig a record's ``filter`` field describes (fields it lacks take their defaults)."""
    known = {f.name for f in dataclasses.fields(SmoothConfig)}
    unknown = set(params) - known
    if unknown:
        raise ValueError(f"unknown smoothing parameters in record: {sorted(unknown)}; known: {sorted(known)}")
    return SmoothConfig(**params)


def frame_record(frame: int, t: float, source_time: float, track_ids: Sequence[int], boxes: np.ndarray,
                 out: BankOutput, cfg: SmoothConfig, timings_ms: dict[str, float] | None = None) -> FrameRecord:
    """The record of one frame from the SmoothingBank's output (the live runner and the re-filter both use it)."""
    people = [PersonRecord(int(tid), np.asarray(boxes[i], np.float64),
                           np.column_stack([out.raw_keypoints[i], out.raw_scores[i]]),
                           np.column_stack([out.keypoints[i], out.scores[i]]))
              for i, tid in enumerate(track_ids)]
    return FrameRecord(frame, t, source_time, people, filter_params(cfg), dict(timings_ms or {}))


def read_records(path: str | Path, skipped: list[int] | None = None) -> Iterator[FrameRecord]:
    """The frame records of a JSONL file. A line that is not one raises ValueError, unless ``skipped`` is given:
    then its line number is appended there and reading goes on (a torn last line, a corrupt line in a long log)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield FrameRecord.from_json(line)
                except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
                    if skipped is None:
                        raise ValueError(f"{path}:{n}: not a livepose frame record ({exc})") from exc
                    skipped.append(n)


def write_records(path: str | Path, records: Iterable[FrameRecord]) -> int:
    """Write records as JSONL, replacing ``path`` only once all are written; returns how many."""
    n = 0
    with replacing(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(rec.to_json() + "\n")
            n += 1
    return n
