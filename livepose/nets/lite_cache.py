"""Where LiteRT exports live and which one to run: one folder per weights file (by sha256) and input size.

LiteRT exports from ``.npz`` weights; a checkpoint (torch file, ``.weights.h5``, registry name) is first converted
into one, kept under ``<cache>/converted`` (:func:`converted_path`), and from then on is an ``.npz`` like any other.

Only the first run exports (in a child process, :func:`export_in_child`); the precision is then chosen from the
export's manifest: the fastest variant whose measured PCK@0.2 loss against the Keras model is within
``LiteConfig.max_pck_loss``. No TensorFlow here: a cached export runs without it.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

from livepose.config import LiteConfig
from livepose.data import cache_dir, data_root
from livepose.hashing import sha256_file
from livepose.nets.checkpoints import registry
from livepose.nets.weights import KERAS_SUFFIX, WeightsRef
from livepose.quiet import verbose

PRECISIONS = ("fp32", "fp16", "dynamic", "int8", "int8_hires_float")
#: the variants calibrated on real person crops (CALIBRATION_POOL); int8_hires_float keeps its high-resolution ops in
#: float32
CALIBRATED = ("int8", "int8_hires_float")
MANIFEST = "manifest.json"
#: hex digits of the weights' sha256 that name their cache folder
SHA_PREFIX = 16
#: real person crops that calibrate int8 (LSPet, disjoint from the evaluation sets), relative to the data root
CALIBRATION_POOL = Path("train_pool") / "lspet" / "annotations.pose17.json"
#: the cache folder of checkpoints converted to ``.npz`` for LiteRT
CONVERTED = "converted"


class ExportFailed(RuntimeError):
    pass


def require_npz(ref: WeightsRef) -> WeightsRef:
    """``ref`` itself if LiteRT can export it (an ``.npz`` file), else a ValueError: a checkpoint must be converted
    first (:func:`livepose.nets.load.lite_weights` does it once and caches the ``.npz``)."""
    if ref.kind != "npz":
        raise ValueError(f"the LiteRT exporter works from an .npz weights file, got the {ref.kind} {ref.spec!r}; "
                         f"convert it first with livepose.nets.load.lite_weights")
    return ref


@functools.lru_cache(maxsize=None)
def _sha256_of(path: Path, size: int, mtime_ns: int) -> str:
    """One hash per file version and process: 'auto' and the load that follows both need a checkpoint's key."""
    return sha256_file(path)


def converted_path(ref: WeightsRef) -> Path:
    """<cache>/converted/<name>-<sha256 prefix>.npz: where checkpoint ``ref`` is kept as an ``.npz`` for LiteRT.

    A registry name is keyed by its published sha256 prefix; a file by its own bytes, so a checkpoint that
    changes is converted afresh rather than served stale. Numpy and hashing only: no TensorFlow here.
    """
    if ref.kind == "npz":
        raise ValueError(f"{ref.spec} is an .npz already; only checkpoints are converted")
    if ref.kind == "registry":
        ckpt = registry.get(ref.spec)
        key = f"{ckpt.name}-{ckpt.sha256_prefix}"
    else:
        name = ref.path.name
        name = name.removesuffix(KERAS_SUFFIX) if ref.kind == "keras" else registry.strip_sha_suffix(name)
        stat = ref.path.stat()
        key = f"{name}-{_sha256_of(ref.path.resolve(), stat.st_size, stat.st_mtime_ns)[:SHA_PREFIX]}"
    return cache_dir() / CONVERTED / f"{key}.npz"


def has_calibration_data(root: Path | None = None) -> bool:
    """Whether the int8 variants can be calibrated: the real person crops are there (``root`` default: the shared
    data)."""
    return (Path(root or data_root()) / CALIBRATION_POOL).exists()


def lite_dir(ref: WeightsRef, input_size: tuple[int, int] | None = None) -> Path:
    """<cache>/lite/<weights sha256, 16 hex>/<HxW>: one export per weights file and input size."""
    require_npz(ref)
    h, w = input_size or ref.meta["input_size"]
    return cache_dir() / "lite" / ref.sha256[:SHA_PREFIX] / f"{h}x{w}"


def read_manifest(out_dir: Path) -> dict:
    path = Path(out_dir) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {"variants": {}}


def choose_precision(manifest: dict, max_pck_loss: float = LiteConfig.max_pck_loss) -> str:
    """The fastest exported variant (best ms per crop over its batch sizes) within the PCK@0.2 budget.

    fp32 is always allowed: it is the Keras network up to float rounding.
    """
    ok = {}
    for precision, v in manifest.get("variants", {}).items():
        acc = v.get("accuracy")
        if precision == "fp32" or (acc is not None and -acc["pck_delta"] <= max_pck_loss):
            ok[precision] = min(v["ms_per_crop"].values())
    if not ok:
        raise ValueError("no exported variant is within the accuracy budget; run `livepose export` with fp32")
    return min(ok, key=ok.get)


def export_in_child(weights: Path, out_dir: Path, input_size: tuple[int, int] | None = None,
                    cfg: LiteConfig = LiteConfig(), data_root: Path | None = None) -> dict:
    """:func:`livepose.nets.export.export`, run as `python -m livepose export` in a child process.

    The converter's heap stays with the process that ran it: exporting the three "auto" variants of v5 in-process
    measured 4.6 GB peak and 3.4 GB still resident afterwards. A subprocess (not multiprocessing) works from any
    caller, including scripts without a ``__main__`` guard. Its summary table is dropped; its stderr is the
    terminal's, and the command keeps the converter's chatter off it (``--verbose`` is passed on).
    """
    command = [sys.executable, "-m", "livepose", "export", "--model", str(weights), "--out-dir", str(out_dir),
               "--precision", ",".join(cfg.precisions), "--batch-sizes", ",".join(map(str, cfg.batch_sizes)),
               "--threads", str(cfg.num_threads), "--calibration-crops", str(cfg.calibration_crops),
               "--float-height-share", str(cfg.float_height_share), "--bench-runs", str(cfg.bench_runs)]
    if input_size:
        command += ["--input-size", f"{input_size[0]}x{input_size[1]}"]
    if data_root:
        command += ["--data", str(data_root)]
    if not cfg.phase_deconv:
        command.append("--no-phase-deconv")
    if verbose():
        command.append("--verbose")
    done = subprocess.run(command, stdout=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise ExportFailed(f"LiteRT export of {weights} failed (exit {done.returncode}; its error is above)")
    return read_manifest(out_dir)
