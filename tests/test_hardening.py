"""Issue 29: no lost or clobbered output, no tracebacks, one temp-file helper, COCO results; each on real files,
real processes and real signals. A full disk is a real tmpfs of a few hundred KB where this process may mount one
(root with CAP_SYS_ADMIN), else the same run under RLIMIT_FSIZE (the kernel refuses the write with EFBIG)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import weakref
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import reaped, signal_when_ready
from livepose import cli
from livepose.atomic import replacing, write_atomic
from livepose.writers import partial_path

ROOT = Path(__file__).resolve().parents[1]
VIDEO = "videos/openpose_video.avi"          # 205 frames of 1280x720
RUN = ["--detector", "blazepose", "--runtime", "keras"]   # fast, and nothing exported into the cache


def _mount_tmpfs(where: Path, options: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True).returncode == 0


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder no file can be created in: permission bits for a normal user, a read-only tmpfs for root."""
    where = tmp_path / "ro"
    if os.geteuid() != 0:
        where.mkdir(mode=0o555)
        yield where
        where.chmod(0o755)
    elif _mount_tmpfs(where, "ro,size=64k"):
        yield where
        subprocess.run(["umount", str(where)], check=True)
    else:
        pytest.skip("running as root without mount: no way to make a folder read-only")


@pytest.fixture
def full_disk(tmp_path):
    """(folder, preexec_fn): a 400 KB tmpfs and no limit, or a plain folder and a 60 KB per-file size limit
    (small enough that the JSONL, not only the video, hits it)."""
    where = tmp_path / "small"
    if _mount_tmpfs(where, "size=400k"):
        yield where, None
        subprocess.run(["umount", str(where)], check=True)
    else:
        where.mkdir(exist_ok=True)
        yield where, lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))


def _livepose(*args: str, preexec_fn=None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "livepose", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, preexec_fn=preexec_fn, timeout=timeout)


def _side_by_side(commands: dict[str, list[str]], timeout: float = 600,
                  **popen) -> dict[str, subprocess.CompletedProcess]:
    """Independent commands started at once, each in its own process, so that their TensorFlow starts share the
    cores instead of queueing; the result of each as ``subprocess.run(..., capture_output=True, text=True)`` gives."""
    procs = {name: subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
             for name, argv in commands.items()}
    with reaped(procs):
        outputs = {name: proc.communicate(timeout=timeout) for name, proc in procs.items()}
    return {name: subprocess.CompletedProcess(proc.args, proc.returncode, *outputs[name])
            for name, proc in procs.items()}


def _one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("livepose")]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    return lines[0]


# --- 1, 3, 8: outputs are checked before anything is opened or loaded --------------------------------------------

def test_failed_run_leaves_an_earlier_output_untouched(tmp_path, read_only_dir, shared_data, capsys):
    """Item 1: the unwritable --csv is refused before k.jsonl is opened, so the earlier k.jsonl keeps its bytes."""
    earlier = tmp_path / "k.jsonl"
    earlier.write_text('{"x":1}\n')
    code = cli.main(["run", str(shared_data / VIDEO), "--keypoints", str(earlier),
                     "--csv", str(read_only_dir / "k.csv"), "--model", "no_such_weights.npz", *RUN])
    err = capsys.readouterr().err
    assert code == 2 and "not writable" in err and str(read_only_dir) in err
    assert earlier.read_text() == '{"x":1}\n' and not partial_path(earlier).exists()


