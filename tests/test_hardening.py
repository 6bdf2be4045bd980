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
import threading
import time
from pathlib import Path

import numpy as np
import pytest

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
    """Item 8: a random file given as --model is named in the one-line error."""
    bogus = tmp_path / "random.npz"
    bogus.write_bytes(np.random.default_rng(0).bytes(5000))
    assert cli.main(["run", str(shared_data / "images"), "--keypoints", str(tmp_path / "k.jsonl"),
                     "--model", str(bogus), *RUN]) == 2
    assert str(bogus) in _one_line_error(capsys.readouterr().err)


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

def test_image_folder_of_mixed_sizes_is_letterboxed(tmp_path, small_weights, shared_data):
    import cv2

    out = tmp_path / "o.mp4"
    proc = _livepose("run", str(shared_data / "images"), "--out", str(out), "--model", str(small_weights), *RUN)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "letterboxed" in proc.stderr and str(out) in proc.stdout
    cap = cv2.VideoCapture(str(out))
    first = cv2.imread(str(shared_data / "images" / "matplotlib_grace_hopper.jpg"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (
        first.shape[1], first.shape[0])


# --- 7: stop signals while TensorFlow imports ----------------------------------------------------------------------

@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_stop_signal_during_startup_is_quiet(tmp_path, shared_data, signum, status):
    """Item 7: the signal arrives while the run command's imports (TensorFlow, MediaPipe) are still loading."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "livepose", "run", str(shared_data / VIDEO), "--keypoints",
                             str(tmp_path / "k.jsonl"), *RUN], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=env)
    time.sleep(1.5)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


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
    """One basicConfig in the package (the CLI's setup_logging); training keeps its own until its owner moves it."""
    calls = [p.relative_to(ROOT).as_posix() for p in (ROOT / "livepose").rglob("*.py")
             if "logging.basicConfig(" in p.read_text() and "train" not in p.parts]
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
    assert evaluation.stats[0] > 0.05   # real matches (0.10 measured: BlazePose finds one person of these crowds)
