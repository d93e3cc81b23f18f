"""The package's layers: every drift module imports only from its own layer or the layers below, with no import
cycle, and README's Layout section names every module (and no module that is gone).

Run: pytest tests/test_layers.py
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "drift"

# Lowest first. The top-level modules (config, model, paper, alloc, bootstrap, jobs) are the base; a sub-package
# may import from its own rank and below, never above.
LAYERS = ["", "geometry", "run", "data", "train", "analysis", "nulls", "report", "studies", "inspect"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str:
    """"drift.run.checkpoint" -> "run"; top-level modules ("drift.config") and the package itself -> ""."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else ""


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The drift modules `module` imports, anywhere in the file (function-level imports included)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "drift")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "drift":
                continue
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add(full if full in known else target)
    return {m for m in found if m != module}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: imports_of(m, p, known) for m, p in known.items()}


def test_every_subpackage_has_a_layer():
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert subpackages == set(LAYERS) - {""}, "give each sub-package of drift/ a rank in LAYERS"


def test_imports_point_down_the_layers():
    upward = []
    for module, deps in graph().items():
        rank = LAYERS.index(layer_of(module))
        for dep in sorted(deps):
            if LAYERS.index(layer_of(dep)) > rank:
                upward.append(f"{module} -> {dep}")
    assert not upward, "imports pointing up a layer:\n" + "\n".join(upward)


def test_no_import_cycle():
    g = graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for dep in sorted(g.get(m, ())):
            if dep not in g:
                continue
            if state.get(dep) == 1:
                cycles.append(" -> ".join(path[path.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, path + [dep])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_walker_sees_relative_and_function_level_imports(tmp_path):
    pkg = tmp_path / "drift" / "analysis"
    pkg.mkdir(parents=True)
    (pkg / "x.py").write_text("from . import y\ndef f():\n    from drift.report import tables\n")
    known = {"drift.analysis.y": None, "drift.report.tables": None}
    assert imports_of("drift.analysis.x", pkg / "x.py", known) == {"drift.analysis.y", "drift.report.tables"}


def readme_layout_modules() -> set[str]:
    """"pkg/name.py" (or "name.py" at the top) for every module line of the drift/ tree in README's Layout: one
    module per line, its file name first; a sub-package is a line "  name/" two spaces in."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    named, package, in_drift = set(), "", False
    for line in section.splitlines():
        if line.startswith("drift/"):
            in_drift = True
            continue
        if not in_drift or not line.strip():
            continue
        if not line.startswith(" "):
            break  # the next entry beside drift/ (tests/, bench/, ...)
        indent, token = len(line) - len(line.lstrip()), line.split()[0]
        if indent == 2:
            package = token[:-1] if token.endswith("/") else ""
        if token.endswith(".py") and token != "__init__.py":
            named.add(f"{package}/{token}" if package else token)
    return named


def test_readme_layout_names_every_module():
    actual = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}
    named = readme_layout_modules()
    assert not actual - named, f"modules missing from README's Layout: {sorted(actual - named)}"
    assert not named - actual, f"README's Layout names modules that do not exist: {sorted(named - actual)}"