def test_unwritable_folder_is_reported_before_the_model_loads(tmp_path, read_only_dir, shared_data, capsys):
    """Item 8: the folder error comes first (the missing model was never looked at), in well under a second."""
    t0 = time.perf_counter()
    code = cli.main(["run", str(shared_data / VIDEO), "--out", str(read_only_dir / "o.mp4"),
                     "--model", "no_such_weights.npz", *RUN])
    err = capsys.readouterr().err
    assert code == 2 and "not writable" in err and "no_such_weights" not in err
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("case", ["video+keypoints", "keypoints+csv", "output=input", "partial=other"])
def test_two_outputs_on_one_path_or_the_input_are_refused(tmp_path, shared_data, capsys, case):
    """Item 3: each of these exited 0 while losing data (or replacing the input video)."""
    video = tmp_path / "c.avi"
    shutil.copyfile(shared_data / VIDEO, video)
    before = video.stat().st_size
    args = {"video+keypoints": ["--out", str(tmp_path / "s.mp4"), "--keypoints", str(tmp_path / "s.mp4")],
            "keypoints+csv": ["--keypoints", str(tmp_path / "s.jsonl"), "--csv", str(tmp_path / "s.jsonl")],
            "output=input": ["--out", str(video)],
            "partial=other": ["--keypoints", str(tmp_path / "s.jsonl"),
                              "--csv", str(tmp_path / "s.partial.jsonl")]}[case]
    assert cli.main(["run", str(video), *args, "--model", "no_such_weights.npz", *RUN]) == 2
    assert "same file as" in capsys.readouterr().err
    assert video.stat().st_size == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.avi"]


def test_model_error_names_the_file(tmp_path, shared_data, capsys):
    """Item 8: a random file given as --model is named in the one-line error, which says what it is not (numpy's
    "allow_pickle" advice, the old message, would mislead)."""
    bogus = tmp_path / "random.npz"
    bogus.write_bytes(np.random.default_rng(0).bytes(5000))
    assert cli.main(["run", str(shared_data / "images"), "--keypoints", str(tmp_path / "k.jsonl"),
                     "--model", str(bogus), *RUN]) == 2
    err = _one_line_error(capsys.readouterr().err)
    assert str(bogus) in err and "not a livepose weights .npz" in err and "pickle" not in err


# --- 2: a full disk ------------------------------------------------------------------------------------------------

def test_full_disk_is_one_line_and_leaves_only_partial_files(full_disk, small_weights, shared_data):
    where, limit = full_disk
    out = {"video": where / "o.mp4", "keypoints": where / "k.jsonl", "csv": where / "k.csv"}
    proc = _livepose("run", str(shared_data / VIDEO), "--out", str(out["video"]), "--keypoints",
                     str(out["keypoints"]), "--csv", str(out["csv"]), "--model", str(small_weights), *RUN,
                     preexec_fn=limit)
    line = _one_line_error(proc.stderr)
    assert proc.returncode == 1 and ("No space left" in line or "too large" in line), line
    assert not any(p.exists() for p in out.values())            # nothing incomplete under a final name
    kept = partial_path(out["keypoints"])
    assert kept.exists() and str(kept) in line
    lines = kept.read_bytes().split(b"\n")
    assert lines.pop() == b""                                   # ends in a newline: no torn last line
    frames = [json.loads(x)["frame"] for x in lines]
    assert frames == list(range(len(frames))) and frames


# --- 4: an image folder of mixed sizes -----------------------------------------------------------------------------

