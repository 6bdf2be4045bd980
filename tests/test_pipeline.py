"""The live pipeline on real video: stage timings, frame age, and dropping frames instead of falling behind."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from livepose.config import PipelineConfig, SourceConfig
from livepose.pipeline import STAGES, PipelineWorker
from conftest import make_pipeline


class SlowNet:
    """The real network plus a fixed delay: a model far slower than the video's frame rate."""

    def __init__(self, net, delay_s: float) -> None:
        self._net, self.delay_s = net, delay_s

    def __getattr__(self, name):
        return getattr(self._net, name)

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        time.sleep(self.delay_s)
        return self._net(crops)


def test_realtime_replay_drops_frames_with_a_slow_model(shared_data, small_weights):
    from livepose.sources import open_source

    pipe = make_pipeline(small_weights)
    pipe.detector(np.zeros((480, 640, 3), np.uint8))  # warm the detector too: only the slow model should lag
    pipe.estimator.net = SlowNet(pipe.estimator.net, 0.15)
    source = open_source(str(shared_data / "videos/mmpose_body3d_demo.mp4"), replace(SourceConfig(), mode="realtime"))
    results = []
    worker = PipelineWorker(source, pipe, results.append)
    worker.start()
    time.sleep(6.0)
    worker.stop()
    source.close()
    assert len(results) >= 5
    assert source.stats.frames_dropped > len(results), "a 50 fps clip through a >150 ms model must drop frames"
    indices = [r.frame.index for r in results]
    assert indices == sorted(indices) and indices[-1] - indices[0] > len(results)  # it skips ahead
    ages = [r.frame_age_ms for r in results[2:]]
    assert max(ages) < 1000, f"frame age must stay bounded, not grow: {ages}"


def test_every_result_carries_stage_timings_and_frame_age(shared_data, small_weights):
    from livepose.sources import open_source

    pipe = make_pipeline(small_weights)
    with open_source(str(shared_data / "videos/mmpose_demo_street.mp4"), SourceConfig(mode="every")) as source:
        results = [pipe.process(f) for f in source]
    assert len(results) == 5
    for r in results:
        assert set(STAGES) <= set(r.timings_ms)
        assert r.timings_ms["total"] >= r.timings_ms["infer"] >= 0
        assert r.frame_age_ms >= r.timings_ms["total"] - r.timings_ms["capture_wait"] - 1
    assert results[0].detector_ran
