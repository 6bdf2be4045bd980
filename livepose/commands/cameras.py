"""`livepose cameras`: which camera indices open here, and in what mode, before choosing one for `run` or the app."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from livepose.config import AppConfig, SourceConfig
from livepose.sources import BACKENDS, probe_cameras
from livepose.tables import format_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-index", type=int, default=AppConfig.camera_probe, help="try indices 0 .. N-1")
    p.add_argument("--backend", choices=sorted(BACKENDS), default=SourceConfig.backend,
                   help="OpenCV capture backend (v4l2 on Linux, dshow/msmf on Windows, avfoundation on macOS)")


def main(args: argparse.Namespace) -> int:
    if args.max_index < 1:
        print(f"livepose cameras: --max-index must be at least 1, got {args.max_index}", file=sys.stderr)
        return 2
    cameras = probe_cameras(args.max_index, replace(SourceConfig(), backend=args.backend))
    if not cameras:
        print(f"livepose cameras: no camera opens at indices 0-{args.max_index - 1} with backend "
              f"{args.backend!r} (is one plugged in, or held by another program?)", file=sys.stderr)
        return 1
    rows = [[c.index, f"{c.width}x{c.height}", c.fps or float("nan")] for c in cameras]
    print(format_table(["index", "opens at", "fps"], rows, digits=1))
    print("use one with: livepose run INDEX ...  or  run_live.py --camera INDEX")
    return 0
