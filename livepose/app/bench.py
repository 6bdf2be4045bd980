"""`livepose bench-app [VIDEO]`: frames per second the real window paints while it replays a video live.

`livepose bench` times the pipeline alone; this one measures what a user sees. The video is centre-cropped
and scaled to the asked size (640x480 by default) into a temporary file, opened in the real MainWindow at
its native rate (looping, frames dropped when the pipeline falls behind, as with a camera), and every
distinct frame that reaches the screen is counted from the video widget's paint events. Under the offscreen
Qt platform painting still happens (into the backing store), so the figure includes drawing the overlay.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import cv2

from livepose.commands.bench import measure_and_report, stats
from livepose.commands.options import add_model_arguments, size_pair
from livepose.config import BenchConfig
from livepose.data import data_root
from livepose.tables import format_table

log = logging.getLogger(__name__)

DEFAULT_VIDEO = "videos/mmpose_body3d_demo.mp4"   # one person walking in a studio, 50 fps


def resized_copy(src: Path, dst: Path, size: tuple[int, int]) -> float:
    """Centre-crop ``src`` to the aspect of ``size`` (w, h), scale it, write ``dst``; returns its fps."""

    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise OSError(f"cannot open video {src}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    w, h = size
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            fh, fw = frame.shape[:2]
            cw, ch = min(fw, round(fh * w / h)), min(fh, round(fw * h / w))
            x, y = (fw - cw) // 2, (fh - ch) // 2
            out.write(cv2.resize(frame[y:y + ch, x:x + cw], size, interpolation=cv2.INTER_AREA))
    finally:
        cap.release()
        out.release()
    return fps


class PaintCounter:
    """Qt event filter: notes each distinct result the video widget paints (time, frame age, stage timings)."""

    def __init__(self, view) -> None:
        from PyQt5.QtCore import QEvent, QObject

        class _Filter(QObject):
            def eventFilter(inner, obj, event) -> bool:  # noqa: N802 (Qt's name)
                if event.type() == QEvent.Paint:
                    self._painted(view.result)
                return False

        self.painted: list[tuple[float, float, dict]] = []
        self._last = None
        self._filter = _Filter()
        view.installEventFilter(self._filter)

    def _painted(self, result) -> None:
        if result is not None and result is not self._last:
            self._last = result
            self.painted.append((time.monotonic(), result.frame_age_ms, dict(result.timings_ms)))


def measure(args: argparse.Namespace, video: Path, pipeline, model_name: str) -> dict:
    from PyQt5.QtCore import QTimer

    from livepose.app.settings import AppSettings
    from livepose.app.window import MainWindow
    from livepose.qt import ensure_app

    app = ensure_app()
    pipeline.estimator.net.warmup()
    w, h = args.size
    with tempfile.TemporaryDirectory(prefix="livepose-bench-app-") as tmp:
        clip = Path(tmp) / f"clip_{w}x{h}.mp4"
        fps = resized_copy(video, clip, (w, h))
        settings = AppSettings(loop=True, filter=pipeline.bank.cfg.method if pipeline.bank.cfg.method != "none"
                               else "kalman", smoothing=pipeline.bank.cfg.method != "none")
        window = MainWindow(pipeline, model_name, settings, settings_file=Path(tmp) / "settings.json")
        window.resize(1280, 800)
        window.show()
        counter = PaintCounter(window.view)
        if not window.open_source(str(clip)):
            raise OSError(f"the app could not open {clip}")
        QTimer.singleShot(int((args.warmup_s + args.seconds) * 1000), app.quit)
        app.exec_()
        dropped = window.source.stats.frames_dropped if window.source is not None else 0
        window.close()
    painted = [p for p in counter.painted if p[0] - counter.painted[0][0] >= args.warmup_s] if counter.painted else []
    if len(painted) < 2:
        raise RuntimeError("the window painted fewer than two frames: is the video readable?")
    span = painted[-1][0] - painted[0][0]
    stages = sorted({k for _, _, t in painted for k in t})
    return {"video": str(video), "size": [w, h], "video_fps": fps, "model": model_name,
            "filter": pipeline.bank.cfg.method, "seconds": span, "frames_painted": len(painted),
            "display_fps": (len(painted) - 1) / span, "frames_dropped_by_source": dropped,
            "frame_age_ms": stats([a for _, a, _ in painted]),
            "stages_ms": {s: stats([t[s] for _, _, t in painted if s in t]) for s in stages}}


def report(m: dict) -> str:
    w, h = m["size"]
    return "\n".join([
        f"livepose bench-app: {Path(m['video']).name} as {w}x{h} at {m['video_fps']:.0f} fps, model {m['model']}, "
        f"filter {m['filter']}, {m['seconds']:.1f} s measured",
        f"display fps: {m['display_fps']:.1f} ({m['frames_painted']} distinct frames painted; "
        f"{m['frames_dropped_by_source']} dropped by the live source)",
        f"frame age when painted: p50 {m['frame_age_ms']['median']:.1f} ms, p95 {m['frame_age_ms']['p95']:.1f} ms",
        format_table(["stage", "median ms", "p95 ms"],
                     [[s, v["median"], v["p95"]] for s, v in m["stages_ms"].items()], digits=2)])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", nargs="?", type=Path, help=f"video file (default: ../shared/data/{DEFAULT_VIDEO})")
    p.add_argument("--size", type=size_pair, default="640x480", help="replay size WxH (centre crop, then scale)")
    p.add_argument("--seconds", type=float, default=20.0, help="how long to measure")
    p.add_argument("--warmup-s", type=float, default=2.0, help="seconds shown before measuring")
    p.add_argument("--threads", type=int, default=BenchConfig.threads,
                   help="CPU threads for TF, LiteRT and OpenCV, and CPUs the process is pinned to")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    add_model_arguments(p)


def main(args: argparse.Namespace) -> int:
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    return measure_and_report(args, Path(args.video or data_root() / DEFAULT_VIDEO), measure, report,
                              "livepose bench-app")
