"""Where livepose's files live (shipped assets, the shared real data, the cache) and the one pose17 reader.

Every module that needs one of these places or reads a ``*.pose17.json`` file comes here, so each is defined once.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from livepose.config import SourceConfig
from livepose.skeleton import NUM_KEYPOINTS
from livepose.sources import open_source

log = logging.getLogger(__name__)

#: files shipped in the repository: weights, detector models, sample clips
ASSETS = Path(__file__).resolve().parent.parent / "assets"
#: environment variable that overrides where the shared real data lives
DATA_ENV = "LIVEPOSE_SHARED_DATA"
#: people with fewer labelled joints than this are no training or calibration sample
MIN_LABELLED_JOINTS = 2
#: padding around the labelled joints of a person without a box, as a share of their extent
KEYPOINT_BOX_PAD = 0.1


def data_root() -> Path:
    """The shared real data beside the clone (../shared/data), or $LIVEPOSE_SHARED_DATA."""
    return Path(os.environ.get(DATA_ENV, Path(__file__).resolve().parents[2] / "shared" / "data"))


@dataclass
class Entry:
    """One image or frame with its labelled people."""

    file: Path | None          # None: frame `index` of the dataset's video
    index: int
    gt: np.ndarray             # (P, 17, 3)
    boxes: np.ndarray          # (P, 4) xywh
    track_ids: np.ndarray | None = None  # (P,) sequences: who is who across frames (None: not labelled)
    visible: np.ndarray | None = None    # (P,) counts as a person to be found (None: all do); `livepose synth` sets it


@dataclass
class Dataset:
    path: Path
    name: str
    entries: list[Entry]
    sequence: bool             # frames of one clip (temporal metrics) rather than independent images
    fps: float
    video: Path | None = None
    missing: list[Path] = field(default_factory=list)   # image files the GT names that are not there (skipped)

    def images(self) -> Iterator[np.ndarray]:
        """RGB images in entry order (a sequence's video is decoded frame by frame)."""
        if self.video is None:
            for e in self.entries:
                yield read_rgb(e.file)
            return
        wanted = {e.index for e in self.entries}
        with open_source(self.video, SourceConfig(mode="every")) as source:
            for frame in source:
                if frame.index in wanted:
                    yield frame.image


def load_dataset(path: Path) -> Dataset:
    """Read a ``*.pose17.json`` (see ../shared/data/README.md); people with no labelled joint are left out."""
    try:
        d = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from exc
    _check_pose17(d, path)
    root = Path(path).parent
    sequence = "frames" in d
    entries = []
    for i, item in enumerate(d["frames"] if sequence else d["images"]):
        people = [p for p in item["people"] if (np.asarray(p["keypoints"])[:, 2] > 0).any()]
        gt = np.array([p["keypoints"] for p in people], np.float32).reshape(-1, NUM_KEYPOINTS, 3)
        boxes = np.array([p["bbox"] if "bbox" in p else keypoint_box(k) for p, k in zip(people, gt)],
                         np.float32).reshape(-1, 4)
        ids = np.array([p["track_id"] for p in people], int) if all("track_id" in p for p in people) else None
        visible = np.array([p.get("visible", True) for p in people], bool)
        entries.append(Entry(root / item["file"] if "file" in item else None, item.get("frame_index", i), gt, boxes,
                             ids, visible))
    video = root / d["video"] if sequence and "video" in d else None
    if any(e.file is None for e in entries) and video is None:
        raise ValueError(f"{path}: entries without a 'file' need a top-level 'video'")
    if video is not None and not video.is_file():
        raise FileNotFoundError(f"{path}: its video {video} does not exist")
    missing = [e.file for e in entries if e.file is not None and not e.file.is_file()]
    if missing and sequence:
        raise FileNotFoundError(f"{path}: {len(missing)} of its {len(entries)} frames are missing (first: "
                                f"{missing[0]}); a sequence needs them all")
    entries = [e for e in entries if e.file is None or e.file.is_file()]
    name = d.get("sequence") or (root.name if sequence else path.stem.replace(".pose17", ""))
    return Dataset(Path(path), name, entries, sequence, float(d.get("fps", 30.0)), video, missing)


def _check_pose17(d: object, path: Path) -> None:
    """Raise ValueError naming the file, the record and the field for anything load_dataset could trip over."""
    if not isinstance(d, dict) or d.get("format") != "pose17-v1":
        found = d.get("format") if isinstance(d, dict) else f"a top-level {type(d).__name__}"
        raise ValueError(f"{path}: not a pose17-v1 file (format {found!r}; see shared/data/README.md)")
    key = "frames" if "frames" in d else "images"
    if not isinstance(d.get(key), list):
        raise ValueError(f"{path}: '{key}' must be a list of records")
    for i, item in enumerate(d[key]):
        where = f"{path}: {key}[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("people"), list):
            raise ValueError(f"{where}: needs a 'people' list")
        if "file" in item and not isinstance(item["file"], str):
            raise ValueError(f"{where}.file: must be a path string")
        for j, person in enumerate(item["people"]):
            kp = person.get("keypoints") if isinstance(person, dict) else None
            if not _numbers(kp, (NUM_KEYPOINTS, 3)):
                raise ValueError(f"{where}.people[{j}].keypoints: must be {NUM_KEYPOINTS} [x, y, v] number "
                                 f"triples, got {json.dumps(kp)[:60]}")
            if "bbox" in person and not _numbers(person["bbox"], (4,)):
                raise ValueError(f"{where}.people[{j}].bbox: must be 4 numbers [x, y, w, h]")


def _numbers(value: object, shape: tuple[int, ...]) -> bool:
    """Whether ``value`` is nested lists of ints/floats of exactly ``shape`` (no strings, no None)."""
    if not isinstance(value, list):
        return False
    try:
        array = np.asarray(value)
    except ValueError:                      # ragged
        return False
    return array.shape == shape and array.dtype.kind in "iuf"


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            return True
    except OSError:
        return False


def cache_dir() -> Path:
    """$LIVEPOSE_CACHE, else $XDG_CACHE_HOME/livepose, else ~/.cache/livepose; a temp dir if unwritable."""
    if os.environ.get("LIVEPOSE_CACHE"):
        root = Path(os.environ["LIVEPOSE_CACHE"]).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        root = Path(xdg).expanduser() / "livepose"
    if _writable(root):
        return root
    fallback = Path(tempfile.gettempdir()) / f"livepose-cache-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    log.warning("cache dir %s is not writable; using %s instead (lost at reboot)", root, fallback)
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8; OSError (not None, as cv2 gives) for a missing or unreadable file."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def keypoint_box(kps: np.ndarray, pad: float = KEYPOINT_BOX_PAD) -> np.ndarray:
    """The xywh box around a person's labelled joints, grown by ``pad`` of their extent on each side."""
    pts = kps[kps[:, 2] > 0, :2]
    lo, hi = pts.min(0), pts.max(0)
    size = (hi - lo) * (1 + 2 * pad)
    return np.array([*(lo + hi) / 2 - size / 2, *size], np.float32)


def load_pose17(json_path: Path, min_labelled: int = MIN_LABELLED_JOINTS) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    """(image path, keypoints (17, 3), box xywh) for every person with ``min_labelled`` labelled joints.

    The flat view of :func:`load_dataset` that training and the LiteRT calibration read: one person a row.
    """
    return [(entry.file, kps, box) for entry in load_dataset(json_path).entries if entry.file is not None
            for kps, box in zip(entry.gt, entry.boxes) if (kps[:, 2] > 0).sum() >= min_labelled]
