"""Download a file into the cache: resumable, checksummed, never leaving a half or wrong file in place.

Bytes go to ``<file>.part``; an interrupted download resumes with an HTTP ``Range`` request when the server
answers 206, and starts clean when it answers 200. The file only appears under its real name after its
sha256 matched (atomic rename), so a reader of the cache never sees a partial or tampered checkpoint.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from livepose.config import WeightsConfig
from livepose.hashing import sha256_file

log = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    """The file could not be fetched (offline, HTTP error, too many interrupted attempts)."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not have the published sha256; nothing was kept."""


def _check(path: Path, sha256: str | None, sha256_prefix: str | None) -> str | None:
    """None if the file's digest fits what is known, else a description of the mismatch."""
    digest = sha256_file(path)
    if sha256 and digest != sha256.lower():
        return f"sha256 {digest}, expected {sha256.lower()}"
    if sha256_prefix and not digest.startswith(sha256_prefix.lower()):
        return f"sha256 {digest} does not start with {sha256_prefix.lower()}"
    return None


def _fetch_once(url: str, part: Path, cfg: WeightsConfig) -> bool:
    """Append to ``part`` (or rewrite it if the server ignores Range). True if the bytes were resumed."""
    start = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={start}-"} if start else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=cfg.timeout_s) as resp:
        resumed = start > 0 and resp.status == 206
        if start and not resumed:
            log.info("%s: server ignored the Range request; downloading from the start", url)
        offset = start if resumed else 0
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with open(part, "ab" if resumed else "wb") as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, desc=part.name[: -len(".part")], leave=False
        ) as bar:
            while block := resp.read(cfg.chunk_bytes):
                out.write(block)
                bar.update(len(block))
        if total is not None and part.stat().st_size != total:
            raise http.client.IncompleteRead(b"", total - part.stat().st_size)
    return resumed


def download(
    url: str,
    dest: Path,
    sha256: str | None = None,
    sha256_prefix: str | None = None,
    cfg: WeightsConfig = WeightsConfig(),
) -> Path:
    """Fetch ``url`` to ``dest`` unless a verified copy is there; returns ``dest``."""
    dest = Path(dest)
    if dest.exists() and _check(dest, sha256, sha256_prefix) is None:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error: Exception | None = None
    for attempt in range(1, cfg.max_attempts + 1):
        if attempt > 1:
            time.sleep(cfg.retry_backoff_s * 2 ** (attempt - 2))
        try:
            resumed = _fetch_once(url, part, cfg)
        except urllib.error.HTTPError as e:
            if e.code == 416:  # our .part is not a prefix the server can continue: start clean
                part.unlink(missing_ok=True)
                last_error = e
                continue
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from e
        except urllib.error.URLError as e:
            if isinstance(e.reason, (socket.timeout, TimeoutError)):
                last_error = e
                continue
            raise DownloadError(
                f"cannot reach {url} ({e.reason}); are you offline? Download it elsewhere and run "
                f"`livepose weights import <file>`"
            ) from e
        except (http.client.HTTPException, ConnectionError, TimeoutError, socket.timeout) as e:
            log.warning("%s: attempt %d/%d interrupted (%s); will resume", url, attempt, cfg.max_attempts, e)
            last_error = e
            continue
        mismatch = _check(part, sha256, sha256_prefix)
        if mismatch is None:
            os.replace(part, dest)
            return dest
        part.unlink()
        if not resumed:
            raise ChecksumError(f"{url}: downloaded file has {mismatch}; deleted it")
        log.warning("%s: resumed download has %s; retrying from the start", url, mismatch)
        last_error = ChecksumError(mismatch)
    raise DownloadError(f"{url}: gave up after {cfg.max_attempts} attempts ({last_error})")
