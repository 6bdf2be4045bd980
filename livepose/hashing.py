"""The one sha256 of a file: weights identity (the LiteRT cache key) and download checks use the same digest."""

from __future__ import annotations

import hashlib
import os

#: bytes read at a time: large weights files are hashed without holding them in memory
CHUNK_BYTES = 1 << 20


def sha256_file(path: str | os.PathLike, chunk: int = CHUNK_BYTES) -> str:
    """Hex sha256 of a file's bytes, read in ``chunk``-sized blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
