"""Assemble the training set: ground-truth images plus teacher-filled joints, and teacher-labelled video frames.

Teacher labels take minutes to compute, so they are cached as JSON next to the checkpoints and reused on
resume. Video frames are labelled by the teacher alone; whole clips go to training or validation, never both.
"""

from __future__ import annotations

import json
import logging
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from livepose.train.data import Sample, keypoint_box, load_pose17, read_rgb

log = logging.getLogger(__name__)

_teacher = None


def _label_one(job: tuple[str, np.ndarray | None]) -> list | None:
    """Worker: teacher keypoints (17, 3) for one image file or decoded frame."""
    global _teacher
    from livepose.train.teacher import BlazePoseTeacher

    if _teacher is None:
        _teacher = BlazePoseTeacher()
    key, frame = job
    image = frame if frame is not None else read_rgb(Path(key))
    out = _teacher(image)
    return None if out is None else out.round(2).tolist()


def teacher_labels(jobs: list[tuple[str, np.ndarray | None]], cache: Path, workers: int = 2) -> dict[str, list | None]:
    """Teacher keypoints per key, computed once and cached in ``cache`` (JSON)."""
    labels: dict[str, list | None] = json.loads(cache.read_text()) if cache.exists() else {}
    todo = [j for j in jobs if j[0] not in labels]
    if todo:
        log.info("teacher-labelling %d images (%d cached)", len(todo), len(labels))
        # spawn, not fork: a forked child of a process that already runs TensorFlow, Qt or mediapipe threads
        # can abort inside mediapipe's graph setup
        with get_context("spawn").Pool(workers) as pool:
            for (key, _), out in zip(todo, tqdm(pool.imap(_label_one, todo, chunksize=8), total=len(todo),
                                                 desc="teacher")):
                labels[key] = out
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(labels))
        tmp.replace(cache)
    return labels


def video_frames(path: Path, every: int) -> list[tuple[str, np.ndarray]]:
    cap = cv2.VideoCapture(str(path))
    frames, i = [], 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if i % every == 0:
            frames.append((f"{path}#{i}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        i += 1
    cap.release()
    if not frames:
        raise OSError(f"no frames could be read from {path}")
    return frames


def build_samples(data_root: Path, spec: dict, cache: Path) -> list[Sample]:
    """Samples from the ``data`` section of a training config (paths relative to ``data_root``)."""
    from livepose.train.teacher import merge_with_gt

    gt_items = []
    for rel in spec.get("pose17", []):
        gt_items += load_pose17(data_root / rel)
    holdout = spec.get("holdout_last", 0)
    if holdout:
        gt_items = gt_items[:-holdout]
    frames = []
    for video in spec.get("videos", []):
        frames += video_frames(data_root / video["path"], video.get("every", 1))
    jobs = [(str(p), None) for p, _, _ in gt_items] + frames
    labels = teacher_labels(jobs, cache)
    samples = []
    for path, kps, box in gt_items:
        teacher = labels.get(str(path))
        merged = merge_with_gt(kps, None if teacher is None else np.asarray(teacher, np.float32),
                               float(np.hypot(box[2], box[3])))
        samples.append(Sample(read_rgb(path), merged, box))
    n_video = 0
    for key, image in frames:
        teacher = labels.get(key)
        if teacher is None:
            continue
        kps = np.asarray(teacher, np.float32)
        kps[:, 2] = (kps[:, 2] >= 0.5).astype(np.float32)
        if kps[:, 2].sum() < 8:
            continue
        samples.append(Sample(image, kps, keypoint_box(kps, pad=0.15)))
        n_video += 1
    log.info("%d samples: %d with ground truth, %d teacher-labelled video frames", len(samples), len(gt_items), n_video)
    return samples
