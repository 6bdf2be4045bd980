"""The checkpoint reader: exact tensors from hand-built files, hostile pickles refused, corrupt files reported.

Hostile files are built in both containers (zip and legacy), and each payload is first shown to be live:
an ordinary ``pickle.loads`` of it creates the canary file. Our reader must raise and leave no canary.
"""

from __future__ import annotations

import builtins
import functools
import io
import os
import pickle
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from livepose.nets.checkpoints.torchfile import (
    MAGIC_NUMBER,
    PROTOCOL_VERSION,
    CheckpointError,
    UnsafeCheckpointError,
    load_checkpoint,
    load_state_dict,
)

SYS_INFO = {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}


# --- hand-written containers (no torch needed) ----------------------------------------------------------


def _int(v: int) -> bytes:
    return b"J" + struct.pack("<i", v)  # BININT


def _str(s: str) -> bytes:
    return b"X" + struct.pack("<I", len(s)) + s.encode()  # BINUNICODE


def _tuple(values) -> bytes:
    return b"(" + b"".join(_int(v) for v in values) + b"t"


def tensor_pickle(key: str, numel: int, size, stride, offset: int = 0) -> bytes:
    """The pickle torch.save writes for ``{'w': tensor}``: _rebuild_tensor_v2 over a persistent storage id."""
    storage = b"(" + _str("storage") + b"ctorch\nFloatStorage\n" + _str(key) + _str("cpu") + _int(numel) + b"tQ"
    tensor = (b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage + _int(offset) + _tuple(size) + _tuple(stride)
              + b"\x89" + b"ccollections\nOrderedDict\n)R" + b"tR")
    return b"\x80\x02}" + _str("w") + tensor + b"s."


