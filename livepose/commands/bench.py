"""`livepose bench [VIDEO]`: where the time goes, frame by frame, and how that compares with MediaPipe Pose.

One run times the real pipeline over a real video: once from the file (decoding on the capture thread, as in
use), then per stage over the decoded frames held in memory, which are exactly the frames MediaPipe Pose is timed
on in its live tracking mode, so neither system pays for decoding in the compared figure. It replays the video once
more at its native rate to see the frame age a camera user would get (frames the pipeline cannot keep up with are
dropped, as live), and times the network on 1..8 people in one batch. Both run under the same thread budget:
TensorFlow intra-op, LiteRT and OpenCV thread counts are set explicitly, and the process is pinned to that many
CPUs, which also bounds MediaPipe's own threads (its Python API has no thread setting).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from livepose.commands.options import add_model_arguments
from livepose.config import BenchConfig, RivalConfig, SourceConfig
from livepose.data import ASSETS, data_root
from livepose.detect import make_detector
from livepose.pipeline import STAGES, load_pipeline
from livepose.sources import open_source
from livepose.stopping import raise_if_requested
from livepose.tables import format_table, write_json

log = logging.getLogger(__name__)

DEFAULT_VIDEOS = ("sequences_pseudo_gt/tfjs_pose_squats/pose_squats.mp4", "videos/mmpose_body3d_demo.mp4")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")


def default_video() -> Path:
    """The first real clip found: the shared data's squats or mocap video, else a sample shipped in assets/."""
    candidates = [data_root() / rel for rel in DEFAULT_VIDEOS]
    candidates += sorted(p for p in ASSETS.glob("*") if p.suffix.lower() in VIDEO_SUFFIXES) if ASSETS.is_dir() else []
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError("no video given and none of the defaults exists: "
                            + ", ".join(str(p) for p in candidates[:2]) + "; pass VIDEO")


@contextlib.contextmanager
def thread_budget(n: int) -> Iterator[None]:
    """Pin the process to ``n`` CPUs and give TF and OpenCV ``n`` threads; the affinity is restored on exit."""
    import cv2
    import tensorflow as tf  # only to set its thread pools: a LiteRT run loads TensorFlow nowhere else

    before = os.sched_getaffinity(0) if hasattr(os, "sched_setaffinity") else None
    if before is not None:
        os.sched_setaffinity(0, sorted(before)[:n])
    cv2_before = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:   # TensorFlow already ran in this process: its pools are fixed
        log.warning("TensorFlow was initialised before the bench: its thread pools keep %d intra-op threads",
                    tf.config.threading.get_intra_op_parallelism_threads())
    try:
        yield
    finally:
        cv2.setNumThreads(cv2_before)
        if before is not None:
            os.sched_setaffinity(0, before)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def stats(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, np.float64)
    return {"median": float(np.median(v)), "p95": float(np.percentile(v, 95))} if len(v) else \
        {"median": float("nan"), "p95": float("nan")}


def pipeline_pass(pipeline, video: Path, mode: str, limit: int | None, bar: tqdm | None = None,
                  keep: list | None = None) -> tuple[list, int]:
    """Run the pipeline over the video from a fresh state; returns the results and the frames dropped.

    In realtime mode ``limit`` counts source frames (dropped ones included), so the pass covers the same span;
    frames the source skipped past the span's end (the read that ends it) are not counted as dropped.
    """
    pipeline.reset()
    results = []
    with open_source(video, SourceConfig(mode=mode)) as source:
        while True:
            tw = time.perf_counter()
            frame = source.read()
            if frame is None or (limit is not None and frame.index >= limit):
                break
            results.append(pipeline.process(frame, (time.perf_counter() - tw) * 1e3))
            if keep is not None:
                keep.append(frame)
            if bar is not None:
                bar.update()
        stats = source.stats
    span = stats.frames_read + stats.frames_dropped if frame is None else min(frame.index, limit)
    return results, span - len(results)


def memory_pass(pipeline, frames: list, bar: tqdm) -> list:
    """The pipeline over decoded frames (with their own index and media time) from a fresh state: compute only,
    no decoding beside it; each frame is stamped as captured now, so frame age means the same as from a file."""
    pipeline.reset()
    results = []
    for frame in frames:
        results.append(pipeline.process(replace(frame, timestamp=time.monotonic())))
        bar.update()
    return results


def person_cost(estimator, image: np.ndarray, box: np.ndarray, people: tuple[int, ...], calls: int) -> list[dict]:
    """Milliseconds for one estimator call on n copies of a real person box (crop + network + decode)."""
    rows = []
    for n in people:
        boxes = np.repeat(np.asarray(box, np.float32)[None], n, axis=0)
        estimator(image, boxes)       # a batch size not yet seen by the pipeline
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            estimator(image, boxes)
            times.append((time.perf_counter() - t0) * 1e3)
        ms = float(np.median(times))
        rows.append({"people": n, "ms_per_batch": ms, "ms_per_person": ms / n})
    return rows


