"""Shared fixtures: where the real data lives, and a Qt platform that needs no display."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator, Mapping

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LIVEPOSE_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory) -> Path:
    """LiteRT exports and downloads made by tests go to a fresh cache, never the user's (and are re-made each run)."""
    cache = tmp_path_factory.mktemp("livepose_cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("LIVEPOSE_CACHE", str(cache))
    yield cache
    patch.undo()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real images/videos/GT beside the clone (../shared/data); tests that need it skip without it, except in
    CI (``CI`` set), where a missing folder would silently skip half the suite and so fails instead."""
    if not (SHARED_DATA / "README.md").exists():
        message = f"real test data not found at {SHARED_DATA} (set LIVEPOSE_SHARED_DATA or place shared/ beside the clone)"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture(scope="session")
def small_weights(tmp_path_factory) -> Path:
    """Random-weight ResNet-18 SimpleBaseline at 128x96, saved as .npz: exercises the real code paths fast."""
    from livepose.config import ModelConfig
    from livepose.nets.keras_net import build_simplebaseline, save_weights_npz

    cfg = ModelConfig(depth=18, input_size=(128, 96))
    path = tmp_path_factory.mktemp("weights") / "random_r18_128x96.npz"
    save_weights_npz(build_simplebaseline(cfg), path, cfg)
    return path


@functools.cache
def warm_network(weights: Path):
    """The SimpleBaseline from ``weights``, loaded and warmed up once per session: building the Keras model and
    tracing a function per batch size is the slow part of a pipeline, and the network keeps no state between calls
    (tracks, filters and the detector are the pipeline's, made afresh for each test)."""
    from livepose.nets.load import load_network

    net = load_network(str(weights), batch_sizes=(1, 2, 4, 8))
    net.warmup()
    return net


def make_pipeline(weights: Path, cfg=None):
    """A fresh real pipeline (BlazePose detector + the session's warm SimpleBaseline from ``weights``)."""
    from livepose.config import PipelineConfig
    from livepose.detect.blazepose import BlazePoseDetector
    from livepose.estimate import PoseEstimator
    from livepose.pipeline import Pipeline

    cfg = cfg or PipelineConfig()
    return Pipeline(PoseEstimator(warm_network(weights), cfg.crop, cfg.decode), BlazePoseDetector(cfg.detect), cfg)


def relocated(src: Path, dest: Path, keep=lambda items: items) -> Path:
    """A copy of a pose17 file at ``dest`` with absolute image paths, holding the items ``keep`` picks."""
    d = json.loads(src.read_text())
    key = "frames" if "frames" in d else "images"
    d[key] = keep(d[key])
    for item in d[key]:
        item["file"] = str(src.parent / item["file"])
    dest.write_text(json.dumps(d))
    return dest


@contextlib.contextmanager
def reaped(procs: Mapping[object, subprocess.Popen]) -> Iterator[None]:
    """Processes a test started side by side are killed on the way out if still running, whatever the test did."""
    try:
        yield
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def signal_when_ready(procs: Mapping[int, subprocess.Popen], ready: Callable[[int], bool],
                      output: Callable[[int], str], timeout: float, poll_s: float) -> None:
    """Send each process the signal it is keyed by as soon as ``ready(signal)``: runs started side by side, each
    stopped at its own moment. Fails, with ``output(signal)``, if one ends before it is ready, and after
    ``timeout`` seconds if some never are."""
    waiting, deadline = set(procs), time.monotonic() + timeout
    while waiting:
        for sig in sorted(waiting):
            if ready(sig):
                procs[sig].send_signal(sig)
                waiting.discard(sig)
            elif procs[sig].poll() is not None:
                pytest.fail(f"the run to be sent signal {sig} ended first: {output(sig)}")
        if waiting and time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for the runs to be sent {sorted(waiting)} to be ready")
        time.sleep(poll_s)
