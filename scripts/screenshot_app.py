#!/usr/bin/env python3
"""README screenshot: the real app window on a real video (raw ghost + smoothed skeleton + jitter plot) -> PNG.

Runs under a virtual X server (Xvfb, started here when $DISPLAY is unset) so it works on a headless machine:
    apt-get install -y xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxkbcommon-x11-0 libxcb-image0 \
        libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-xfixes0
    .venv/bin/python scripts/screenshot_app.py --out docs/app.png
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "videos" / "mmpose_body3d_demo.mp4"
XVFB_SCREEN = "1600x1000x24"


def start_xvfb(display: str = ":99") -> subprocess.Popen | None:
    if os.environ.get("DISPLAY"):
        return None
    if shutil.which("Xvfb") is None:
        sys.exit("no $DISPLAY and no Xvfb: apt-get install -y xvfb (see this script's docstring)")
    proc = subprocess.Popen(["Xvfb", display, "-screen", "0", XVFB_SCREEN, "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["DISPLAY"] = display
    time.sleep(1.0)   # let the server open its socket
    return proc


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    p.add_argument("--model", default="default")
    p.add_argument("--frames", type=int, default=250, help="frames to process before the shot (fills the plot)")
    p.add_argument("--start", type=int, default=0, help="first frame of the video")
    p.add_argument("--joint", type=int, default=9, help="joint plotted (COCO index; 9 = left wrist)")
    p.add_argument("--min-score", type=float, help="draw/smooth keypoints above this score (random weights: 0)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "app.png")
    args = p.parse_args()

    xvfb = start_xvfb()
    scratch = tempfile.mkdtemp(prefix="livepose-shot-")   # keeps the user's settings untouched
    try:
        from livepose.qt import ensure_app

        app = ensure_app(headless=False)
        from livepose.app.settings import AppSettings
        from livepose.app.window import MainWindow
        from livepose.config import RenderConfig, SourceConfig
        from livepose.commands.options import add_model_arguments
        from livepose.pipeline import build_pipeline

        model_parser = argparse.ArgumentParser()
        add_model_arguments(model_parser)
        pipeline, name = build_pipeline(model_parser.parse_args(["--model", args.model]))
        render = RenderConfig()
        if args.min_score is not None:
            render = dataclasses.replace(render, min_score=args.min_score)
            pipeline.set_smoothing(dataclasses.replace(pipeline.bank.cfg, min_score=args.min_score))
        window = MainWindow(pipeline, name, AppSettings(show_raw=True, joint=args.joint), render_cfg=render,
                            source_cfg=SourceConfig(mode="every"), settings_file=Path(scratch) / "app.json")
        window.resize(1500, 900)
        window.show()
        if not window.open_source(str(args.video)):
            return 2
        if args.start:
            window.seek(args.start)
        while window.view.result is None or window.view.result.frame.index < args.start + args.frames:
            app.processEvents()
            if not window.stream_running:
                break
            time.sleep(0.01)
        window.toggle_play()
        for _ in range(50):            # let the last result and a panel refresh arrive
            app.processEvents()
            time.sleep(0.02)
        window.jitter.refresh()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        ok = window.grab().save(str(args.out), "PNG")
        window.close()
        print(f"{'saved' if ok else 'FAILED to save'} {args.out} (model {name}, frame {window.view.result.frame.index})")
        return 0 if ok else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(5)


if __name__ == "__main__":
    sys.exit(main())