def test_image_folder_of_mixed_sizes_is_letterboxed(tmp_path, small_weights, shared_data, capsys, caplog):
    import cv2

    out = tmp_path / "o.mp4"
    assert cli.main(["run", str(shared_data / "images"), "--out", str(out), "--model", str(small_weights), *RUN]) == 0
    assert "letterboxed" in caplog.text and str(out) in capsys.readouterr().out
    cap = cv2.VideoCapture(str(out))
    first = cv2.imread(str(shared_data / "images" / "matplotlib_grace_hopper.jpg"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (
        first.shape[1], first.shape[0])


# --- 7: stop signals while TensorFlow imports ----------------------------------------------------------------------

def _tensorflow_loading(pid: int) -> bool:
    """Whether TensorFlow's shared library is mapped into ``pid``: early in `import tensorflow`, seconds before its
    end."""
    try:
        return "/tensorflow/" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.fixture(scope="module")
def stopped_during_startup(tmp_path_factory, shared_data) -> dict[int, tuple[int, str]]:
    """Signal -> (exit status, stderr) of a `livepose run` sent SIGINT or SIGTERM once TensorFlow's library is mapped
    into it, that is while TensorFlow imports (seconds). The two runs start together, each in its own process (their
    imports share the cores instead of queueing); a fixed delay after the start would land earlier in a slower one."""
    tmp = tmp_path_factory.mktemp("startup_stop")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # Ctrl-C's default action back in the child: a test run started in the background (`.ci/run &`) inherits SIGINT
    # ignored, and a process that starts with SIGINT ignored rightly keeps ignoring it
    procs = {signum: subprocess.Popen([sys.executable, "-m", "livepose", "run", str(shared_data / VIDEO), "--keypoints",
                                       str(tmp / f"k{int(signum)}.jsonl"), *RUN], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
                                      preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
             for signum in (signal.SIGINT, signal.SIGTERM)}
    with reaped(procs):
        signal_when_ready(procs, lambda signum: _tensorflow_loading(procs[signum].pid),
                          lambda signum: procs[signum].communicate()[1], timeout=120, poll_s=0.05)
        errs = {signum: proc.communicate(timeout=120)[1] for signum, proc in procs.items()}
    return {signum: (procs[signum].returncode, err) for signum, err in errs.items()}


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_stop_signal_during_startup_is_quiet(stopped_during_startup, signum, status):
    """Item 7: the signal arrives while the run command's imports (TensorFlow, MediaPipe) are still loading."""
    returncode, err = stopped_during_startup[signum]
    assert returncode == status, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_stop_signal_during_an_import_is_raised_once_the_import_is_done(tmp_path):
    """A stop that lands while a module imports is not raised there (inside importlib Python can swallow it as
    "Exception ignored", and the run went on to its end: the clean-clone failure of stop 31) but a moment later,
    when the import is done. The module here sends the signal from its own top-level code."""
    (tmp_path / "slow_module.py").write_text(
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGTERM)\ntime.sleep(0.3)\nDONE = True\n")
    script = textwrap.dedent("""
        import sys, time
        from livepose import stopping
        with stopping.stop_signals_as_ctrl_c():
            try:
                import slow_module
                imported = time.monotonic()
                time.sleep(5)
                print("not stopped")
            except stopping.Stopped as exc:
                print("stopped", exc.signum, slow_module.DONE, time.monotonic() - imported)
        """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)])))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    word, signum, done, after = proc.stdout.split()
    assert (word, int(signum), done) == ("stopped", signal.SIGTERM, "True")
    assert float(after) < 1.0                   # raised right after the import, not at the end of the sleep


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_stop_lost_where_it_landed_still_ends_the_loop():
    """Where Python swallows the handler's exception (here a weakref callback, as importlib's and the garbage
    collector's are) the stop is remembered, and the per-frame / per-step check raises it."""
    from livepose import stopping

    class Thing:
        pass

    def signal_inside_the_callback(_):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10_000):     # bytecode, so the handler runs here, in the callback
            pass

    steps = []
    with pytest.raises(stopping.Stopped) as stop, stopping.stop_signals_as_ctrl_c():
        thing = Thing()
        ref = weakref.ref(thing, signal_inside_the_callback)
        del thing                   # the callback runs; its Stopped is printed as "Exception ignored" and dropped
        for step in range(3):
            stopping.raise_if_requested()
            steps.append(step)
    assert ref() is None and steps == [] and stop.value.signum == signal.SIGTERM

# --- 14: unique temporary files, logging set up once ---------------------------------------------------------------

