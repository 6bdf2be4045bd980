"""Stop signals: SIGINT and SIGTERM stop a command like Ctrl-C, and the loops that run for long can ask for them.

SIGINT and SIGTERM (`kill`, a service manager) raise :class:`Stopped`, a KeyboardInterrupt that every command
already finalises its outputs on (training checkpoints). A background job started from a script ignores SIGINT
(and keeps ignoring it), so SIGTERM is the signal that reaches it; the signal is remembered so the exit status
names it.

Raising from a handler is only safe in some code. The exception appears in whatever Python code runs at that
instant: inside an import, a garbage-collector callback or a library's Python code called back from C it can be
lost ("Exception ignored", and the command ran on to its end: stop 31's clean-clone failure) or changed (an
ImportError, a SystemError from TensorFlow's op bookkeeping, a half-built tqdm bar). So the handler raises only
when the whole interrupted stack is livepose's code, a script's or the standard library's (no installed package,
no import) and otherwise delivers the signal again a moment later; and the loops that run inside a library's
iterator (tqdm's) call :func:`raise_if_requested` at every step, which is also where a stop lost all the same
is raised.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

#: exit status of a process ended by the signal, as a shell reports it (128 + the signal number)
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}
#: how soon a stop that arrived where it cannot be raised is delivered again (seconds)
RETRY_S = 0.05
_OWN_CODE = os.path.dirname(os.path.abspath(__file__)) + os.sep     # livepose, installed into site-packages or not


class Stopped(KeyboardInterrupt):
    """A KeyboardInterrupt (every command finalises its outputs on it) that remembers which signal it was."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__()
        self.signum = signum


class _State:
    received = 0                 # the stop signal received inside stop_signals_as_ctrl_c, 0 for none
    retry_pending = False
    entry = None                 # the frame that entered stop_signals_as_ctrl_c: the stack above it is the caller's


def stop_requested() -> int:
    """The stop signal received since the command started, or 0."""
    return _State.received


def raise_if_requested() -> None:
    """For a loop's every step: raise the stop that arrived, had its exception been lost where it landed."""
    if _State.received:
        raise Stopped(_State.received)


@contextlib.contextmanager
def stop_signals_as_ctrl_c():
    """Stop signals raise :class:`Stopped` inside the block (on the main thread; elsewhere, as before)."""
    _State.received, _State.retry_pending = 0, False
    _State.entry = sys._getframe(2)           # 0: this generator, 1: contextlib's __enter__, 2: the with statement
    try:
        with on_stop_signals(_raise_stopped):
            yield
    finally:
        _State.entry = None


@contextlib.contextmanager
def on_stop_signals(handler):
    """``handler`` for SIGINT and SIGTERM inside the block, the previous ones restored after. Only on the main
    thread (the only one Python lets set handlers), and a signal the process started ignoring stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in EXIT_STATUS
                if signal.getsignal(signum) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _raise_stopped(signum: int, frame) -> None:
    _State.received = signum
    if _safe_to_raise(frame):
        raise Stopped(signum)
    if not _State.retry_pending:
        _State.retry_pending = True
        timer = threading.Timer(RETRY_S, _deliver_again, args=(signum,))
        timer.daemon = True
        timer.start()


def _deliver_again(signum: int) -> None:
    _State.retry_pending = False
    if signal.getsignal(signum) is _raise_stopped:        # not after the command has returned
        signal.pthread_kill(threading.main_thread().ident, signum)


def _safe_to_raise(frame) -> bool:
    """No frame of the interrupted stack, up to the one that entered stop_signals_as_ctrl_c, is an import, a weakref
    callback or an installed package's code (tqdm half-way through building its bar, TensorFlow inside a C++ call):
    the exception unwinds only through code that expects it. (The caller's frames above, a test runner's or a
    notebook's, are theirs.)"""
    if frame is None:
        return False
    while frame is not None and frame is not _State.entry:
        name = frame.f_code.co_filename
        if (name.startswith("<frozen importlib") or name.endswith(f"{os.sep}weakref.py")
                or (f"-packages{os.sep}" in name and not name.startswith(_OWN_CODE))):   # site- or dist-packages
            return False
        frame = frame.f_back
    return True
