"""`livepose smooth`: re-filter a recorded JSONL run offline with other smoothing settings.

The raw keypoints of each frame go through the same SmoothingBank as in the live run, so with the recorded settings
the output is identical to the live run's smoothed keypoints. Without ``--filter`` and parameter options, the
settings recorded per frame are replayed (runtime changes included).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from livepose.config import SmoothConfig
from livepose.metrics import jitter
from livepose.records import FrameRecord, frame_record, read_records, smooth_config_from, write_records
from livepose.smooth import METHODS, MOTION_MODELS, SmoothingBank
from livepose.writers import check_outputs

log = logging.getLogger(__name__)

#: command-line option -> SmoothConfig field
OVERRIDES = {
    "filter": "method", "motion_model": "motion_model", "process_noise": "process_noise",
    "measurement_noise": "measurement_noise", "min_cutoff": "oneeuro_min_cutoff", "beta": "oneeuro_beta",
    "min_score": "min_score", "max_predict_s": "max_predict_s",
}


def refilter(records: Iterable[FrameRecord], overrides: dict[str, object] | None = None) -> Iterator[FrameRecord]:
    """Smooth the raw keypoints of recorded frames again; ``overrides`` (SmoothConfig fields) replace the recorded."""
    overrides = overrides or {}
    bank: SmoothingBank | None = None
    for rec in records:
        cfg = dataclasses.replace(smooth_config_from(rec.filter) if rec.filter else SmoothConfig(), **overrides)
        if bank is None:
            bank = SmoothingBank(cfg)
        else:
            bank.set_config(cfg)
        ids, keypoints, scores = rec.raw_arrays()
        out = bank.update(ids, keypoints, scores, rec.t)
        boxes = [p.box for p in rec.people]
        yield frame_record(rec.frame, rec.t, rec.source_time, ids, boxes, out, cfg, rec.timings_ms)


def _jitter_by_track(records: list[FrameRecord], which: str) -> float:
    """Mean jitter (px/frame^2) over tracks, counting frames where the track is present."""
    tracks: dict[int, dict[int, np.ndarray]] = {}
    for i, rec in enumerate(records):
        for p in rec.people:
            tracks.setdefault(p.id, {})[i] = getattr(p, which)
    values = []
    for frames in tracks.values():
        idx = sorted(frames)
        if len(idx) < 3:
            continue
        pts = np.full((idx[-1] - idx[0] + 1, len(frames[idx[0]]), 2), np.nan)
        for i in idx:
            pts[i - idx[0]] = np.where((frames[i][:, 2:] > 0), frames[i][:, :2], np.nan)
        j = jitter(pts)
        if j.count:
            values.append(j.px)
    return float(np.mean(values)) if values else float("nan")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="JSONL recorded by `livepose run` (raw and smoothed keypoints per frame)")
    parser.add_argument("-o", "--output", required=True, help="JSONL to write, same format")
    parser.add_argument("--filter", choices=METHODS, help="smoothing method (default: as recorded, per frame)")
    parser.add_argument("--motion-model", choices=tuple(MOTION_MODELS), help="Kalman: cv or ca")
    parser.add_argument("--process-noise", type=float, help="Kalman: white acceleration variance, (px/s^2)^2")
    parser.add_argument("--measurement-noise", type=float, help="Kalman: keypoint noise std in px at score 1")
    parser.add_argument("--min-cutoff", type=float, help="One Euro: cutoff frequency at rest, Hz")
    parser.add_argument("--beta", type=float, help="One Euro: speed coefficient")
    parser.add_argument("--min-score", type=float, help="keypoints below this score are treated as missing")
    parser.add_argument("--max-predict-s", type=float, help="seconds a missing joint is predicted before dropping")


def main(args: argparse.Namespace) -> int:
    overrides = {field: getattr(args, opt) for opt, field in OVERRIDES.items() if getattr(args, opt) is not None}
    bad: list[int] = []
    try:
        check_outputs({"--output": Path(args.output)}, inputs=[args.input])
        records = list(read_records(args.input, skipped=bad))
        if not records:
            raise ValueError(f"{args.input}: no livepose frame records" + (
                f" in its {len(bad)} lines (a JSONL written by `livepose run --keypoints` is needed)" if bad else ""))
        out = list(refilter(records, overrides))
        write_records(args.output, out)
    except (OSError, ValueError) as exc:    # missing or unreadable input, a CSV, an unwritable output
        reason = f"{exc.filename}: {exc.strerror}" if isinstance(exc, OSError) and exc.filename else str(exc)
        print(f"livepose smooth: {reason}", file=sys.stderr)
        return 2
    if bad:   # counted as a log scorer would: a torn last line (a full disk, a kill) or corrupt lines elsewhere
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        print(f"livepose smooth: skipped {len(bad)} lines of {args.input} that are not frame records (line {shown})",
              file=sys.stderr)
    raw, before, after = (_jitter_by_track(records, "raw"), _jitter_by_track(records, "smoothed"),
                          _jitter_by_track(out, "smoothed"))
    print(f"{len(out)} frames -> {args.output}")
    print(f"jitter (mean |acceleration|, px/frame^2): raw {raw:.3f}, recorded smoothed {before:.3f}, "
          f"re-filtered {after:.3f}")
    return 0
