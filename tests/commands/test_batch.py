"""`livepose batch` on a local Ray with 2 workers: real clips and a truncated one, a SIGKILLed batch, and its rerun
with a worker SIGKILLed mid-clip.

Both `livepose run` and the batch use ``--sync-detect``: the default periodic detector on its own thread makes the
keypoints depend on timing, so two plain `livepose run`s of one clip can differ already. `livepose run` gets the
TensorFlow thread count of one worker: the network's sums depend on it (by 1e-7).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pytest

from livepose.commands.batch import BatchError, collect_clips, local_cores, thread_env
from livepose.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
SQUATS = "sequences_pseudo_gt/tfjs_pose_squats/pose_squats.mp4"   # 65 frames, one person
STREET = "videos/mmpose_demo_street.mp4"                           # 5 frames, a street of people
LONG = "sequences_pseudo_gt/kalman_jannabi_clip/jannabi_clip.mp4"   # 923 frames: its first 30 are copied
SHORT_FRAMES = 30
SETTINGS = ("--sync-detect",)


def _records(path: Path) -> list[dict]:
    """A JSONL run without its timings, the one part that differs between two runs of the same clip."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        record.pop("timings_ms")
    return records


def _summary(out_dir: Path) -> dict[str, dict]:
    return {row["clip"]: row for row in json.loads((out_dir / "summary.json").read_text())["clips"]}


