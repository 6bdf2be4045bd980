"""Replace a file all at once: write a unique temporary file beside it, then ``os.replace`` it into place.

Readers see the old file or the new one, never half of one, and two writers of the same file (two exports, the app
saving settings while a CLI run does) each get their own temporary name instead of truncating a shared ``.tmp``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

_UMASK = os.umask(0o022)    # read once (os.umask can only be read by setting it), then put back
os.umask(_UMASK)


@contextlib.contextmanager
def replacing(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a fresh temporary path in ``path``'s folder; on success it replaces ``path``, on any error it is removed.

    ``suffix`` ends the temporary name, for writers that insist on an extension (``.npz``, ``.weights.h5``).
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.chmod(0o666 & ~_UMASK)           # mkstemp's 0600 would make a shared file private
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` through :func:`replacing`."""
    with replacing(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
