"""Native libraries' start-up chatter kept off the terminal unless ``--verbose``.

LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` for every interpreter it builds, and
MediaPipe prints absl ``W0000 ...`` lines when its graphs start and see their first frame. Neither reads
``TF_CPP_MIN_LOG_LEVEL`` or ``GLOG_minloglevel`` (measured with LiteRT 2.3 and MediaPipe 0.10.21: their loggers are
private to their shared libraries), so the one switch left is the file descriptor they write to: while a model
loads, fd 2 goes to a temporary file, and what is not chatter is written to the terminal afterwards.

TensorFlow's LiteRT converter (`livepose export`, which a network's first LiteRT start runs in a child) adds its own lines:
deprecation advice, a calibration-statistics UserWarning and a ``fully_quantize: ...`` line per variant.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from typing import Iterator

#: lines dropped: TFLite's INFO lines, absl's "before InitializeLog" notice, absl/glog INFO and WARNING lines,
#: and the LiteRT converter's advice, calibration warning (with the source line Python's warnings module prints
#: under it) and per-variant settings line
CHATTER = re.compile(rb"INFO: |WARNING: All log messages before absl::InitializeLog\(\)"
                     rb"|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] "
                     rb"|Please consider providing the trackable_obj argument"
                     rb"|\S+\.py:\d+: UserWarning: Statistics for quantized inputs were expected|  warnings\.warn\($"
                     rb"|fully_quantize: \d+, inference_type: ")

_lock = threading.RLock()      # one redirection at a time: fd 2 is the process's, not a thread's


@contextlib.contextmanager
def native_chatter_filtered() -> Iterator[None]:
    """Run the block with the native libraries' INFO/WARNING chatter dropped from stderr (every other line is kept,
    written when the block ends). With INFO logging on (``--verbose``) nothing is touched."""
    if verbose():
        yield
        return
    with _lock, tempfile.TemporaryFile() as capture:
        _flush_python_stderr()
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            _flush_python_stderr()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            write_stderr(without_chatter(capture.read()))


def verbose() -> bool:
    """Whether the libraries' lines are wanted: ``--verbose`` sets the root logger to INFO (livepose.cli)."""
    return logging.getLogger().isEnabledFor(logging.INFO)


def without_chatter(text: bytes) -> bytes:
    """``text`` less the lines :data:`CHATTER` matches."""
    return b"".join(line for line in text.splitlines(keepends=True) if not CHATTER.match(line.rstrip(b"\r\n")))


def write_stderr(data: bytes) -> None:
    """All of ``data`` to fd 2 (where the native libraries write too, so the order on the terminal holds)."""
    _flush_python_stderr()
    while data:
        data = data[os.write(2, data):]


def _flush_python_stderr() -> None:
    if sys.stderr is not None:
        sys.stderr.flush()
