"""Long-run check: replay a real video in a loop through the full pipeline and watch memory and threads.

    python -m livepose.commands.soak VIDEO --minutes 30 --json soak.json

Frame-by-frame mode (every frame, as fast as the machine goes), so 30 minutes of soak is far more frames
than 30 minutes of live video. RSS and the thread count are sampled on a clock; the RSS slope (MB per
minute, least squares after the warm-up) is what shows a leak.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from livepose.commands.options import add_model_arguments
from livepose.config import SourceConfig
from livepose.pipeline import load_pipeline
from livepose.sources import open_source


def rss_mb() -> float:
    """Resident set size of this process now (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise OSError("VmRSS not found in /proc/self/status")


def soak(pipeline, video: str, seconds: float, sample_every_s: float = 5.0, warmup_s: float = 10.0) -> dict:
    """Run ``pipeline`` over ``video`` looped for ``seconds``; returns frames, samples and the RSS slope."""
    samples: list[tuple[float, float, int]] = []
    frames = people = 0
    start = time.monotonic()
    next_sample = start
    with open_source(video, replace(SourceConfig(), mode="every", loop=True)) as source:
        for frame in source:
            people += len(pipeline.process(frame).track_ids)
            frames += 1
            now = time.monotonic()
            if now >= next_sample:
                samples.append((now - start, rss_mb(), threading.active_count()))
                next_sample = now + sample_every_s
            if now - start >= seconds:
                break
    samples.append((time.monotonic() - start, rss_mb(), threading.active_count()))
    t, rss, threads = (np.array(col) for col in zip(*samples))
    steady = t >= min(warmup_s, t[-1] / 2)
    slope = float(np.polyfit(t[steady] / 60.0, rss[steady], 1)[0]) if steady.sum() >= 2 else 0.0
    return {"video": video, "seconds": round(float(t[-1]), 1), "frames": frames, "people_per_frame": people / max(frames, 1),
            "rss_start_mb": round(float(rss[steady][0]), 1), "rss_end_mb": round(float(rss[-1]), 1),
            "rss_peak_mb": round(float(rss.max()), 1), "rss_slope_mb_per_min": round(slope, 2),
            "threads_min": int(threads[steady].min()), "threads_max": int(threads[steady].max()),
            "samples": [[round(a, 1), round(b, 1), int(c)] for a, b, c in samples]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m livepose.commands.soak", description=__doc__.splitlines()[0])
    p.add_argument("video")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--sample-every", type=float, default=10.0, help="seconds between RSS samples")
    p.add_argument("--json", type=Path)
    add_model_arguments(p)
    args = p.parse_args(argv)
    loaded = load_pipeline(args, "livepose soak")
    if loaded is None:
        return 2
    pipeline, name = loaded
    report = {"model": name, **soak(pipeline, args.video, args.minutes * 60, args.sample_every)}
    summary = {k: v for k, v in report.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
