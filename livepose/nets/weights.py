"""Which weights a ``--model`` value means, resolved once into a :class:`WeightsRef`.

Every command, the app and the exporter accept the same values: a shipped name (``default``, ``fast``, ...), an
``.npz`` weights file, a Keras ``.weights.h5`` file, a torch checkpoint, or a registry name from
``livepose weights list``. An ``.npz`` file's metadata is read and its sha256 taken here, once per start, with
numpy only: the LiteRT path must not import TensorFlow to learn what it is running.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from livepose.atomic import replacing
from livepose.config import ModelConfig
from livepose.data import ASSETS
from livepose.hashing import sha256_file
from livepose.nets.checkpoints.registry import CHECKPOINTS

#: name -> shipped weights file in assets/ (trained in-house; docs/model-card.md says how and on what)
SHIPPED = {
    "default": "simplebaseline_movenet_256x192.npz",
    "movenet-256x192": "simplebaseline_movenet_256x192.npz",
    "fast": "simplebaseline_r18_256x192.npz",
    "r18-256x192": "simplebaseline_r18_256x192.npz",
    "r18-128x96": "simplebaseline_r18_128x96.npz",
}
#: what :func:`livepose.nets.keras_net.save_weights_npz` always writes: the architecture a weights file belongs to
REQUIRED_META = ("depth", "num_joints", "input_size")
#: the metadata entry of a livepose weights .npz
META_KEY = "__meta__"
#: the kinds of weights a --model value can name
KINDS = ("npz", "keras", "torch", "registry")
KERAS_SUFFIX = ".weights.h5"


class ModelNotFound(FileNotFoundError):
    pass


def shipped_path(name: str = "default") -> Path:
    path = ASSETS / SHIPPED[name]
    if not path.exists():
        raise ModelNotFound(f"shipped weights {path} are missing: reinstall from a full clone "
                            f"(git lfs is not used; the file is in the repository)")
    return path


@dataclass(frozen=True)
class WeightsRef:
    """One resolved ``--model`` value: what to build and from which file.

    ``meta`` and ``sha256`` are set for ``.npz`` files only (what LiteRT exports from; a checkpoint gets there
    through :func:`livepose.nets.load.lite_weights`); ``path`` is None for a registry name, which
    :mod:`livepose.nets.checkpoints` fetches and converts on first use.
    """

    spec: str
    kind: str
    path: Path | None
    meta: Mapping[str, Any] | None = None
    sha256: str | None = None

    @property
    def stem(self) -> str:
        """A short name for messages and network names."""
        return self.path.stem if self.path is not None else self.spec

    @property
    def score_scale(self) -> float:
        """The calibrated factor from heatmap peak to confidence (livepose.commands.calibrate); 1 when absent."""
        return float((self.meta or {}).get("score_scale", 1.0))


def resolve(spec: str | os.PathLike | WeightsRef) -> WeightsRef:
    """A ``--model`` value -> its :class:`WeightsRef`; reads an ``.npz`` file's metadata and hash here, once.

    Raises ModelNotFound for a file that does not exist, ValueError for a damaged or foreign ``.npz``.
    """
    if isinstance(spec, WeightsRef):
        return spec
    text = str(spec)
    if text in SHIPPED:
        path = shipped_path(text)
    elif text in CHECKPOINTS:
        return WeightsRef(text, "registry", None)
    else:
        path = Path(text)
        if not path.exists():
            raise ModelNotFound(f"weights file {path} does not exist (and {text!r} is no shipped name: "
                                f"{', '.join(SHIPPED)}, nor a checkpoint: {', '.join(CHECKPOINTS)})")
    if path.suffix == ".npz":
        return WeightsRef(text, "npz", path, read_npz_meta(path), sha256_file(path))
    return WeightsRef(text, "keras" if path.name.endswith(KERAS_SUFFIX) else "torch", path)


@contextlib.contextmanager
def open_npz(path: str | os.PathLike) -> Iterator[Any]:
    """``np.load`` of a weights file, where a damaged file is a clear ValueError, not a zipfile traceback."""
    try:
        with np.load(path, allow_pickle=False) as data:
            yield data
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: not a readable weights .npz, truncated or corrupt ({exc})") from exc
    except KeyError as exc:
        raise ValueError(f"{path}: not a livepose weights .npz (no {exc} entry)") from exc
    except ValueError as exc:   # numpy's "pickled data ... allow_pickle" for any file that is not an .npz at all
        if "pickle" not in str(exc):
            raise
        raise ValueError(f"{path}: not a livepose weights .npz (not a numpy archive at all)") from exc


def read_npz_meta(path: str | os.PathLike) -> dict:
    """The architecture (and calibration) stored in a weights ``.npz``, checked for the required fields."""
    with open_npz(path) as data:
        meta = decode_meta(data[META_KEY])
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ValueError(f"{path}: not a livepose weights .npz (its metadata lacks {missing})")
    return meta


def config_from_meta(meta: Mapping[str, Any], input_size: tuple[int, int] | None = None) -> ModelConfig:
    """The ModelConfig a weights file was saved from (files older than the backbone field are ResNets)."""
    return ModelConfig(backbone=meta.get("backbone", "resnet"), depth=meta["depth"], num_joints=meta["num_joints"],
                       mobilenet_alpha=meta.get("mobilenet_alpha", ModelConfig().mobilenet_alpha),
                       deconv_filters=meta.get("deconv_filters", ModelConfig().deconv_filters),
                       input_size=tuple(input_size or meta["input_size"]))


def meta_array(meta: Mapping[str, Any]) -> np.ndarray:
    """Metadata as the uint8 array stored under :data:`META_KEY`."""
    return np.frombuffer(json.dumps(dict(meta)).encode(), np.uint8)


def decode_meta(array: np.ndarray) -> dict:
    """The metadata :func:`meta_array` stored."""
    return json.loads(bytes(array).decode())


def savez_atomic(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """A compressed ``.npz`` that replaces ``path`` all at once (see livepose.atomic)."""
    with replacing(path, suffix=".npz") as tmp:      # numpy appends .npz to any other name
        np.savez_compressed(tmp, **arrays)


def average_npz(paths: Sequence[str | os.PathLike], out: str | os.PathLike) -> None:
    """The uniform weight average ("model soup") of fine-tuned runs of one network, written to ``out``.

    Runs that share a starting point can be averaged layer by layer; the mean often generalises better than either.
    The files must hold the same layers of the same shapes (else ValueError); the metadata is the last file's minus
    its confidence calibration, which no longer fits (run `livepose calibrate` on the result).
    """
    if len(paths) < 2:
        raise ValueError("averaging needs at least two weights files")
    files = [read_npz_arrays(p) for p in paths]
    layout = {k: v.shape for k, v in files[0].items() if k != META_KEY}
    for path, arrays in zip(paths[1:], files[1:]):
        if {k: v.shape for k, v in arrays.items() if k != META_KEY} != layout:
            raise ValueError(f"{path} does not hold the same layers as {paths[0]}: not runs of one network")
    meta = decode_meta(files[-1][META_KEY])
    meta.pop("score_scale", None)
    averaged = {k: np.mean([f[k].astype(np.float32) for f in files], axis=0).astype(files[-1][k].dtype)
                for k in layout}
    savez_atomic(out, {**averaged, META_KEY: meta_array(meta)})


def read_npz_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of a livepose ``.npz`` (its metadata included), read into memory."""
    with open_npz(path) as data:
        return {k: data[k] for k in data.files}


def write_npz_meta(path: str | os.PathLike, **updates: Any) -> None:
    """Add or change metadata of a weights file in place (atomically); the weight arrays are kept bit for bit."""
    arrays = read_npz_arrays(path)
    meta = {**decode_meta(arrays[META_KEY]), **updates}
    arrays[META_KEY] = meta_array(meta)
    savez_atomic(path, arrays)
