"""Downloader and cache against a real HTTP server on 127.0.0.1 (with and without Range support)."""

from __future__ import annotations

import hashlib
import http.server
import logging
import os
import socket
import threading
import time

import numpy as np
import pytest

from livepose.config import WeightsConfig
from livepose.data import cache_dir
from livepose.commands import weights as cli
from livepose.nets.checkpoints import registry
from livepose.nets.checkpoints.download import ChecksumError, DownloadError, download

PAYLOAD = np.random.default_rng(0).bytes(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()
CFG = WeightsConfig(timeout_s=5.0, chunk_bytes=16_384, max_attempts=3, retry_backoff_s=0.01)


class Server:
    """Serves ``files`` at ``/<name>``; logs every request's Range header and the status it answered."""

    def __init__(self, ranges: bool = True, cut_first_at: int | None = None, cut_always: bool = False) -> None:
        self.files: dict[str, bytes] = {"file.bin": PAYLOAD}
        self.ranges, self.cut_first_at, self.cut_always = ranges, cut_first_at, cut_always
        self.log: list[tuple[str | None, int]] = []
        self.times: list[float] = []    # time.monotonic() of every request
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.times.append(time.monotonic())
                body = server.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    server.log.append((None, 404))
                    return
                rng = self.headers.get("Range")
                start = int(rng.split("=")[1].split("-")[0]) if rng and server.ranges else 0
                if start >= len(body) and start:
                    self.send_response(416)
                    self.end_headers()
                    server.log.append((rng, 416))
                    return
                status = 206 if start else 200
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                server.log.append((rng, status))
                chunk = body[start:]
                if server.cut_first_at is not None:  # drop the connection mid-body, once
                    chunk, server.cut_first_at = chunk[: server.cut_first_at], None
                if server.cut_always:
                    chunk = chunk[:1000]
                self.wfile.write(chunk)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def test_download_and_checksum(server, tmp_path):
    dest = download(f"{server.url}/file.bin", tmp_path / "c" / "file.bin", SHA, SHA[:8], CFG)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "c" / "file.bin.part").exists()
    assert server.log == [(None, 200)]
    download(f"{server.url}/file.bin", dest, SHA, SHA[:8], CFG)  # verified copy: no second request
    assert len(server.log) == 1


@pytest.mark.parametrize("known", ["full", "prefix"])
def test_wrong_checksum_leaves_nothing(server, tmp_path, known):
    wrong = "0" * 64
    kwargs = {"sha256": wrong} if known == "full" else {"sha256_prefix": wrong[:8]}
    with pytest.raises(ChecksumError, match=f"{SHA}.*{'expected' if known == 'full' else 'does not start with'}"):
        download(f"{server.url}/file.bin", tmp_path / "file.bin", cfg=CFG, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_resume_with_range(server, tmp_path):
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD[:100_000])
    dest = download(f"{server.url}/file.bin", tmp_path / "file.bin", SHA, cfg=CFG)
    assert dest.read_bytes() == PAYLOAD
    assert server.log == [("bytes=100000-", 206)]


def test_interrupted_transfer_resumes(tmp_path):
    server = Server(cut_first_at=50_000)
    try:
        dest = download(f"{server.url}/file.bin", tmp_path / "file.bin", SHA, cfg=CFG)
    finally:
        server.close()
    assert dest.read_bytes() == PAYLOAD
    assert server.log == [(None, 200), ("bytes=50000-", 206)]


def test_retries_back_off(tmp_path):
    """Issue 29 item 14: a server that keeps dropping us is retried after 1x, then 2x the backoff, not at once."""
    server = Server(cut_always=True)
    cfg = WeightsConfig(timeout_s=5.0, chunk_bytes=16_384, max_attempts=3, retry_backoff_s=0.3)
    try:
        with pytest.raises(DownloadError, match="gave up after 3 attempts"):
            download(f"{server.url}/file.bin", tmp_path / "file.bin", SHA, cfg=cfg)
    finally:
        server.close()
    gaps = np.diff(server.times)
    assert len(gaps) == 2 and gaps[0] >= 0.3 and gaps[1] >= 0.6, gaps


def test_server_without_range_restarts_clean(tmp_path):
    server = Server(ranges=False)
    (tmp_path / "file.bin.part").write_bytes(b"stale bytes from another file")
    try:
        dest = download(f"{server.url}/file.bin", tmp_path / "file.bin", SHA, cfg=CFG)
    finally:
        server.close()
    assert dest.read_bytes() == PAYLOAD
    assert server.log == [("bytes=29-", 200)]


