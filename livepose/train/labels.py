"""Assemble the training set: ground-truth images plus teacher-filled joints, teacher-labelled person boxes
(Stanford 40 Actions' VOC boxes, COCO-format boxes) and teacher-labelled video frames.

Teacher labels take minutes to compute, so they are cached as JSON next to the checkpoints and reused on
resume. Where there is no ground truth, each joint's weight is the teacher's confidence. Whole clips go to
training or validation, never both.
"""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from livepose.atomic import write_atomic
from livepose.data import keypoint_box, load_pose17, read_rgb
from livepose.quiet import native_chatter_filtered
from livepose.stopping import raise_if_requested
from livepose.train.data import Sample
from livepose.train.teacher import TEACHERS, merge_with_gt

log = logging.getLogger(__name__)

#: a labelling job: cache key, the image (None: read the key as a path), a person box xywh (None: find it)
Job = tuple[str, "np.ndarray | None", "list[float] | None"]
MIN_SAMPLE_JOINTS = 8           # a teacher-only sample needs this many confident joints
_teacher = None


def _label_one(job: tuple[str, Job]) -> list | None:
    """Worker: teacher keypoints (17, 3) for one image file or decoded frame."""
    global _teacher

    name, (key, frame, box) = job
    if _teacher is None:
        with native_chatter_filtered():    # LiteRT's delegate line, once per worker, above the progress bar
            _teacher = TEACHERS[name]()
    image = frame if frame is not None else read_rgb(Path(key.split("#")[0]))
    out = _teacher(image, None if box is None else np.asarray(box, np.float32))
    return None if out is None else out.round(2).tolist()


def teacher_labels(jobs: list[Job], cache: Path, teacher: str = "movenet", workers: int = 2
                   ) -> dict[str, list | None]:
    """Teacher keypoints per key, computed once and cached in ``cache`` (JSON)."""
    labels: dict[str, list | None] = json.loads(cache.read_text()) if cache.exists() else {}
    todo = [j for j in jobs if j[0] not in labels]
    if todo:
        log.info("teacher-labelling %d images with %s (%d cached)", len(todo), teacher, len(labels))
        # spawn, not fork: a forked child of a process that already runs TensorFlow, Qt or mediapipe threads
        # can abort inside mediapipe's graph setup
        with get_context("spawn").Pool(workers) as pool:
            work = pool.imap(_label_one, [(teacher, j) for j in todo], chunksize=8)
            for (key, _, _), out in zip(todo, tqdm(work, total=len(todo), desc="teacher")):
                raise_if_requested()
                labels[key] = out
        write_atomic(cache, json.dumps(labels))
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


def voc_person_boxes(images: Path, annotations: Path) -> list[tuple[Path, list[float]]]:
    """(image path, person box xywh) for every ``person`` object of a folder of Pascal-VOC XML files."""
    out = []
    for xml in sorted(annotations.glob("*.xml")):
        root = ET.parse(xml).getroot()
        name = root.findtext("filename") or f"{xml.stem}.jpg"
        for obj in root.iter("object"):
            if obj.findtext("name") != "person":
                continue
            b = {k: float(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")}
            out.append((images / name, [b["xmin"], b["ymin"], b["xmax"] - b["xmin"], b["ymax"] - b["ymin"]]))
    return out


def coco_person_boxes(images: Path, annotations: Path) -> list[tuple[Path, list[float]]]:
    """(image path, person box xywh) for every non-crowd person of a COCO keypoints JSON.

    Only the boxes are used: the hand-made keypoints of the repositories named in the configs mark hidden
    joints visible, so the teacher labels these boxes as it does Stanford 40's.
    """
    data = json.loads(annotations.read_text())
    files = {im["id"]: im["file_name"] for im in data["images"]}
    return [(images / files[a["image_id"]], [float(v) for v in a["bbox"]])
            for a in data["annotations"] if not a.get("iscrowd") and a["image_id"] in files]



#: person-box sources a config's ``data`` section may name, each read by its function
BOX_READERS = {"voc": voc_person_boxes, "coco": coco_person_boxes}

def repo_dir(repos: Path, spec: dict) -> Path:
    """A fetched repository named in a config (training data only; never needed at run time)."""
    path = repos / spec["repo"].replace("/", "+")
    if not path.is_dir():
        raise FileNotFoundError(
            f"training data {spec['repo']} not found at {path}: clone it there "
            f"(git clone https://github.com/{spec['repo']} {path} && git -C {path} checkout {spec['commit']})")
    return path


def _teacher_only(kps: list | None, min_score: float) -> np.ndarray | None:
    """Teacher keypoints as a training label: confidence below ``min_score`` is unlabelled, above is the weight."""
    if kps is None:
        return None
    out = np.asarray(kps, np.float32)
    out[:, 2] = np.where(out[:, 2] >= min_score, np.minimum(out[:, 2], 1.0), 0.0)
    return out if (out[:, 2] > 0).sum() >= MIN_SAMPLE_JOINTS else None


def build_samples(data_root: Path, spec: dict, cache: Path, repos: Path | None = None) -> list[Sample]:
    """Samples from the ``data`` section of a training config (paths relative to ``data_root``)."""

    teacher = spec.get("teacher", "movenet")
    min_score = spec.get("teacher_min_score", 0.3)
    gt_items = []
    for rel in spec.get("pose17", []):
        gt_items += load_pose17(data_root / rel)
    holdout = spec.get("holdout_last", 0)
    if holdout:
        gt_items = gt_items[:-holdout]
    boxed = []
    for kind, reader in BOX_READERS.items():     # in this order: the cache keys number the boxes
        for source in spec.get(kind, []):
            root = repo_dir(repos, source) if repos is not None else Path(source["path"])
            boxed += reader(root / source["images"], root / source["annotations"])[: source.get("limit")]
    frames = []
    for video in spec.get("videos", []):
        frames += video_frames(data_root / video["path"], video.get("every", 1))
    jobs: list[Job] = ([(str(p), None, keypoint_box(k).tolist()) for p, k, _ in gt_items]
                       + [(f"{p}#{i}", None, box) for i, (p, box) in enumerate(boxed)]
                       + [(key, frame, None) for key, frame in frames])
    labels = teacher_labels(jobs, cache, teacher)
    samples = []
    for path, kps, box in gt_items:
        found = labels.get(str(path))
        merged = merge_with_gt(kps, None if found is None else np.asarray(found, np.float32),
                               float(np.hypot(box[2], box[3])), min_visibility=min_score)
        samples.append(Sample(read_rgb(path), merged, box))
    n_boxed = n_video = 0
    for i, (path, box) in enumerate(boxed):
        kps = _teacher_only(labels.get(f"{path}#{i}"), min_score)
        if kps is not None:
            samples.append(Sample(read_rgb(path), kps, np.asarray(box, np.float32)))
            n_boxed += 1
    for key, image in frames:
        kps = _teacher_only(labels.get(key), min_score)
        if kps is not None:
            samples.append(Sample(image, kps, keypoint_box(kps, pad=0.15)))
            n_video += 1
    log.info("%d samples: %d with ground truth, %d teacher-labelled person boxes, %d teacher-labelled video frames",
             len(samples), len(gt_items), n_boxed, n_video)
    return samples
