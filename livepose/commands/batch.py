"""`livepose batch INPUTS... --out-dir DIR`: track an archive of recorded clips on Ray, locally or on a cluster.

Ray runs the same code on a laptop (a local Ray started for the command) and on a cluster (``--address``). One actor
per worker loads the model once and tracks clips one after another through the loop `livepose run` uses
(:func:`livepose.commands.run.track_source`), so a clip's JSONL equals `livepose run --keypoints`'s apart from timings.

Per clip, in DIR: ``<clip>.jsonl``, ``<clip>.mp4`` with ``--video``, and ``<clip>.status.json``, written last. A clip
is complete when its status says ok for the same settings: a rerun skips it, so a killed batch finishes only the
rest. ``summary.csv`` and ``summary.json`` list every clip. See docs/batch.md.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
from tqdm import tqdm

from livepose.atomic import write_atomic
from livepose.commands.bench import VIDEO_SUFFIXES
from livepose.commands.options import add_model_arguments
from livepose.commands.run import RunOutputs, track_source
from livepose.config import BatchConfig, SourceConfig
from livepose.pipeline import MODEL_LOAD_ERRORS, Pipeline, build_pipeline
from livepose.quiet import verbose
from livepose.sources import natural_key, open_source
from livepose.stopping import EXIT_STATUS, raise_if_requested
from livepose.tables import format_table

# Set before Ray is imported: no usage report, no import-order warning, nothing Ray needs a dashboard for.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_IMPORT_WARNING": "1"}
SUMMARY_FIELDS = ("clip", "source", "status", "frames", "people_per_frame", "fps", "seconds", "error", "reused")
MANIFEST_SUFFIX = ".txt"


class BatchError(Exception):
    """What stops a batch before any clip (a mistake in the command, a model or Ray that cannot start): one line on
    stderr, exit status 2."""


@dataclass(frozen=True)
class Clip:
    name: str      # the output stem in --out-dir, unique within the batch
    source: str    # absolute path, so workers on any node and in any folder find it

    def status_path(self, out_dir: Path) -> Path:
        return out_dir / f"{self.name}.status.json"

    def outputs(self, out_dir: Path, video: bool, cfg: BatchConfig = BatchConfig()) -> RunOutputs:
        return RunOutputs(video=out_dir / f"{self.name}{cfg.video_suffix}" if video else None,
                          keypoints=out_dir / f"{self.name}.jsonl")


# --- inputs and resume -----------------------------------------------------------------------------------------------

def collect_clips(inputs: list[str]) -> list[Clip]:
    """Videos named, found under folders (recursively) or listed one a line in ``.txt`` manifests, each once.

    A missing INPUT is a usage error; a missing manifest entry is a clip that fails, as an archive's lost file would.
    """
    paths: list[Path] = []
    for spec in inputs:
        path = Path(spec).expanduser()
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()]
            paths += sorted(found, key=lambda p: (p.parent.as_posix(), natural_key(p)))
        elif path.is_file() and path.suffix.lower() == MANIFEST_SUFFIX:
            lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
            paths += [path.parent / Path(line).expanduser() for line in lines if line and not line.startswith("#")]
        elif path.is_file():
            paths.append(path)
        else:
            raise BatchError(f"{spec}: no such file or folder")
    unique = list(dict.fromkeys(p.resolve() for p in paths))
    stems = [p.stem for p in unique]
    return [Clip(p.stem if stems.count(p.stem) == 1 else f"{p.stem}-{hashlib.sha1(str(p).encode()).hexdigest()[:8]}",
                 str(p)) for p in unique]


def clip_settings(args: argparse.Namespace) -> dict:
    """The options that decide what a clip's outputs hold (the model options and --video), as JSON types: a clip
    done with other settings is done again."""
    model_options = argparse.ArgumentParser(add_help=False)
    add_model_arguments(model_options)
    keys = sorted(vars(model_options.parse_args([]))) + ["video"]
    return json.loads(json.dumps({k: getattr(args, k) for k in keys}, default=str))


def complete_row(clip: Clip, out_dir: Path, settings: dict, video: bool) -> dict | None:
    """The summary row in the clip's status when its outputs are complete for these settings, else None."""
    try:
        status = json.loads(clip.status_path(out_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    outputs = clip.outputs(out_dir, video)
    complete = all(p.exists() for p in (outputs.keypoints, outputs.video) if p is not None)
    if status.get("status") != "ok" or status.get("settings") != settings or not complete:
        return None
    return {k: status.get(k) for k in SUMMARY_FIELDS}


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def clip_row(clip: Clip, status: str, frames: int = 0, people: int = 0, seconds: float = 0.0,
             error: str = "") -> dict:
    return {"clip": clip.name, "source": clip.source, "status": status, "frames": frames,
            "people_per_frame": round(people / frames, 3) if frames else 0.0,
            "fps": round(frames / seconds, 2) if seconds > 0 else 0.0, "seconds": round(seconds, 3),
            "error": error, "reused": False}


# --- the worker ------------------------------------------------------------------------------------------------------

class ClipWorker:
    """A Ray actor: the model is loaded once, then clips are tracked one after another, each with a fresh tracker."""

    def __init__(self, args: argparse.Namespace, threads: int) -> None:
        cv2.setNumThreads(threads)
        self._settings = clip_settings(args)
        self._video = bool(args.video)
        self._error: str | None = None
        try:
            pipeline, self._model_name = build_pipeline(args, threads)
        except MODEL_LOAD_ERRORS as exc:
            self._error = str(exc)
            return
        # graph tracing happens here, not inside the first clip, whose fps would otherwise be low
        pipeline.estimator.net.warmup()
        self._parts = (pipeline.estimator, pipeline.detector, pipeline.cfg)
        if self._video:
            from livepose.qt import ensure_app  # PyQt5: only when annotated videos are drawn

            ensure_app(headless=True)

    def ready(self) -> str | None:
        """None once the model is loaded, else why it could not be (the user's mistake: bad weights, bad options)."""
        return self._error

    def process(self, clip: Clip, out_dir: str) -> dict:
        """Track one clip into ``out_dir``; any failure is the clip's, recorded in its row with a one-line reason."""
        out = Path(out_dir)
        status_path = clip.status_path(out)
        status_path.unlink(missing_ok=True)   # the outputs are about to change: an earlier status no longer holds
        started = time.perf_counter()
        frames = people = 0
        error = ""
        try:
            source = open_source(clip.source, SourceConfig(mode="every"))
            with source, contextlib.closing(track_source(source, Pipeline(*self._parts), self._model_name,
                                                         clip.outputs(out, self._video))) as results:
                for result in results:
                    frames += 1
                    people += len(result.track_ids)
            if source.stats.truncated:
                error = (f"TruncatedVideo: ended at frame {frames} of the {source.frame_count} its header declares; "
                         f"the outputs hold the frames before")
        except Exception as exc:   # a bad clip fails alone and the batch goes on
            error = one_line(exc)
        row = clip_row(clip, "failed" if error else "ok", frames, people, time.perf_counter() - started, error)
        write_atomic(status_path, json.dumps({**row, "model": self._model_name, "settings": self._settings},
                                             indent=1))
        return row


# --- Ray -------------------------------------------------------------------------------------------------------------

def local_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_address(address: str, cfg: BatchConfig) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that nothing answers on is a mistake in the command: say so in seconds, where
    Ray retries for minutes, printing its own warnings. 'auto' and other names without a port are left to Ray."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=cfg.connect_timeout_s).close()
    except OSError as exc:
        raise BatchError(f"no Ray cluster answers at {address}: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def ray_session(address: str | None, cfg: BatchConfig) -> Iterator[int]:
    """A quiet local Ray (no dashboard, small object store), or the cluster at ``address``; yields its CPUs and
    shuts the connection (and a local Ray) down on exit."""
    if address is not None:
        check_address(address, cfg)
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    import ray  # reads its environment at import: after RAY_ENV is set (and `livepose run` never pays for it)

    on_main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if on_main else None
    # Ray's own warnings (token auth enabled, ...) only with --verbose: clip failures are in the summary
    quiet = {"log_to_driver": False, "configure_logging": True, "logging_level": logging.INFO if verbose() else
             logging.ERROR}
    try:
        try:
            if address is None:
                ray.init(address="local", num_cpus=local_cores(), object_store_memory=cfg.object_store_mb << 20,
                         include_dashboard=False, **quiet)
            else:
                ray.init(address=address, **quiet)
        except Exception as exc:   # ray.init raises plain Exceptions too (a raylet that did not start in 30 s)
            where = "" if address is None else f" at {address}"
            raise BatchError(f"Ray did not start{where}: {one_line(exc)}") from exc
        if on_main:   # ray.init makes SIGTERM exit at once; keep the command's (like Ctrl-C: summary, clean exit)
            signal.signal(signal.SIGTERM, sigterm)
        yield int(ray.cluster_resources().get("CPU", 1))
    finally:
        # ray.shutdown sets SIGTERM's action back to the system default underneath Python's handler, and a SIGTERM
        # (or the stop handler delivering one again) then killed the command before its summary. The stop signals
        # are held while it runs and come right after, here, where a stop is raised to the caller like any other
        # (not later, inside the summary); the command's SIGTERM handler is armed again first.
        if on_main:
            signal.pthread_sigmask(signal.SIG_BLOCK, set(EXIT_STATUS))
        try:
            ray.shutdown()
        finally:
            if on_main:
                signal.signal(signal.SIGTERM, sigterm)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, set(EXIT_STATUS))


def thread_env(threads: int) -> dict[str, str]:
    """A worker's environment for TensorFlow's thread pools, read when it loads. Its sums depend on the thread count
    (1e-7 apart), so `livepose run` under the same variables writes the same bytes as a worker."""
    return {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(threads),
            "OMP_NUM_THREADS": str(threads)}


def start_workers(args: argparse.Namespace, workers: int, cores: int) -> tuple[list, Callable[[], object], int]:
    """``workers`` actors sharing ``cores``: TensorFlow, LiteRT, the detectors and OpenCV get cores // workers threads
    each. Returns the actors, a factory for a replacement, and the threads each has."""
    import ray

    threads = max(1, cores // workers)
    actor = ray.remote(ClipWorker).options(num_cpus=min(threads, cores / workers), max_restarts=1,
                                           max_task_retries=1, runtime_env={"env_vars": thread_env(threads)})

    def spawn():
        return actor.remote(args, threads)

    return [spawn() for _ in range(workers)], spawn, threads


def wait_for(refs: list, num_returns: int, cfg: BatchConfig) -> list:
    """The first ``num_returns`` of ``refs`` to finish. Ray is waited on in slices of ``cfg.poll_s`` and a Ctrl-C or
    SIGTERM is raised between them: the stop handler does not raise inside Ray's code (livepose.stopping), so one
    blocking wait would run the batch on to its end."""
    import ray

    while True:
        raise_if_requested()
        ready, _ = ray.wait(refs, num_returns=num_returns, timeout=cfg.poll_s)
        raise_if_requested()   # a stop that came with the results (a terminal's Ctrl-C reaches the workers too)
        if ready:
            return ready


def wait_ready(actors: list, cfg: BatchConfig) -> None:
    """Block until every actor has loaded the model; a load error (bad weights or options, a worker that cannot start)
    is raised as a BatchError, one line."""
    import ray
    from ray.exceptions import RayError

    refs = [a.ready.remote() for a in actors]
    try:
        errors = [e for e in ray.get(wait_for(refs, len(refs), cfg)) if e]
    except RayError as exc:
        raise BatchError(f"a worker could not start: {one_line(exc)}") from exc
    if errors:
        raise BatchError(errors[0])


def track_all(actors: list, spawn: Callable[[], object], clips: list[Clip], out_dir: Path, rows: dict[str, dict],
              bar: tqdm, cfg: BatchConfig) -> None:
    """Each actor takes the next clip as it finishes one (longest files first, so the tail is short clips); rows
    fill in as clips finish, so an interrupted batch still knows what it did. A worker Ray could not keep alive
    (it died, was restarted and died again) fails its clip and is replaced."""
    import ray
    from ray.exceptions import RayActorError, RayError

    queue = deque(sorted(clips, key=lambda c: os.path.getsize(c.source) if os.path.isfile(c.source) else 0,
                         reverse=True))
    running: dict = {}

    def submit(i: int) -> None:
        if queue:
            clip = queue.popleft()
            running[actors[i].process.remote(clip, str(out_dir))] = (i, clip)

    for i in range(len(actors)):
        submit(i)
    started, frames = time.perf_counter(), 0
    while running:
        (ref,) = wait_for(list(running), 1, cfg)
        i, clip = running.pop(ref)
        try:
            row = ray.get(ref)
        except RayError as exc:
            row = clip_row(clip, "failed", error=f"worker lost on this clip, after Ray's retry: {one_line(exc)}")
            if isinstance(exc, RayActorError):
                actors[i] = spawn()
        rows[clip.name] = row
        frames += row["frames"]
        bar.set_postfix_str(f"{frames / (time.perf_counter() - started):.1f} frames/s", refresh=False)
        bar.update()
        submit(i)


# --- outputs ---------------------------------------------------------------------------------------------------------

def write_summary(out_dir: Path, clips: list[Clip], rows: dict[str, dict]) -> list[dict]:
    """summary.csv and summary.json, each replaced whole; clips without a row were interrupted."""
    ordered = [rows.get(c.name) or clip_row(c, "interrupted") for c in clips]
    text = io.StringIO()
    table = csv.DictWriter(text, SUMMARY_FIELDS, lineterminator="\n")
    table.writeheader()
    table.writerows(ordered)
    write_atomic(out_dir / "summary.csv", text.getvalue())
    write_atomic(out_dir / "summary.json", json.dumps({"clips": ordered}, indent=1))
    return ordered


def run_batch(args: argparse.Namespace, clips: list[Clip], out_dir: Path, cfg: BatchConfig) -> int:
    settings = clip_settings(args)
    rows = {c.name: {**row, "reused": True} for c in clips
            if (row := complete_row(c, out_dir, settings, args.video)) is not None}
    todo = [c for c in clips if c.name not in rows]
    print(f"livepose batch: {len(clips)} clips, {len(rows)} complete from an earlier run, {len(todo)} to do",
          file=sys.stderr)
    interrupted = False
    try:
        if todo:
            with ray_session(args.address, cfg) as cores:
                workers = min(args.workers or cfg.workers or cores, len(todo))
                actors, spawn, threads = start_workers(args, workers, cores)
                print(f"livepose batch: {workers} workers x {threads} threads on {cores} CPUs", file=sys.stderr)
                wait_ready(actors, cfg)
                with tqdm(total=len(todo), unit="clip", desc="clips") as bar:
                    track_all(actors, spawn, todo, out_dir, rows, bar, cfg)
    except KeyboardInterrupt:
        interrupted = True
        # a worker can finish a clip between the stop and its own end: the summary says what a rerun will skip
        rows |= {c.name: row for c in todo if c.name not in rows
                 and (row := complete_row(c, out_dir, settings, args.video)) is not None}
    ordered = write_summary(out_dir, clips, rows)
    failed = sum(r["status"] == "failed" for r in ordered)
    done = sum(r["status"] == "ok" for r in ordered)
    print(f"{done} ok, {failed} failed" + (f", {len(clips) - done - failed} interrupted" if interrupted else "")
          + f"; summary in {out_dir / 'summary.csv'}")
    if interrupted:
        print("livepose batch: interrupted; finished clips are complete and a rerun does the rest", file=sys.stderr)
        return 130
    return 1 if failed else 0


def run_bench(args: argparse.Namespace, clips: list[Clip], out_dir: Path, cfg: BatchConfig) -> int:
    """Every clip with 1 worker, then 2 (BatchConfig.bench_workers), into scratch folders; the model load is timed
    apart from the tracking, which gives the throughput figures."""
    results = []
    try:
        with ray_session(args.address, cfg) as cores:
            import ray   # after ray_session has set Ray's environment

            for workers in cfg.bench_workers:
                with tempfile.TemporaryDirectory(dir=out_dir, prefix=".bench-") as scratch:
                    t0 = time.perf_counter()
                    actors, spawn, threads = start_workers(args, workers, cores)
                    wait_ready(actors, cfg)
                    t1 = time.perf_counter()
                    rows: dict[str, dict] = {}
                    with tqdm(total=len(clips), unit="clip", desc=f"{workers} workers") as bar:
                        track_all(actors, spawn, clips, Path(scratch), rows, bar, cfg)
                    seconds = time.perf_counter() - t1
                    for actor in actors:
                        ray.kill(actor)
                frames = sum(r["frames"] for r in rows.values())
                results.append({"workers": workers, "threads": threads, "clips": len(clips), "frames": frames,
                                "failed": sum(r["status"] == "failed" for r in rows.values()),
                                "startup_s": round(t1 - t0, 2), "seconds": round(seconds, 2),
                                "clips_per_min": round(60 * len(clips) / seconds, 2),
                                "frames_per_s": round(frames / seconds, 2)})
    except KeyboardInterrupt:
        print("livepose batch: bench interrupted", file=sys.stderr)
        return 130
    columns = ("workers", "threads", "clips", "frames", "failed", "startup_s", "seconds", "clips_per_min",
               "frames_per_s")
    print(format_table(columns, [[r[c] for c in columns] for r in results], digits=2))
    write_atomic(out_dir / "bench.json", json.dumps({"cpus": cores, "results": results}, indent=1))
    return 0


# --- command ---------------------------------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="video files, folders (searched for videos) or .txt manifests (one path "
                                             "a line, relative to the manifest)")
    p.add_argument("--out-dir", type=Path, required=True, help="per clip: JSONL, status, video with --video; summary")
    p.add_argument("--workers", type=int, help="Ray actors, each with the model loaded once (default: one per CPU)")
    p.add_argument("--address", help="join a running Ray cluster: 'auto' on one of its nodes, host:6379, or "
                                     "ray://host:10001 (default: a local Ray for this command)")
    p.add_argument("--video", action="store_true", help="also write each clip's annotated video")
    p.add_argument("--bench", action="store_true",
                   help="time every clip with 1 and then 2 workers; print clips/min and frames/s (outputs discarded)")
    add_model_arguments(p)


def main(args: argparse.Namespace) -> int:
    cfg = BatchConfig()
    out_dir = args.out_dir.expanduser().resolve()
    try:
        if args.workers is not None and args.workers < 1:
            raise BatchError(f"--workers must be at least 1, got {args.workers}")
        clips = collect_clips(args.inputs)
        if not clips:
            raise BatchError("no videos found in " + ", ".join(args.inputs))
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BatchError(f"cannot create {out_dir}: {exc.strerror or exc}") from exc
        return (run_bench if args.bench else run_batch)(args, clips, out_dir, cfg)
    except BatchError as exc:
        print(f"livepose batch: {exc}", file=sys.stderr)
        return 2