def test_corrupt_partial_retried_from_scratch(server, tmp_path):
    """A .part that is not a prefix of the file resumes into a bad digest, then one clean retry fixes it."""
    (tmp_path / "file.bin.part").write_bytes(bytes(100_000))
    dest = download(f"{server.url}/file.bin", tmp_path / "file.bin", SHA, cfg=CFG)
    assert dest.read_bytes() == PAYLOAD
    assert server.log == [("bytes=100000-", 206), (None, 200)]


def test_offline_message(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=r"cannot reach .* are you offline\? .*livepose weights import"):
        download(f"http://127.0.0.1:{port}/file.bin", tmp_path / "file.bin", SHA, cfg=CFG)
    assert not (tmp_path / "file.bin").exists()


def test_http_error(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server.url}/missing.bin", tmp_path / "missing.bin", cfg=CFG)


# --- cache directory -----------------------------------------------------------------------------------


def test_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEPOSE_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("LIVEPOSE_CACHE")
    assert cache_dir() == tmp_path / "xdg" / "livepose"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "livepose"


@pytest.mark.parametrize("how", ["chmod", "under-a-file"])
def test_read_only_cache_falls_back_to_temp(tmp_path, monkeypatch, caplog, how):
    if how == "chmod":
        if os.geteuid() == 0:
            pytest.skip("running as root: a chmod-ed directory stays writable")
        root = tmp_path / "ro"
        root.mkdir()
        root.chmod(0o500)
    else:  # unwritable for everyone, root included: its parent is a regular file
        (tmp_path / "file").write_text("")
        root = tmp_path / "file" / "cache"
    monkeypatch.setenv("LIVEPOSE_CACHE", str(root))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with caplog.at_level(logging.WARNING, logger="livepose.data"):
        got = cache_dir()
    assert got.parent == tmp_path / "tmp" and got.is_dir() and os.access(got, os.W_OK)
    assert f"cache dir {root} is not writable" in caplog.text


# --- end to end: registry name -> download -> convert -> cache ------------------------------------------


def test_fetch_convert_and_reuse(tmp_path, monkeypatch, capsys):
    """A registry entry is downloaded once, converted once, then served from the Keras cache."""
    torch = pytest.importorskip("torch", reason="PyTorch is needed to write a genuine checkpoint")
    from test_checkpoint_parity import PoseResNet

    from livepose.nets.checkpoints.convert import load_model

    torch.manual_seed(0)
    src = tmp_path / "src.pth"
    state = {("keypoint_head." if k.startswith(("deconv", "final")) else "backbone.") + k: v
             for k, v in PoseResNet(18).state_dict().items()}
    torch.save({"state_dict": state, "meta": {"epoch": 210}}, src)
    data = src.read_bytes()
    filename = f"res18_test_256x192-{hashlib.sha256(data).hexdigest()[:8]}_20240101.pth"
    server = Server()
    server.files = {filename: data}
    ckpt = registry.Checkpoint(f"{server.url}/{filename}", 18, (256, 192), 0.0)
    monkeypatch.setitem(registry.CHECKPOINTS, ckpt.name, ckpt)
    monkeypatch.setenv("LIVEPOSE_CACHE", str(tmp_path / "cache"))
    try:
        first = load_model(ckpt.name)
        again = load_model(ckpt.name)
    finally:
        server.close()
    assert server.log == [(None, 200)]
    assert (tmp_path / "cache" / "torch" / filename).read_bytes() == data
    assert (tmp_path / "cache" / "keras" / "res18_test_256x192.weights.h5").exists()
    x = np.random.default_rng(0).normal(size=(1, 256, 192, 3)).astype(np.float32)
    np.testing.assert_array_equal(first.predict(x, verbose=0), again.predict(x, verbose=0))

    assert cli.main(cli_args(["list"])) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(ckpt.name))
    assert row.split()[1:3] == ["256x192", "18"] and row.endswith("keras")
    assert cli.main(cli_args(["import", str(src), "--name", "mine", "--input-size", "384x288"])) == 0
    assert "mine" in capsys.readouterr().out
    assert cli.main(cli_args(["list"])) == 0
    assert "keras (imported)" in next(line for line in capsys.readouterr().out.splitlines() if line.startswith("mine"))
    assert cli.main(cli_args(["import", str(tmp_path / "nope.pth")])) == 1


def cli_args(argv: list[str]):
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)