def _session_pids(sid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid:
                    pids.append(int(entry))
            except ProcessLookupError:
                pass
    return pids


def _descendants(root: int) -> dict[int, str]:
    """pid -> command line of every process under ``root`` (Ray's workers run under its raylet, under the driver)."""
    parents, titles = {}, {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            titles[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: dict[int, str] = {}
    for pid in parents:
        ancestor = parents[pid]
        while ancestor > 1 and ancestor != root:
            ancestor = parents.get(ancestor, 1)
        if ancestor == root:
            found[pid] = titles[pid]
    return found


def _kill_first_busy_worker(stop: threading.Event, killed: list[int]) -> None:
    """SIGKILL the first of this process's Ray workers seen tracking a clip, as an OOM kill would."""
    while not stop.wait(0.2):
        busy = [pid for pid, title in _descendants(os.getpid()).items() if title.startswith("ray::ClipWorker.process")]
        if busy:
            os.kill(busy[0], signal.SIGKILL)
            killed.append(busy[0])
            return


def _start_batch(inputs: list[Path], out_dir: Path, log: Path) -> subprocess.Popen:
    """The batch of the tests, in its own session, with Ctrl-C's default action (a test run started with `&` inherits
    SIGINT ignored); its stderr goes to ``log``."""
    with log.open("w") as err:
        return subprocess.Popen([sys.executable, "-m", "livepose", "batch", *map(str, inputs), "--out-dir", str(out_dir),
                                 "--workers", "2", *SETTINGS], cwd=ROOT, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=err,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_a_finished_clip(batch: subprocess.Popen, out_dir: Path, log: Path) -> None:
    deadline = time.monotonic() + 480   # Ray, two workers loading the model, one clip: ~40 s on 2 idle cores
    while not any(json.loads(p.read_text()).get("status") == "ok" for p in out_dir.glob("*.status.json")):
        assert batch.poll() is None, f"the batch ended (exit {batch.returncode}) before finishing a clip: " \
                                     f"{log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, "no clip finished in 8 minutes"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def inputs(shared_data, tmp_path_factory) -> list[Path]:
    """Three real clips (one a 30-frame copy made here) and a truncated mp4 (its index, at the end, cut off)."""
    folder = tmp_path_factory.mktemp("clips")
    short = folder / "jannabi_short.mp4"
    capture = cv2.VideoCapture(str(shared_data / LONG))
    writer = None
    for _ in range(SHORT_FRAMES):
        ok, image = capture.read()
        assert ok
        if writer is None:
            writer = cv2.VideoWriter(str(short), cv2.VideoWriter_fourcc(*"mp4v"), capture.get(cv2.CAP_PROP_FPS),
                                     (image.shape[1], image.shape[0]))
        writer.write(image)
    writer.release()
    capture.release()
    truncated = folder / "truncated.mp4"
    data = (shared_data / STREET).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    return [shared_data / SQUATS, shared_data / STREET, short, truncated]


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    """`livepose run --keypoints` of each good clip, with the TensorFlow threads each of 2 workers gets here; call the
    fixture's value for {clip stem: records}.

    The three runs share one fresh process, one after the other, as a batch worker tracks its clips: TensorFlow
    starts once instead of three times, and each run still builds its own pipeline. The process starts when a test
    asks for the fixture and is read when that test calls it, so it runs beside the batch the test starts meanwhile
    (it has one core's threads; its keypoints depend on its thread count, not on what else runs)."""
    folder = tmp_path_factory.mktemp("run")
    env = {**os.environ, **thread_env(max(1, local_cores() // 2))}
    runs = [["run", str(clip), "--keypoints", str(folder / f"{clip.stem}.jsonl"), *SETTINGS] for clip in inputs[:3]]
    code = f"from livepose.cli import main\nfor argv in {runs!r}:\n    assert main(argv) == 0, argv\n"
    with (folder / "run.err").open("w") as err:
        runner = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=err)

    @functools.cache
    def records() -> dict[str, list[dict]]:
        assert runner.wait(timeout=600) == 0, (folder / "run.err").read_text()[-3000:]
        return {clip.stem: _records(folder / f"{clip.stem}.jsonl") for clip in inputs[:3]}

    yield records
    if runner.poll() is None:   # the test that asked for it failed before reading it
        runner.kill()
        runner.wait()


def test_inputs_are_videos_folders_and_manifests_each_once(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for name in ("a/clip2.mp4", "a/clip10.mp4", "b/clip2.mp4", "a/notes.md"):
        (tmp_path / name).touch()
    manifest = tmp_path / "list.txt"
    manifest.write_text("# archive\nb/clip2.mp4\n\nlost.mp4\n")
    clips = collect_clips([str(tmp_path / "a"), str(manifest), str(tmp_path / "a" / "clip2.mp4")])
    assert [Path(c.source).relative_to(tmp_path).as_posix() for c in clips] == \
        ["a/clip2.mp4", "a/clip10.mp4", "b/clip2.mp4", "lost.mp4"]
    names = [c.name for c in clips]
    assert names[1] == "clip10" and names[3] == "lost"
    assert len(set(names)) == 4 and all(n.startswith("clip2-") for n in (names[0], names[2]))
    with pytest.raises(BatchError, match="no such file"):
        collect_clips([str(tmp_path / "missing.mp4")])


def test_usage_mistakes_are_one_line_exit_2(tmp_path, capsys):
    assert cli(["batch", str(tmp_path / "nothing"), "--out-dir", str(tmp_path / "out")]) == 2
    assert cli(["batch", str(tmp_path), "--out-dir", str(tmp_path / "out")]) == 2
    assert cli(["batch", str(tmp_path), "--out-dir", str(tmp_path / "out"), "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert [line.split(":")[0] for line in err] == ["livepose batch"] * 3 and "Traceback" not in "".join(err)


def test_an_address_nothing_answers_on_is_one_line_in_seconds(shared_data, tmp_path, capsys):
    """A mistyped --address HOST:PORT: Ray's own connection retries took minutes (over 3 here), with its warnings."""
    with socket.socket() as probe:            # a port that was free a moment ago: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    t0 = time.monotonic()
    assert cli(["batch", str(shared_data / STREET), "--out-dir", str(tmp_path), "--address", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert time.monotonic() - t0 < 10 and f"no Ray cluster answers at 127.0.0.1:{port}: Connection refused" in err
    assert err.count("livepose batch: ") == 2 and "Traceback" not in err   # the clip count, then the error


@pytest.mark.slow
@pytest.mark.timeout(1200)   # ~2 minutes on 2 idle cores; the margin is for a machine busy with other work
def test_killed_batch_reruns_only_the_missing_clips_with_outputs_equal_to_run(inputs, reference, tmp_path):
    out_dir, log = tmp_path / "out", tmp_path / "batch.err"
    batch = _start_batch(inputs, out_dir, log)   # beside the reference runs (see the fixture)
    try:
        _wait_for_a_finished_clip(batch, out_dir, log)
    finally:
        # the whole session at once, as a crash or the OOM killer would: killing the driver alone lets the Ray
        # workers finish their clips while they wind down (a clip takes about a second here), leaving nothing to resume
        for pid in [batch.pid, *_session_pids(batch.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        batch.wait()
    done = {p.name.removesuffix(".status.json") for p in out_dir.glob("*.status.json")
            if json.loads(p.read_text())["status"] == "ok"}
    assert done and len(done) < 3, f"killed with {sorted(done)} complete: nothing left to resume"
    assert not (out_dir / "summary.json").exists()

    # the rerun, with one worker killed mid-clip: Ray restarts it and retries the clip
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_first_busy_worker, args=(stop, killed))
    killer.start()
    try:
        assert cli(["batch", *map(str, inputs), "--out-dir", str(out_dir), "--workers", "2", *SETTINGS]) == 1
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was seen tracking a clip"
    summary = _summary(out_dir)
    assert list(summary) == [clip.stem for clip in inputs]
    assert {name for name, row in summary.items() if row["reused"]} == done
    for name, records in reference().items():
        row = summary[name]
        assert row["status"] == "ok" and row["error"] == "" and row["frames"] == len(records) > 0
        assert _records(out_dir / f"{name}.jsonl") == records, name
    bad = summary["truncated"]
    assert bad["status"] == "failed" and not bad["reused"] and "not a video OpenCV can open" in bad["error"]
    assert "\n" not in bad["error"]
    assert (out_dir / "summary.csv").read_text().splitlines()[0].startswith("clip,source,status,frames")
    assert not list(out_dir.glob("*.partial.*"))   # the killed clip's partial output was redone and renamed


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("signum, status, send", [(signal.SIGINT, 130, os.killpg), (signal.SIGTERM, 143, os.kill)],
                         ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_ends_the_batch_within_seconds_and_finished_clips_stay_complete(inputs, tmp_path, signum,
                                                                                       status, send):
    """Ctrl-C as a terminal sends it (SIGINT to the process group: Ray's workers get it too), or `kill` (SIGTERM to the
    command), ends the batch at once with a summary in which unfinished clips are `interrupted`. Ctrl-C used to be
    swallowed (the driver sat in Ray's blocking wait, where the stop handler does not raise, and ran every clip), and
    SIGTERM killed the command without a summary (ray.shutdown resets SIGTERM's action to the default)."""
    out_dir, log = tmp_path / "out", tmp_path / "batch.err"
    batch = _start_batch(inputs, out_dir, log)
    _wait_for_a_finished_clip(batch, out_dir, log)
    send(batch.pid, signum)
    stopped = time.monotonic()
    batch.wait(timeout=120)
    err = log.read_text()
    assert batch.returncode == status and time.monotonic() - stopped < 30, err
    assert "Traceback" not in err and "interrupted; finished clips are complete" in err
    summary = _summary(out_dir)
    assert len(summary) == len(inputs) and any(row["status"] == "interrupted" for row in summary.values())
    for name, row in summary.items():
        status = out_dir / f"{name}.status.json"
        # ok in the summary exactly where a rerun skips the clip (a worker may finish one while the batch stops)
        ok_on_disk = status.exists() and json.loads(status.read_text())["status"] == "ok"
        assert (row["status"] == "ok") == ok_on_disk, (name, row)
        if ok_on_disk:
            assert len(_records(out_dir / f"{name}.jsonl")) == row["frames"] > 0
