"""Published SimpleBaseline checkpoints we know how to fetch, and where they are cached.

URLs are MMPose's model zoo (``configs/top_down/resnet/README.md``, "Results on COCO val2017"); OpenMMLab
names each file ``<name>-<first 8 hex digits of its sha256>_<date>.pth``, so the name carries a checksum.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path


log = logging.getLogger(__name__)

_MMPOSE = "https://download.openmmlab.com/mmpose/top_down/resnet"
_FILE_RE = re.compile(r"^(?P<name>.+)-(?P<sha>[0-9a-f]{8})_\d{8}\.pth$")
_SIZE_RE = re.compile(r"(\d{2,4})x(\d{2,4})")


@dataclass(frozen=True)
class Checkpoint:
    """One downloadable checkpoint; ``sha256`` is the full digest where it is known."""

    url: str
    depth: int
    input_size: tuple[int, int]  # (height, width)
    coco_ap: float  # COCO val2017 AP as published with the checkpoint (detector boxes, human AP 56.4)
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def name(self) -> str:
        return _FILE_RE.match(self.filename)["name"]

    @property
    def sha256_prefix(self) -> str:
        return _FILE_RE.match(self.filename)["sha"]


CHECKPOINTS: dict[str, Checkpoint] = {
    c.name: c
    for c in (
        Checkpoint(f"{_MMPOSE}/res50_coco_256x192-ec54d7f3_20200709.pth", 50, (256, 192), 0.718),
        Checkpoint(f"{_MMPOSE}/res50_coco_384x288-e6f795e9_20200709.pth", 50, (384, 288), 0.731),
        Checkpoint(f"{_MMPOSE}/res101_coco_256x192-6e6babf0_20200708.pth", 101, (256, 192), 0.726),
        Checkpoint(f"{_MMPOSE}/res101_coco_384x288-8c71bdc9_20200709.pth", 101, (384, 288), 0.748),
        Checkpoint(f"{_MMPOSE}/res152_coco_256x192-f6e307c2_20200709.pth", 152, (256, 192), 0.735),
        Checkpoint(f"{_MMPOSE}/res152_coco_384x288-3860d4c9_20200709.pth", 152, (384, 288), 0.750),
    )
}


def get(name: str) -> Checkpoint:
    try:
        return CHECKPOINTS[name]
    except KeyError:
        raise KeyError(f"unknown checkpoint {name!r}; known: {', '.join(CHECKPOINTS)}") from None


def input_size_from_name(name: str) -> tuple[int, int] | None:
    """``res50_coco_384x288`` -> (384, 288): checkpoint names state their crop as height x width."""
    m = _SIZE_RE.search(name)
    return (int(m[1]), int(m[2])) if m else None


def strip_sha_suffix(filename: str) -> str:
    """A checkpoint's name from its file name: drop ``-<sha>_<date>.pth`` or the ``.pth(.tar)`` suffix."""
    m = _FILE_RE.match(filename)
    if m:
        return m["name"]
    return re.sub(r"(\.(pth|pt|tar|pkl|bin))+$", "", filename)


def torch_path(ckpt: Checkpoint, root: Path) -> Path:
    return root / "torch" / ckpt.filename


def keras_path(name: str, root: Path) -> Path:
    return root / "keras" / f"{name}.weights.h5"
