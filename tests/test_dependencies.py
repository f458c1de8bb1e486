"""The default install runs the main job: every third-party module that `pvq compare`'s code can import is
a default dependency in pyproject.toml, or an optional feature's, imported lazily and declared in an extra.

The code path is found statically: from the compare command, the compare package and the report writer,
follow every ``pvq`` import (module level and inside functions) through the source tree, and collect the
top-level names of the other modules they import.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
ENTRY = ("pvq.cli._compare", "pvq.compare", "pvq.report")
# import name -> distribution name where they differ
DIST = {"PIL": "pillow", "sklearn": "scikit-learn", "yaml": "pyyaml", "compressed_tensors": "compressed-tensors", "torch_pruning": "torch-pruning"}
# features `pvq compare` reaches only on request, each behind a lazy import with a clean error when missing:
# the SDP bound, a Ray cluster (--ray-address), GGUF/ONNX/Hugging Face model files, reading back a saved
# compressed-tensors checkpoint, the deployment runtimes (pvq deploy / compare --deploy: onnxruntime,
# torch-pruning, torchao)
OPTIONAL = {
    "cvxpy", "ray", "gguf", "onnx", "transformers", "tokenizers", "compressed_tensors",
    "onnxruntime", "torch_pruning", "torchao",
}  # fmt: skip


def _file(mod: str) -> Path | None:
    base = SRC.joinpath(*mod.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def _imports(path: Path, mod: str) -> list[tuple[str, bool]]:
    """(absolute module name, at module level?) of every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body} | {
        id(c) for n in tree.body if isinstance(n, (ast.If, ast.Try)) for c in ast.walk(n)
    }
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            out.append((name, id(node) in top))
            out += [(f"{name}.{a.name}", id(node) in top) for a in node.names]  # maybe submodules
    return out


def compare_path_imports() -> dict[str, set[str]]:
    """Third-party top-level module -> the pvq modules that import it (``!`` marks a module-level import)."""
    seen: set[str] = set()
    todo = list(ENTRY)
    found: dict[str, set[str]] = {}
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        path = _file(mod)
        if path is None:
            continue
        parts = mod.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run first
        if path.name == "__init__.py":
            todo += [f"{mod}.{p.stem}" for p in path.parent.glob("*.py") if p.stem != "__init__"]
        for name, at_top in _imports(path, mod):
            head = name.split(".")[0]
            if head == "pvq":
                todo.append(name)
            elif head and head != "__future__" and head not in sys.stdlib_module_names:
                found.setdefault(head, set()).add(mod + ("!" if at_top else ""))
    return found


def _names(reqs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r.strip(), maxsplit=1)[0].lower().replace("_", "-") for r in reqs}


def _project() -> dict:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    if tomllib is not None:
        return tomllib.loads(text)["project"]
    import pytest

    pytest.skip("tomllib needs Python 3.11")


def test_compare_path_imports_are_declared_dependencies() -> None:
    project = _project()
    default = _names(project["dependencies"])
    extras = set().union(*(_names(v) for v in project["optional-dependencies"].values()))
    found = compare_path_imports()
    assert {"torch", "numpy", "matplotlib"} <= set(found)  # the scan sees the path
    missing = {
        m: sorted(users)
        for m, users in found.items()
        if m not in OPTIONAL and DIST.get(m, m).lower() not in default
    }
    assert not missing, f"imported on the pvq compare path but not default dependencies: {missing}"
    for m in OPTIONAL & set(found):
        assert DIST.get(m, m).lower() in extras, f"{m}: optional, but in no extra of pyproject.toml"
        eager = sorted(u for u in found[m] if u.endswith("!"))
        assert not eager, f"{m}: optional, but imported at module level by {eager}"