def zip_container(path: Path, data_pkl: bytes, storages: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/byteorder", "little")
        for key, raw in (storages or {}).items():
            zf.writestr(f"archive/data/{key}", raw)
    return path


def legacy_container(path: Path, main_pkl: bytes, storages: dict[str, tuple[int, bytes]] | None = None) -> Path:
    storages = storages or {}
    with open(path, "wb") as f:
        for header in (MAGIC_NUMBER, PROTOCOL_VERSION, SYS_INFO):
            pickle.dump(header, f, protocol=2)
        f.write(main_pkl)
        pickle.dump(sorted(storages), f, protocol=2)
        for key in sorted(storages):
            numel, raw = storages[key]
            f.write(struct.pack("<q", numel) + raw)
    return path


CONTAINERS = {"zip": zip_container, "legacy": legacy_container}


@pytest.mark.parametrize("container", CONTAINERS)
def test_strided_views_are_exact(tmp_path, container):
    data = np.arange(12, dtype=np.float32)
    pkl = tensor_pickle("0", 12, size=(3, 2), stride=(1, 4), offset=2)  # a transposed slice
    storages = {"0": data.tobytes()} if container == "zip" else {"0": (12, data.tobytes())}
    sd = load_state_dict(CONTAINERS[container](tmp_path / "c.pth", pkl, storages))
    expected = np.lib.stride_tricks.as_strided(data[2:], (3, 2), (4, 16))
    np.testing.assert_array_equal(sd["w"], expected)
    assert sd["w"].dtype == np.float32 and sd["w"].flags.writeable


@pytest.mark.parametrize("container", CONTAINERS)
def test_out_of_bounds_strides_refused(tmp_path, container):
    """A tensor claiming more elements than its storage holds must not read beyond it."""
    data = np.zeros(4, np.float32).tobytes()
    pkl = tensor_pickle("0", 4, size=(1000,), stride=(1,))
    storages = {"0": data} if container == "zip" else {"0": (4, data)}
    with pytest.raises(CheckpointError, match="reads past its storage"):
        load_checkpoint(CONTAINERS[container](tmp_path / "c.pth", pkl, storages))


# --- hostile pickles -----------------------------------------------------------------------------------


class _Payload:
    """Pickles as ``func(*args)``, the way a booby-trapped checkpoint would."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payload(kind: str, canary: Path) -> bytes:
    """A pickled checkpoint dict whose ``meta`` entry creates ``canary`` when unpickled normally."""
    touch = f"open({str(canary)!r}, 'w').close()"
    objects = {
        "os.system": _Payload(os.system, f"touch {canary}"),
        "builtins.eval": _Payload(builtins.eval, touch),
        "builtins.exec": _Payload(builtins.exec, touch),
        "subprocess": _Payload(subprocess.call, ["touch", str(canary)]),
        # __reduce__ trick: the callable is itself rebuilt by a reduce (functools.partial around exec)
        "partial-reduce": _Payload(functools.partial(builtins.exec, touch)),
    }
    if kind in objects:
        return pickle.dumps({"state_dict": {}, "meta": objects[kind]}, protocol=2)
    # a global inside the torch namespace that is not a rebuild function: torch.load on an attacker's path
    assert kind == "torch.load"
    return b"\x80\x02}" + _str("meta") + b"ctorch\nload\n" + _str(str(canary)) + b"\x85Rs."


PAYLOADS = ["os.system", "builtins.eval", "builtins.exec", "subprocess", "partial-reduce", "torch.load"]


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("kind", PAYLOADS)
def test_code_execution_refused(tmp_path, container, kind):
    canary = tmp_path / "canary"
    payload = _payload(kind, canary)
    if kind != "torch.load":  # the payload is live: a plain unpickler runs it
        pickle.loads(payload)
        assert canary.exists(), "test payload did not fire under plain pickle"
        canary.unlink()
    path = CONTAINERS[container](tmp_path / "evil.pth", payload)
    with pytest.raises(UnsafeCheckpointError, match="not on the allowlist") as err:
        load_checkpoint(path)
    assert "nothing was executed" in str(err.value)
    assert not canary.exists(), "the hostile checkpoint ran code"


@pytest.mark.parametrize("container", CONTAINERS)
def test_unknown_persistent_id_refused(tmp_path, container):
    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("module", "evil.Module", "/tmp/x.py", "import os") if obj == "marker" else None

    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump({"w": "marker"})
    with pytest.raises(UnsafeCheckpointError, match="unknown persistent id"):
        load_checkpoint(CONTAINERS[container](tmp_path / "evil.pth", buf.getvalue()))


def test_real_checkpoint_with_payload_refused(tmp_path):
    """A genuine torch.save file (both serializations) with one booby-trapped entry among real weights."""
    torch = pytest.importorskip("torch", reason="PyTorch is needed to write genuine checkpoints")
    canary = tmp_path / "canary"
    obj = {"state_dict": torch.nn.Conv2d(3, 4, 3).state_dict(), "meta": _Payload(os.system, f"touch {canary}")}
    for zipped in (True, False):
        path = tmp_path / f"evil_{zipped}.pth"
        torch.save(obj, path, _use_new_zipfile_serialization=zipped)
        with pytest.raises(UnsafeCheckpointError, match=r"global (posix|os|nt)\.system"):
            load_checkpoint(path)
    assert not canary.exists()


# --- corrupt and truncated files -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def genuine(tmp_path_factory) -> dict[str, Path]:
    torch = pytest.importorskip("torch", reason="PyTorch is needed to write genuine checkpoints")
    torch.manual_seed(0)
    out = {}
    for zipped in (True, False):
        path = tmp_path_factory.mktemp("ckpt") / f"{'zip' if zipped else 'legacy'}.pth"
        torch.save({"state_dict": torch.nn.Conv2d(16, 32, 3).state_dict()}, path,
                   _use_new_zipfile_serialization=zipped)
        out["zip" if zipped else "legacy"] = path
    return out


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.99])
def test_truncated_file(genuine, tmp_path, container, fraction):
    data = genuine[container].read_bytes()
    assert set(load_state_dict(genuine[container])) == {"weight", "bias"}
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CheckpointError, match="truncated") as err:
        load_checkpoint(cut)
    assert str(cut) in str(err.value)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_bytes(pickle.dumps({"hello": "world"}))
    with pytest.raises(CheckpointError, match="no torch.save magic number"):
        load_checkpoint(path)
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)


def test_flipped_storage_size(genuine, tmp_path):
    """A legacy file whose storage count disagrees with the pickle is corrupt, not silently misread."""
    data = bytearray(genuine["legacy"].read_bytes())
    numel = 32 * 16 * 9
    pos = data.rfind(struct.pack("<q", numel))
    data[pos: pos + 8] = struct.pack("<q", numel - 1)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(bad)
