"""`livepose run SOURCE`: track people headless and write an annotated video, JSONL and/or CSV.

Files are processed frame by frame by default (every frame, as fast as the machine goes); ``--realtime``
replays at the native rate and drops what the pipeline cannot keep up with, as a live camera would.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from livepose.commands.options import add_model_arguments
from livepose.config import RenderConfig, SourceConfig
from livepose.pipeline import FrameResult, Pipeline, load_pipeline
from livepose.sources import FrameSource, ImageFolderSource, SourceError, open_source
from livepose.stopping import raise_if_requested
from livepose.writers import (CocoWriter, CsvWriter, JsonlWriter, VideoWriter, WriterError, check_outputs,
                              coco_images_path, partial_path, write_result)

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="video file, image folder, camera index (0) or /dev/videoN, or stream URL")
    p.add_argument("--out", type=Path, help="annotated video (.mp4, or .avi to survive a crash)")
    p.add_argument("--keypoints", type=Path, help="JSONL: one record per frame, raw and smoothed keypoints")
    p.add_argument("--csv", type=Path, help="CSV: one row per frame x person x joint")
    p.add_argument("--coco", type=Path, help="COCO keypoint results JSON (pycocotools loadRes), plus a "
                   "<name>.images.json that maps image_id to frames")
    p.add_argument("--realtime", action="store_true", help="replay files at native fps, dropping frames")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--show-raw", action="store_true", help="draw the raw skeleton as a ghost beside the smoothed one")
    p.add_argument("--hud", action=argparse.BooleanOptionalAction, default=RenderConfig.hud_in_outputs,
                   help="burn the status lines (model, people, filter, timings) into the --out video, scaled to "
                        "its size (default: %(default)s)")
    add_model_arguments(p)


@dataclass(frozen=True)
class RunOutputs:
    """What a run writes (None: not written) and how its annotated video is drawn."""

    video: Path | None = None
    keypoints: Path | None = None
    csv: Path | None = None
    render: RenderConfig = RenderConfig()
    coco: Path | None = None

    def paths(self) -> dict[str, Path | None]:
        """Option name -> path of every file a run writes, for check_outputs before anything is opened."""
        return {"--out": self.video, "--keypoints": self.keypoints, "--csv": self.csv, "--coco": self.coco,
                "--coco images list": coco_images_path(self.coco) if self.coco else None}


def track_source(source: FrameSource, pipeline: Pipeline, model_name: str,
                 outputs: RunOutputs) -> Iterator[FrameResult]:
    """Track ``source`` frame by frame into ``outputs``, yielding each result once it is written.

    The one loop behind `livepose run` and each clip of `livepose batch`, so both write the same records. The outputs
    are renamed from their ``.partial`` names when the generator ends or is closed (wrap it in contextlib.closing).
    """
    from livepose.render import annotate  # PyQt5 (the renderer paints with QPainter): loaded only to draw


    files = source.files if isinstance(source, ImageFolderSource) else None
    with contextlib.ExitStack() as stack:
        video = stack.enter_context(VideoWriter(outputs.video, source.native_fps or 30.0)) if outputs.video else None
        keypoint_writers = [stack.enter_context(make(path)) for path, make in (
            (outputs.keypoints, JsonlWriter), (outputs.csv, CsvWriter),
            (outputs.coco, lambda path: CocoWriter(path, source.name, files))) if path]
        for frame in source:
            raise_if_requested()
            result = pipeline.process(frame)
            for writer in keypoint_writers:
                write_result(writer, result)
            if video is not None:
                video.write(annotate(frame.image, result.people, outputs.render, hud=run_hud(result, model_name)))
            yield result


def run_hud(result: FrameResult, model_name: str) -> list[str]:
    """The status lines of an annotated video (``--hud``)."""
    from livepose.render import people_count  # PyQt5, as above

    t = result.timings_ms
    return [f"{model_name}  {people_count(len(result.track_ids))}  filter {result.smooth_cfg.method}",
            f"net {t['infer']:.0f} ms  detect {t['detect']:.0f} ms  total {t['total']:.0f} ms"]


def main(args: argparse.Namespace) -> int:
    from livepose.qt import ensure_app  # PyQt5: the headless Qt application the renderer needs


    outputs = RunOutputs(args.out, args.keypoints, args.csv,
                         replace(RenderConfig(), show_raw=args.show_raw, hud_in_outputs=args.hud), args.coco)
    paths = outputs.paths()
    try:            # before the model loads (seconds) and before any file is opened
        check_outputs(paths, inputs=[args.source])
    except WriterError as exc:
        print(f"livepose run: {exc}", file=sys.stderr)
        return 2
    if not any(paths.values()):
        print("livepose run: no --out, --keypoints, --csv or --coco given: nothing will be saved", file=sys.stderr)
    ensure_app(headless=True)
    try:
        source = open_source(args.source, SourceConfig(mode="realtime" if args.realtime else "every"))
    except SourceError as exc:
        print(f"livepose run: {exc}", file=sys.stderr)
        return 2
    loaded = load_pipeline(args, "livepose run")
    if loaded is None:          # the source is let go
        source.close()
        return 2
    pipeline, model_name = loaded
    total = source.frame_count if args.max_frames is None else min(args.max_frames, source.frame_count or args.max_frames)
    n = 0
    try:
        with source, contextlib.closing(track_source(source, pipeline, model_name, outputs)) as results:
            for _ in tqdm(itertools.islice(results, args.max_frames), total=total, unit="frame",
                          desc=Path(str(args.source)).name):
                n += 1
    except (SourceError, OSError) as exc:      # WriterError is an OSError: a full disk, a folder gone
        kept = [str(partial_path(p)) for p in paths.values() if p is not None and partial_path(p).exists()]
        print(f"livepose run: {exc}" + (f"; partial output kept in {', '.join(kept)}" if kept else ""),
              file=sys.stderr)
        return 1 if n else 2
    except KeyboardInterrupt:
        print(f"livepose run: interrupted after {n} frames; outputs were closed and are valid", file=sys.stderr)
        return 130
    stats = source.stats
    print(f"{n} frames, {stats.frames_dropped} dropped, {stats.skipped_files} unreadable files skipped"
          + (", video truncated" if stats.truncated else ""))
    written = [str(p) for p in paths.values() if p is not None and p.exists()]
    if written:
        print("wrote " + ", ".join(written))
    return 0
