"""How the package hangs together: imports run one way, with no cycle, and the LiteRT path never loads TensorFlow.

The import graph is read from the source (``ast``), not from a running interpreter, so a cycle is found whichever
module happens to be imported first; the fresh-interpreter test then checks that every module really imports.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from livepose.nets.lite_cache import MANIFEST
from livepose.nets.weights import META_KEY, meta_array

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "livepose"
#: the top floor: entry points and the modules that serve them; nothing below may import these
TOP = ("livepose.cli", "livepose.__main__", "livepose.commands", "livepose.app", "livepose.train")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _module_level(tree: ast.Module) -> list[ast.stmt]:
    """Statements that run when the module is imported: the top level, and the bodies of its if/try blocks."""
    out, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If):
            if not _is_type_checking(node):
                todo += node.body + node.orelse
        elif isinstance(node, ast.Try):
            todo += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
        else:
            out.append(node)
    return out


def _targets(node: ast.stmt, importer: str) -> list[str]:
    """The livepose modules an import statement loads (``from pkg import sub`` loads ``pkg.sub``)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
        needed = set(names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:                                        # relative: resolve against the importer's package
            base = importer.split(".")[: len(importer.split(".")) - node.level + (importer in PACKAGES)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        names = [module] + [f"{module}.{a.name}" for a in node.names]
        # ``from pkg import name`` needs pkg/__init__ run to its end, unless every name is a submodule of pkg
        needed = set(names[1:]) | ({module} if any(n not in MODULES for n in names[1:]) else set())
    else:
        return []
    found = []
    for name in names:
        if name in MODULES:
            # importing a.b.c runs a/__init__ and a/b/__init__ first, unless the importer is inside them already
            # (then they are running, and only a name taken from one of them needs it finished)
            parts = name.split(".")
            found += [p for p in (".".join(parts[:i]) for i in range(2, len(parts) + 1))
                      if p in MODULES and p != importer and (p in needed or not importer.startswith(p + "."))]
    return found


PACKAGES = {name for name, path in MODULES.items() if path.name == "__init__.py"}


def import_graph(module_level_only: bool = True) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        nodes = _module_level(tree) if module_level_only else list(ast.walk(tree))
        graph[name] = {t for node in nodes for t in _targets(node, name)}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}          # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_graph_reader_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    graph = import_graph()
    assert "livepose.nets.weights" in graph["livepose.nets.load"]           # from livepose.nets.weights import ...
    assert "livepose.nets.checkpoints" in graph["livepose.nets.weights"]     # the package's __init__ runs first
    # inside a package, its __init__ counts only where a name is taken from it (it re-exports the detector factory)
    assert "livepose.detect" not in graph["livepose.detect.blazepose"]        # from livepose.detect.base import ...
    tree = ast.parse("from livepose.detect import Detection")
    assert _targets(tree.body[0], "livepose.detect.blazepose") == ["livepose.detect"]


@pytest.mark.parametrize("module_level_only", [True, False])
def test_no_import_cycle(module_level_only):
    """None among module-level imports, and none through a function-level (lazy) import either: a lazy import
    that closes a cycle hides a factory living in the wrong module (detect.make_detector did)."""
    cycle = find_cycle(import_graph(module_level_only))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_lower_stages_never_import_commands_or_the_app():
    """Imports run one way: stages, nets and data below; commands, the app and training on top."""
    upward = {(name, target) for name, targets in import_graph(module_level_only=False).items()
              for target in targets
              if target.startswith(TOP) and not name.startswith(TOP)}
    assert not upward, f"lower modules import the top floor: {sorted(upward)}"


def test_every_module_imports_in_a_fresh_interpreter():
    names = sorted(n for n in MODULES if not n.endswith("__main__"))
    code = textwrap.dedent(f"""
        import importlib, traceback
        failed = []
        for name in {names!r}:
            try:
                importlib.import_module(name)
            except Exception:
                failed.append(name + ": " + traceback.format_exc(limit=3))
        print("\\n".join(failed))
        raise SystemExit(1 if failed else 0)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


# --- LiteRT without TensorFlow -------------------------------------------------------------------------------------

INPUT = (64, 48)            # a tiny network: the test is about imports, not accuracy
JOINTS = 17
STRIDE = 4                  # heatmaps at a quarter of the input, as SimpleBaseline's


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory) -> tuple[Path, Path, bytes]:
    """An ``.npz`` weights file (numpy only), an empty cache folder, and a LiteRT fp32 flatbuffer to put in it."""
    tf = pytest.importorskip("tensorflow")
    root = tmp_path_factory.mktemp("lite")
    weights = root / "tiny.npz"
    np.savez(weights, **{META_KEY: meta_array({"depth": 18, "num_joints": JOINTS, "input_size": list(INPUT)})})
    inp = tf.keras.Input((*INPUT, 3), batch_size=1)
    model = tf.keras.Model(inp, tf.keras.layers.Conv2D(JOINTS, STRIDE, strides=STRIDE)(inp))
    fn = tf.function(model, input_signature=[tf.TensorSpec((1, *INPUT, 3), tf.float32)])
    flatbuffer = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model).convert()
    return weights, root / "cache", flatbuffer


def test_litert_network_runs_without_tensorflow(tiny_export, tmp_path):
    """``--runtime auto`` on an exported ``.npz``: resolve, pick the cached LiteRT export, estimate poses, all
    with ``tensorflow`` never imported (its import is made to fail, so a lazy import would be caught too)."""
    weights, cache, flatbuffer = tiny_export
    code = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        sys.modules["tensorflow"] = None             # any `import tensorflow` now raises ImportError
        import numpy as np
        from livepose.estimate import PoseEstimator
        from livepose.nets.lite_cache import lite_dir
        from livepose.nets.load import load_network
        from livepose.nets.weights import resolve

        out = lite_dir(resolve({str(weights)!r}))
        out.mkdir(parents=True)
        (out / "fp32_b1.tflite").write_bytes(bytes.fromhex({flatbuffer.hex()!r}))
        variant = {{"files": {{"1": "fp32_b1.tflite"}}, "accuracy": None, "ms_per_crop": {{"1": 1.0}}}}
        (out / {MANIFEST!r}).write_text(json.dumps({{"weights": "tiny.npz", "input_size": {list(INPUT)},
                                                         "variants": {{"fp32": variant}}}}))
        net = load_network({str(weights)!r}, runtime="auto", precision="auto")
        estimate = PoseEstimator(net)(np.zeros((120, 90, 3), np.uint8), np.array([[10, 10, 40, 80]], np.float32))
        loaded = sorted(m for m, v in sys.modules.items() if v is not None and m.split(".")[0] == "tensorflow")
        print(json.dumps({{"type": type(net).__name__, "shape": list(estimate.keypoints.shape), "tf": loaded}}))
    """)
    env = {**os.environ, "LIVEPOSE_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"type": "LiteNet", "shape": [1, JOINTS, 2], "tf": []}
