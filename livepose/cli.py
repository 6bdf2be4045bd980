"""`livepose` command line: one subcommand per job, each living in the module that does the job.

Subcommand modules are imported lazily so `livepose weights list` does not pay for TensorFlow.
Each module exposes ``add_arguments(parser)`` and ``main(args) -> int``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("livepose.runner", "track people in a video, image folder, camera or stream; write video/JSONL"),
    "weights": ("livepose.weights.cli", "list, fetch or import SimpleBaseline checkpoints"),
    "smooth": ("livepose.refilter", "re-filter a recorded JSONL run offline (kalman, oneeuro, none)"),
    "bench": ("livepose.bench", "measure speed per stage, against MediaPipe Pose in the same run"),
    "bench-app": ("livepose.app.bench", "measure the display fps of the real window replaying a video live"),
    "eval": ("livepose.evaluate", "measure accuracy (OKS AP, PCK) and jitter against ground truth"),
    "train": ("livepose.train", "train SimpleBaseline from a config (reproduces the shipped weights)"),
    "calibrate": ("livepose.calibrate", "scale a weights file's keypoint confidences to match the default's"),
    "export": ("livepose.export_lite", "convert the Keras model to LiteRT fp32/fp16/int8"),
    "app": ("livepose.app.main", "open the desktop app (same as run_live.py)"),
    "cameras": ("livepose.cameras", "list the cameras that open, with the mode each opens in"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="livepose", description="Real-time human pose tracking.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] not in COMMANDS:
        parser.print_help() if not argv or argv[0] in ("-h", "--help") else parser.parse_args(argv)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    cmd_parser = argparse.ArgumentParser(prog=f"livepose {argv[0]}", description=COMMANDS[argv[0]][1])
    module.add_arguments(cmd_parser)
    args = cmd_parser.parse_args(argv[1:])
    with _sigterm_as_ctrl_c():
        return int(module.main(args) or 0)


@contextlib.contextmanager
def _sigterm_as_ctrl_c():
    """SIGTERM (`kill`, a service manager) stops a command like Ctrl-C: outputs are finalised, training checkpoints.

    A background job started from a script ignores SIGINT, so SIGTERM is the signal that reaches it. Handlers live
    on the main thread only; elsewhere (a command run from a worker thread) SIGTERM keeps its own handler.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_keyboard_interrupt(signum: int, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
