"""`livepose run SOURCE`: track people headless and write an annotated video, JSONL and/or CSV.

Files are processed frame by frame by default (every frame, as fast as the machine goes); ``--realtime``
replays at the native rate and drops what the pipeline cannot keep up with, as a live camera would.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from livepose.config import DecodeConfig, PipelineConfig, RenderConfig, SmoothConfig, SourceConfig
from livepose.detect import DETECTORS
from livepose.runtime import add_runtime_arguments

log = logging.getLogger(__name__)


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that builds a pipeline (run, bench, app)."""
    p.add_argument("--model", default="default", help="'default' (shipped weights), a .npz file, a torch "
                   "checkpoint (.pth/.pth.tar) or a name from `livepose weights list`")
    p.add_argument("--input-size",
                   help="network input HxW, e.g. 256x192, multiples of 32 (default: the weights' own size)")
    p.add_argument("--filter", choices=("kalman", "oneeuro", "none"), default=SmoothConfig.method)
    p.add_argument("--no-smooth", action="store_true", help="same as --filter none")
    p.add_argument("--process-noise", type=float, default=SmoothConfig.process_noise)
    p.add_argument("--measurement-noise", type=float, default=SmoothConfig.measurement_noise)
    p.add_argument("--flip-test", action="store_true", help="average with the mirrored crop (2x network cost)")
    p.add_argument("--max-people", type=int, default=None, help="cap on people per frame")
    p.add_argument("--detector", choices=DETECTORS, default=PipelineConfig.detector,
                   help="blazepose: fast, made for one prominent person (webcam); nanodet: COCO-trained, finds "
                        "groups and small people, about 3x the detector time; fused: both (the most people)")
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


def build_pipeline(args: argparse.Namespace):
    """Model + detector + pipeline from command-line options."""
    from livepose.detect import make_detector
    from livepose.estimate import PoseEstimator
    from livepose.pipeline import Pipeline
    from livepose.zoo import load_posenet

    cfg = pipeline_config(args)
    size = tuple(int(v) for v in args.input_size.lower().split("x")) if args.input_size else None
    net = load_posenet(args.model, input_size=size, batch_sizes=cfg.batch_sizes, runtime=args.runtime,
                       precision=args.precision)
    return Pipeline(PoseEstimator(net, cfg.crop, cfg.decode), make_detector(cfg), cfg), net.name


def load_pipeline(args: argparse.Namespace, prog: str):
    """:func:`build_pipeline` for a command's entry point: missing, damaged or foreign weights (or a LiteRT export
    of them that failed) are one line on stderr and ``None``, not a traceback, so every command that loads a model
    fails the same clear way."""
    from livepose.export_lite import ExportFailed

    try:
        return build_pipeline(args)
    except (OSError, ValueError, ExportFailed) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="video file, image folder, camera index (0) or /dev/videoN, or stream URL")
    p.add_argument("--out", type=Path, help="annotated video (.mp4, or .avi to survive a crash)")
    p.add_argument("--keypoints", type=Path, help="JSONL: one record per frame, raw and smoothed keypoints")
    p.add_argument("--csv", type=Path, help="CSV: one row per frame x person x joint")
    p.add_argument("--realtime", action="store_true", help="replay files at native fps, dropping frames")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--show-raw", action="store_true", help="draw the raw skeleton as a ghost beside the smoothed one")
    add_model_arguments(p)


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from livepose.qt import ensure_app
    from livepose.render import annotate
    from livepose.sources import SourceError, open_source
    from livepose.writers import CsvWriter, JsonlWriter, VideoWriter, WriterError

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
    render_cfg = replace(RenderConfig(), show_raw=args.show_raw)
    total = source.frame_count if args.max_frames is None else min(args.max_frames, source.frame_count or args.max_frames)
    n = 0
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(source)
            video = stack.enter_context(VideoWriter(args.out, source.native_fps or 30.0)) if args.out else None
            jsonl = stack.enter_context(JsonlWriter(args.keypoints)) if args.keypoints else None
            table = stack.enter_context(CsvWriter(args.csv)) if args.csv else None
            for frame in tqdm(source, total=total, unit="frame", desc=Path(str(args.source)).name):
                result = pipeline.process(frame)
                if jsonl is not None:
                    jsonl.write(result.record().to_dict())
                if table is not None:
                    rec = result.record()
                    table.write_frame(rec.frame, rec.t, [p.id for p in rec.people],
                                      [p.raw for p in rec.people], [p.smoothed for p in rec.people])
                if video is not None:
                    t = result.timings_ms
                    hud = [f"{model_name}  {len(result.track_ids)} people  filter {result.smooth_cfg.method}",
                           f"net {t['infer']:.0f} ms  detect {t['detect']:.0f} ms  total {t['total']:.0f} ms"]
                    video.write(annotate(frame.image, result.people, render_cfg, hud=hud))
                n += 1
                if args.max_frames is not None and n >= args.max_frames:
                    break
    except (SourceError, WriterError) as exc:
        print(f"livepose run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"livepose run: interrupted after {n} frames; outputs were closed and are valid", file=sys.stderr)
        return 130
    stats = source.stats
    print(f"{n} frames, {stats.frames_dropped} dropped, {stats.skipped_files} unreadable files skipped"
          + (", video truncated" if stats.truncated else ""))
    return 0
