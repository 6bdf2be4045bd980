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
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from livepose.commands.options import add_runtime_arguments, size_pair
from livepose.config import DecodeConfig, LiteConfig, PipelineConfig, RenderConfig, SmoothConfig, SourceConfig
from livepose.detectors import DETECTORS, make_detector
from livepose.estimate import PoseEstimator
from livepose.nets.lite_cache import ExportFailed
from livepose.nets.load import load_network
from livepose.pipeline import FrameResult, Pipeline
from livepose.quiet import native_chatter_filtered
from livepose.sources import FrameSource, ImageFolderSource, SourceError, open_source
from livepose.stopping import raise_if_requested
from livepose.writers import (CocoWriter, CsvWriter, JsonlWriter, VideoWriter, WriterError, check_outputs,
                              coco_images_path, partial_path, write_result)

log = logging.getLogger(__name__)


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that builds a pipeline (run, bench, app)."""
    p.add_argument("--model", default="default", help="'default' (shipped weights), a .npz file, a torch "
                   "checkpoint (.pth/.pth.tar) or a name from `livepose weights list`")
    p.add_argument("--input-size", type=size_pair,
                   help="network input HxW, e.g. 256x192, multiples of 32 (default: the weights' own size)")
    p.add_argument("--filter", choices=("kalman", "oneeuro", "none"), default=SmoothConfig.method,
                   help=f"temporal smoothing of the keypoints (default {SmoothConfig.method})")
    p.add_argument("--no-smooth", action="store_true", help="same as --filter none")
    p.add_argument("--process-noise", type=float, default=SmoothConfig.process_noise,
                   help="Kalman: white acceleration variance, (px/s^2)^2; higher follows faster "
                        f"(default {SmoothConfig.process_noise:g})")
    p.add_argument("--measurement-noise", type=float, default=SmoothConfig.measurement_noise,
                   help="Kalman: keypoint noise std in px at score 1; higher smooths more "
                        f"(default {SmoothConfig.measurement_noise:g})")
    p.add_argument("--flip-test", action="store_true", help="average with the mirrored crop (2x network cost)")
    p.add_argument("--max-people", type=int, default=None, help="cap on people per frame")
    p.add_argument("--detector", choices=DETECTORS, default=PipelineConfig.detector,
                   help="multipose (default): MoveNet MultiPose, every person with their pose, up to 6 a view "
                        "(a full view is searched again in halves); blazepose: fast, made for one prominent person; "
                        "nanodet: COCO boxes, small people; fused: NanoDet and tiled BlazePose")
    p.add_argument("--sync-detect", action="store_true",
                   help="run the periodic newcomer search on the frame it serves instead of beside the frames")
    add_runtime_arguments(p)


def pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    cfg = PipelineConfig()
    smooth = replace(cfg.smooth, method="none" if args.no_smooth else args.filter,
                     process_noise=args.process_noise, measurement_noise=args.measurement_noise)
    detect = cfg.detect if args.max_people is None else replace(cfg.detect, max_people=args.max_people)
    track = replace(cfg.track, background_detect=not args.sync_detect)
    return replace(cfg, smooth=smooth, detect=detect, detector=args.detector, track=track,
                   decode=replace(DecodeConfig(), flip_test=args.flip_test))


def build_pipeline(args: argparse.Namespace, threads: int | None = None):
    """Model + detector + pipeline from command-line options.

    ``threads`` caps the LiteRT network's and the detectors' CPU threads, for processes that share a machine (batch
    workers); None keeps each config's default.
    """
    cfg = pipeline_config(args)
    lite_cfg = LiteConfig()
    if threads is not None:   # every stage config with a thread count (the detectors'), and the LiteRT network's
        cfg = replace(cfg, **{f.name: replace(getattr(cfg, f.name), num_threads=threads) for f in fields(cfg)
                              if hasattr(getattr(cfg, f.name), "num_threads")})
        lite_cfg = replace(lite_cfg, num_threads=threads)
    net = load_network(args.model, input_size=args.input_size, batch_sizes=cfg.batch_sizes, runtime=args.runtime,
                       precision=args.precision, lite_cfg=lite_cfg)
    return Pipeline(PoseEstimator(net, cfg.crop, cfg.decode), make_detector(cfg), cfg), net.name


def model_load_errors() -> tuple[type[Exception], ...]:
    """What loading weights raises for a user's mistake (missing, damaged or foreign weights, a failed LiteRT
    export): reported as one line, never a traceback."""
    return OSError, ValueError, ExportFailed


def load_pipeline(args: argparse.Namespace, prog: str):
    """:func:`build_pipeline` for a command's entry point: missing, damaged or foreign weights (or a LiteRT export
    of them that failed) are one line on stderr and ``None``, not a traceback, so every command that loads a model
    fails the same clear way. LiteRT's start-up lines are left out unless ``--verbose``."""
    try:
        with native_chatter_filtered():
            return build_pipeline(args)
    except model_load_errors() as exc:      # named by its path when the loader's message does not say which file
        print(f"{prog}: {exc}" if str(args.model) in str(exc) else f"{prog}: {args.model}: {exc}", file=sys.stderr)
        return None


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