RIVAL_MODES = {"mediapipe": "tracking (static_image_mode=False)",
               "movenet": "tracking (each crop from the previous frame's keypoints)"}


def time_rival(name: str, frames: list[np.ndarray], warmup: int, repeats: int,
               cfg: RivalConfig = RivalConfig()) -> dict:
    """A rival live over the frames (MediaPipe Pose or MoveNet Thunder), ms per frame; each repeat starts afresh."""
    from livepose.commands.rivals import TRACKERS  # MediaPipe / MoveNet: loaded only when a rival is asked for

    times, found = [], 0
    with TRACKERS[name](cfg) as pose:
        for image in frames[:warmup]:
            pose(image)
        for _ in range(repeats):
            pose.reset()
            for image in tqdm(frames, unit="frame", desc=name, leave=False):
                raise_if_requested()
                t0 = time.perf_counter()
                found += pose(image) is not None
                times.append((time.perf_counter() - t0) * 1e3)
    return {"model_complexity": cfg.model_complexity if name == "mediapipe" else None, "mode": RIVAL_MODES[name],
            "ms": stats(times), "ms_mean": float(np.mean(times)), "fps": 1e3 / float(np.mean(times)),
            "detection_rate": found / len(times)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", nargs="?", type=Path, help="video file (default: a real clip from ../shared/data)")
    p.add_argument("--people", default=",".join(map(str, BenchConfig.people)),
                   help="batch sizes for the cost per extra person, e.g. 1,2,4,8")
    p.add_argument("--repeats", type=int, default=BenchConfig.repeats, help="timed passes over the frames")
    p.add_argument("--warmup", type=int, default=BenchConfig.warmup, help="frames run before timing")
    p.add_argument("--frames", type=int, help="frames per pass (default: the whole video)")
    p.add_argument("--threads", type=int, default=BenchConfig.threads,
                   help="CPU threads for TF, LiteRT and OpenCV, and CPUs the process is pinned to")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--rival", default="mediapipe,movenet",
                   help="rivals timed on the same frames, comma-separated: mediapipe (Pose full; the ratio's "
                        "reference), movenet (Thunder)")
    p.add_argument("--no-rival", action="store_true", help="skip every rival")
    add_model_arguments(p)


def measure(args: argparse.Namespace, video: Path, pipeline, model_name: str) -> dict:
    cfg = BenchConfig()
    people = tuple(int(v) for v in str(args.people).split(",") if v.strip())
    if pipeline.cfg.detect.num_threads != args.threads:
        pc = pipeline.cfg
        pipeline.detector = make_detector(replace(
            pc, detect=replace(pc.detect, num_threads=args.threads),
            coco_detect=replace(pc.coco_detect, num_threads=args.threads),
            multi_detect=replace(pc.multi_detect, num_threads=args.threads)))
    pipeline.estimator.net.warmup()

    frames: list = []
    pipeline_pass(pipeline, video, "every", args.warmup)
    # one pass from the file (decoding on the capture thread, as in use), which also keeps the decoded frames;
    # the timed passes then run on those frames in memory, the very input MediaPipe gets
    from_file, _ = pipeline_pass(pipeline, video, "every", args.frames, keep=frames)
    if not frames:
        raise ValueError(f"{video}: no frame was read")
    results = []
    with tqdm(total=len(frames) * args.repeats, unit="frame", desc="livepose", leave=False) as bar:
        started = time.perf_counter()
        for _ in range(args.repeats):
            results += memory_pass(pipeline, frames, bar)
        elapsed = time.perf_counter() - started     # wall clock: the background detector's time is inside it
    timings = {s: [res.timings_ms[s] for res in results] for s in STAGES}
    detect_calls = [res.timings_ms.get("detect_background", res.timings_ms["detect"])
                    for res in results if res.detector_ran]
    live, live_dropped = pipeline_pass(pipeline, video, "realtime", args.frames)
    images = [f.image for f in frames]
    ages = [res.frame_age_ms for res in live]
    h, w = images[0].shape[:2]
    box = next((res.boxes[0] for res in results if len(res.boxes)), np.array([w / 4, h / 8, w / 2, 3 * h / 4]))
    out = {
        "video": str(video), "resolution": [w, h], "model": model_name, "threads": args.threads,
        "frames_per_pass": len(frames), "repeats": args.repeats, "warmup": args.warmup,
        "stages_ms": {s: stats(v) for s, v in timings.items()},
        "detect_per_call_ms": stats(detect_calls),
        "fps": 1e3 / float(np.mean([res.timings_ms["total"] for res in from_file])),
        "fps_compute": len(results) / elapsed,
        "detector_calls_per_frame": len(detect_calls) / len(results),
        "people_per_frame": float(np.mean([len(res.track_ids) for res in results])),
        "realtime": {"frame_age_ms": stats(ages), "frames_processed": len(live),
                     "frames_dropped": live_dropped},
        "per_person": person_cost(pipeline.estimator, images[0], box, people, cfg.person_repeats * args.repeats),
        "peak_rss_mb": {"livepose": peak_rss_mb()},
        "mediapipe": None, "ratio": None, "movenet": None, "ratio_movenet": None,
    }
    for name in rival_names(args):
        out[name] = time_rival(name, images, args.warmup, args.repeats)
        out["peak_rss_mb"][f"with_{name}"] = peak_rss_mb()
        out["ratio" if name == "mediapipe" else f"ratio_{name}"] = out["fps_compute"] / out[name]["fps"]
    return out