def test_concurrent_atomic_writers_never_collide(tmp_path):
    """Two threads replacing one file 30 times each: with a shared fixed '.tmp' name one renames the other's
    half-written file away (FileNotFoundError) or leaves a torn file; here every version is whole."""
    path = tmp_path / "settings.json"
    errors: list[BaseException] = []

    def writer(byte: bytes) -> None:
        try:
            for _ in range(30):
                write_atomic(path, byte * 2_000_000)
        except BaseException as exc:   # noqa: BLE001 (reported by the assert below)
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(b,)) for b in (b"a", b"b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = path.read_bytes()
    assert not errors and len(data) == 2_000_000 and len(set(data)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.json"]


def test_failed_atomic_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with replacing(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer died")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_logging_is_set_up_only_in_the_entry_point():
    """One basicConfig in the package: the CLI's setup_logging, which `livepose train` and the app go through too."""
    calls = [p.relative_to(ROOT).as_posix() for p in (ROOT / "livepose").rglob("*.py")
             if "logging.basicConfig(" in p.read_text()]
    assert calls == ["livepose/cli.py"]


# --- 15: COCO results ----------------------------------------------------------------------------------------------

def test_coco_results_load_in_pycocotools(tmp_path, shared_data, capsys):
    """Item 15: `run --coco` on the COCO val images of images_gt; pycocotools' loadRes takes it against the GT
    (image ids mapped through the images list), and COCOeval finds real matches in it."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    folder = shared_data / "images_gt" / "coco_val2017"
    out = tmp_path / "results.json"
    assert cli.main(["run", str(folder), "--coco", str(out), *RUN]) == 0
    images = json.loads(out.with_name("results.images.json").read_text())
    id_of = {im["file_name"]: im["id"] for im in images}
    gt = json.loads((shared_data / "images_gt" / "annotations.pose17.json").read_text())
    coco_gt = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "person",
                                                               "keypoints": gt["keypoint_names"]}]}
    for im in gt["images"]:
        if Path(im["file"]).parent.name != folder.name:
            continue
        image_id = id_of[Path(im["file"]).name]
        coco_gt["images"].append({"id": image_id, "width": im["width"], "height": im["height"]})
        for person in im["people"]:
            kp = np.asarray(person["keypoints"], float)
            x, y, w, h = person["bbox"]
            coco_gt["annotations"].append({"id": len(coco_gt["annotations"]) + 1, "image_id": image_id,
                                           "category_id": 1, "keypoints": kp.reshape(-1).tolist(),
                                           "num_keypoints": int((kp[:, 2] > 0).sum()), "bbox": [x, y, w, h],
                                           "area": w * h, "iscrowd": 0})
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(coco_gt))
    coco = COCO(str(gt_path))
    results = json.loads(out.read_text())
    assert results and all(len(r["keypoints"]) == 51 and r["category_id"] == 1 and "track_id" in r
                           for r in results)
    detections = coco.loadRes(str(out))
    assert len(detections.getAnnIds()) == len(results)
    evaluation = COCOeval(coco, detections, "keypoints")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    capsys.readouterr()
    assert evaluation.stats[0] > 0.02   # real matches (0.037 measured with BlazePose, one person of these crowds; a broken format gives 0)


# --- 9: a HUD scaled to the frame, inside it, and only where asked for ---------------------------------------------

APP_HUD = ["simplebaseline_r18_256x192  1 person  filter kalman  [detector]",
           "display 24.3 fps  pipeline 25.1 fps  age  40 ms  dropped 3",
           "ms: detect 12  crop 1  infer 40  decode 2  track 0  smooth 0  total 60"]


def _first_frame(path: Path) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(str(path))
    ok, image = cap.read()
    cap.release()
    assert ok, path
    return image


def _hud_extent(annotated: np.ndarray, plain: np.ndarray) -> tuple[int, int]:
    """(bottom row, right column) + 1 of what the HUD changed: its panel darkens the frame."""
    rows, cols = np.nonzero(np.abs(annotated.astype(int) - plain.astype(int)).sum(axis=2) > 40)
    return int(rows.max()) + 1, int(cols.max()) + 1


def test_hud_is_scaled_to_the_frame_and_kept_inside_it(shared_data):
    """Item 9: on a PAL (720x576) frame the app's three HUD lines stay inside the frame with a margin (the fixed
    14 pt font ran past the right edge) and cover about a tenth of its height, the same share on 360, 720 and
    1080 px frames; a 320 px wide frame gets elided lines, still inside."""
    import cv2

    from livepose.config import RenderConfig
    from livepose.qt import ensure_app
    from livepose.render import annotate

    ensure_app(headless=True)
    source = _first_frame(shared_data / VIDEO)
    shares = {}
    for w, h in ((720, 576), (640, 360), (1280, 720), (1920, 1080), (320, 240)):
        plain = np.ascontiguousarray(cv2.resize(source, (w, h))[:, :, ::-1])
        assert np.array_equal(annotate(plain, [], RenderConfig(), hud=APP_HUD), plain)   # off unless asked for
        bottom, right = _hud_extent(annotate(plain, [], RenderConfig(hud_in_outputs=True), hud=APP_HUD), plain)
        assert right <= w - 2, (w, h, right)
        shares[h] = bottom / h
    assert all(0.05 < s < 0.13 for h, s in shares.items() if h >= 360), shares
    assert max(shares[h] for h in (360, 720, 1080)) < 1.25 * min(shares[h] for h in (360, 720, 1080)), shares


def test_run_out_burns_the_hud_only_with_hud(tmp_path, shared_data, capsys):
    """Item 9: `run --out` writes skeletons only; `--hud` adds the status lines (scaled, top left)."""
    import cv2

    plain_out, hud_out = tmp_path / "plain.avi", tmp_path / "hud.avi"
    for out, extra in ((plain_out, []), (hud_out, ["--hud"])):
        assert cli.main(["run", str(shared_data / VIDEO), "--out", str(out), "--max-frames", "2", *extra, *RUN]) == 0
    capsys.readouterr()
    source, plain, hud = (_first_frame(p) for p in (shared_data / VIDEO, plain_out, hud_out))
    band = (slice(0, 60), slice(0, 400))          # where the HUD sits on a 1280x720 frame
    assert np.abs(plain[band].astype(int) - source[band].astype(int)).mean() < 6     # codec noise only
    assert hud[band].mean() < source[band].mean() - 15    # the translucent panel (white text on it)


# --- 11: no library noise on the terminal unless --verbose ----------------------------------------------------------

NOISE = ("Created TensorFlow Lite XNNPACK delegate", "W0000", "absl::InitializeLog", "QStandardPaths")


def _quiet_env(tmp_path: Path) -> dict[str, str]:
    """What a shell in a container or over ssh has: no XDG_RUNTIME_DIR (Qt warns about that)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CONFIG_HOME=str(tmp_path / "config"))
    env.pop("XDG_RUNTIME_DIR", None)
    return env


def _noise(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(n in line for n in NOISE)]


@pytest.mark.slow
def test_run_and_eval_print_no_library_noise_unless_verbose(tmp_path, shared_data, small_weights, capsys):
    """Item 11: a normal `run` and `eval` (LiteRT detector, MediaPipe rival, Qt offscreen) print neither LiteRT's
    XNNPACK line, nor MediaPipe's absl W0000 lines, nor Qt's XDG_RUNTIME_DIR warning; `--verbose` brings them back.
    Item 12: eval explains a negative "lag vs GT" under its table and in --help."""
    env = _quiet_env(tmp_path)

    def run(keypoints: str, *extra: str) -> list[str]:
        return [sys.executable, "-m", "livepose", "run", str(shared_data / VIDEO), "--keypoints",
                str(tmp_path / keypoints), "--max-frames", "2", *RUN, *extra]

    clip = shared_data / "sequences_gt" / "jhmdb_goal_keeping_tips_catch_fr_med_2" / "gt.pose17.json"
    commands = {"quiet": run("k.jsonl"), "verbose": run("k_verbose.jsonl", "--verbose"),
                "eval": [sys.executable, "-m", "livepose", "eval", str(clip), "--boxes", "gt", "--rival", "mediapipe",
                         "--model", str(small_weights), *RUN]}
    done = _side_by_side(commands, env=env, cwd=ROOT)
    quiet, verbose, ev = done["quiet"], done["verbose"], done["eval"]
    assert quiet.returncode == 0 and _noise(quiet.stderr) == [], quiet.stderr
    assert "wrote" in quiet.stdout
    assert verbose.returncode == 0 and any(NOISE[0] in line for line in _noise(verbose.stderr)), verbose.stderr

    assert ev.returncode == 0 and _noise(ev.stderr) == [], ev.stderr
    assert "mediapipe tracking" in ev.stdout and "can fall below 0" in ev.stdout
    with pytest.raises(SystemExit) as helped_exit:     # argparse's --help; its text, not the process, is checked
        cli.main(["eval", "--help"])
    assert helped_exit.value.code == 0
    helped = " ".join(capsys.readouterr().out.split())
    assert "lag vs raw" in helped and "can fall below 0" in helped


def test_run_without_outputs_says_nothing_will_be_saved(shared_data, small_weights, capsys):
    """Item 11: `livepose run` with neither --out nor --keypoints (nor --csv, --coco) says that nothing is saved."""
    assert cli.main(["run", str(shared_data / VIDEO), "--max-frames", "1", "--model", str(small_weights), *RUN]) == 0
    out, err = capsys.readouterr()
    assert "livepose run: no --out, --keypoints, --csv or --coco given: nothing will be saved" in err
    assert "wrote" not in out


@pytest.mark.slow
def test_app_start_prints_no_library_noise(tmp_path, shared_data, small_weights):
    """Item 11: `livepose app VIDEO` starts (window shown, the file opened: its settings are saved) and closes on
    Ctrl-C without the XNNPACK line or Qt's XDG_RUNTIME_DIR warning."""
    env = dict(_quiet_env(tmp_path), QT_QPA_PLATFORM="offscreen")
    app = subprocess.Popen([sys.executable, "-m", "livepose", "app", str(shared_data / VIDEO), "--model",
                            str(small_weights), *RUN], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=env, cwd=ROOT)
    settings = tmp_path / "config" / "livepose" / "app.json"
    deadline = time.monotonic() + 300
    while not settings.exists() and app.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert settings.exists(), app.communicate(timeout=60) if app.poll() is not None else "app did not open the file"
    time.sleep(2)                                     # a few frames through the pipeline
    app.send_signal(signal.SIGINT)
    _, stderr = app.communicate(timeout=120)
    assert _noise(stderr) == [], stderr


# --- 12: help for every option, weights list shows what ships ---------------------------------------------------

def test_every_model_option_says_what_it_does():
    """Item 12: `--filter` and the noise options had no help text; every option the model commands share has one,
    with the Kalman noises' units."""
    import argparse

    from livepose.commands.options import add_model_arguments

    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    options = {a.option_strings[0]: a.help for a in parser._actions if a.option_strings and a.dest != "help"}
    assert "--filter" in options and all(options.values()), [o for o, h in options.items() if not h]
    assert "px" in options["--process-noise"] and "px" in options["--measurement-noise"]



def test_weights_list_names_the_shipped_models(capsys):
    """Item 12: `weights list` starts with the models that ship (what --model accepts without a download), each
    with its input size and backbone."""
    from livepose.nets.weights import SHIPPED

    assert cli.main(["weights", "list"]) == 0
    shipped = capsys.readouterr().out.split("\n\n")[0].splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in shipped[2:]}
    assert list(rows) == list(SHIPPED)
    assert all(row[-1] == SHIPPED[name] for name, row in rows.items())
    assert rows["r18-128x96"][:2] == ["128x96", "resnet-18"]
