"""Native libraries' start-up chatter kept off the terminal unless ``--verbose``.

LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` for every interpreter it builds, and
MediaPipe prints absl ``W0000 ...`` lines when its graphs start and see their first frame. Neither reads
``TF_CPP_MIN_LOG_LEVEL`` or ``GLOG_minloglevel`` (measured with LiteRT 2.3 and MediaPipe 0.10.21: their loggers are
private to their shared libraries), so the one switch left is the file descriptor they write to: while a model
loads, fd 2 goes to a temporary file, and what is not chatter is written to the terminal afterwards.
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

#: lines dropped: TFLite's INFO lines, absl's "before InitializeLog" notice, absl/glog INFO and WARNING lines
CHATTER = re.compile(rb"INFO: |WARNING: All log messages before absl::InitializeLog\(\)"
                     rb"|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] ")

_lock = threading.RLock()      # one redirection at a time: fd 2 is the process's, not a thread's


@contextlib.contextmanager
def native_chatter_filtered() -> Iterator[None]:
    """Run the block with the native libraries' INFO/WARNING chatter dropped from stderr (every other line is kept,
    written when the block ends). With INFO logging on (``--verbose``) nothing is touched."""
    if logging.getLogger().isEnabledFor(logging.INFO):
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
            kept = b"".join(line for line in capture.read().splitlines(keepends=True) if not CHATTER.match(line))
            while kept:
                kept = kept[os.write(2, kept):]


def _flush_python_stderr() -> None:
    if sys.stderr is not None:
        sys.stderr.flush()
