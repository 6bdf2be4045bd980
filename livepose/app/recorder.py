"""Recording on the pipeline thread: every processed frame, not only the ones the UI had time to show.

A recording is an annotated video (writers.VideoWriter: .avi survives a crash) and/or keypoints (JSONL
records as ``livepose smooth`` reads them, CSV, or COCO results JSON). Start/stop come from the UI thread, writes from the
worker; one lock orders them, so stop() returns with every file closed and renamed into place.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, Sequence

from livepose.config import RenderConfig
from livepose.render import annotate
from livepose.writers import CocoWriter, CsvWriter, JsonlWriter, VideoWriter, WriterError, write_result

log = logging.getLogger(__name__)

KEYPOINT_FORMATS = (".jsonl", ".csv", ".json")


class Recorder:
    """Up to two outputs at once: "video" and "keypoints"."""

    def __init__(self, render_cfg: RenderConfig = RenderConfig(),
                 hud: Callable[[object], Sequence[str]] = lambda result: (),
                 on_error: Callable[[str], None] = lambda message: None) -> None:
        self.render_cfg = render_cfg   # replaced by the UI when the drawing options change
        self.hud = hud
        self.on_error = on_error
        self._lock = threading.Lock()
        self._outputs: dict[str, object] = {}

    def active(self, kind: str) -> bool:
        return kind in self._outputs

    def start_video(self, path: str | Path, fps: float) -> None:
        self._start("video", VideoWriter(path, fps))

    def start_keypoints(self, path: str | Path, source_name: str = "live") -> None:
        """JSONL, CSV or (.json) COCO results; ``source_name`` names the frames in a COCO images list."""
        suffix = Path(path).suffix.lower()
        if suffix not in KEYPOINT_FORMATS:
            raise ValueError(f"keypoints are exported as {' or '.join(KEYPOINT_FORMATS)}, not {suffix or 'no extension'!r}")
        writers = {".jsonl": JsonlWriter, ".csv": CsvWriter}
        self._start("keypoints", writers[suffix](path) if suffix in writers else CocoWriter(path, source_name))

    def _start(self, kind: str, writer) -> None:
        self.stop(kind)
        with self._lock:
            self._outputs[kind] = writer

    def stop(self, kind: str | None = None) -> list[Path]:
        """Close one output (or all); returns the finished files."""
        with self._lock:
            kinds = [kind] if kind is not None else list(self._outputs)
            writers = [self._outputs.pop(k) for k in kinds if k in self._outputs]
        done = []
        for writer in writers:
            try:
                writer.close()
                done.append(writer.path)
            except OSError as exc:
                log.error("closing %s failed: %s", writer.path, exc)
                self.on_error(f"could not finish {writer.path}: {exc}")
        return done

    def write(self, result) -> None:
        with self._lock:
            for kind, writer in list(self._outputs.items()):
                try:
                    if kind == "video":
                        writer.write(annotate(result.frame.image, result.people, self.render_cfg,
                                              hud=self.hud(result)))
                    else:
                        write_result(writer, result)
                except (WriterError, OSError, ValueError) as exc:
                    # a full disk ends this output, not the stream; what was written stays in the .partial file
                    del self._outputs[kind]
                    writer.abandon()
                    log.error("recording to %s stopped: %s", writer.path, exc)
                    self.on_error(f"recording to {writer.path} stopped: {exc}; kept {writer.partial}")