def rival_names(args: argparse.Namespace) -> list[str]:
    """The rivals asked for; an unknown name is a ValueError (one line for the user)."""
    from livepose.commands.rivals import TRACKERS  # MediaPipe / MoveNet: loaded only when a rival is asked for

    names = [] if args.no_rival else [n.strip() for n in args.rival.split(",") if n.strip()]
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise ValueError(f"unknown rival {unknown[0]!r} (choose from {', '.join(TRACKERS)})")
    return names


def report(m: dict) -> str:
    w, h = m["resolution"]
    lines = [f"livepose bench: {Path(m['video']).name} ({w}x{h}), {m['frames_per_pass']} frames x {m['repeats']} "
             f"repeats after {m['warmup']} warm-up frames; model {m['model']}; {m['threads']} threads",
             format_table(["stage", "median ms", "p95 ms"],
                          [[s, v["median"], v["p95"]] for s, v in m["stages_ms"].items()]
                          + [["detect (per call)", m["detect_per_call_ms"]["median"], m["detect_per_call_ms"]["p95"]]],
                          digits=2),
             "",
             f"pipeline fps: {m['fps']:.1f} with frame decoding, {m['fps_compute']:.1f} compute only; "
             f"{m['people_per_frame']:.2f} people/frame; detector calls/frame: {m['detector_calls_per_frame']:.2f}",
             f"frame age at native rate: p50 {m['realtime']['frame_age_ms']['median']:.1f} ms, "
             f"p95 {m['realtime']['frame_age_ms']['p95']:.1f} ms; {m['realtime']['frames_dropped']} frames dropped, "
             f"{m['realtime']['frames_processed']} processed",
             "peak RSS: " + ", ".join(f"{k.replace('_', ' ')} {v:.0f} MB" for k, v in m["peak_rss_mb"].items()),
             "",
             format_table(["people in batch", "ms/batch", "ms/person"],
                          [[r["people"], r["ms_per_batch"], r["ms_per_person"]] for r in m["per_person"]], digits=2)]
    for name, title, ratio in (("mediapipe", "MediaPipe Pose full", "ratio"),
                               ("movenet", "MoveNet Thunder", "ratio_movenet")):
        rival = m.get(name)
        if rival is not None:
            lines += ["",
                      f"{title} ({rival['mode']}) on the same frames: median {rival['ms']['median']:.1f} ms, "
                      f"p95 {rival['ms']['p95']:.1f} ms, {rival['fps']:.1f} fps, "
                      f"person found in {100 * rival['detection_rate']:.0f}% of frames",
                      f"throughput ratio livepose/{title}: {m[ratio]:.2f} (compute only, same frames, same threads)"]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    try:
        video = args.video or default_video()
        rival_names(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"livepose bench: {exc}", file=sys.stderr)
        return 2
    return measure_and_report(args, Path(video), measure, report, "livepose bench")


def measure_and_report(args: argparse.Namespace, video: Path, measure_fn, report_fn, prog: str) -> int:
    """The tail every speed command shares: check the video, load the model, measure under the thread budget,
    print, save. ``measure_fn(args, video, pipeline, model_name)`` does the measuring."""
    if not video.is_file():
        print(f"{prog}: video {video} does not exist; pass VIDEO", file=sys.stderr)
        return 2
    with thread_budget(args.threads):      # before the model loads: TF's thread pools are fixed at first use
        loaded = load_pipeline(args, prog)
        if loaded is None:
            return 2
        m = measure_fn(args, video, *loaded)
    print(report_fn(m))
    if args.json:
        write_json(args.json, m)
        print(f"wrote {args.json}")
    return 0
