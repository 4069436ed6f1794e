"""The house drawn from the imports: no import circle among the project's modules (lazy
imports inside functions and package `__init__` -> submodule edges count), and no Beam
in the media core (`media/` is plain Python that any runner, or none, can call)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("media", "transforms", "pipeline")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    return {_module_name(path): path for package in PACKAGES
            for path in sorted((ROOT / package).rglob("*.py"))}


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The dotted names an import statement names: `import a.b` a.b; `from p import m, n`
    p, p.m and p.n (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: from the module's package, up level - 1 more
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([base] if base else [])])
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def imports_of(source: str, name: str, is_package: bool, modules) -> set[str]:
    """The project modules that module `name` (its text `source`) imports, wherever in it
    the import is (inside a function too)."""
    targets: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            loaded = _imported(node, name, is_package)
            if isinstance(node, ast.ImportFrom):
                # `from p import m`: the submodule p.m where m is one, else p itself
                base, *names = loaded
                loaded = [n if n in modules else base for n in names]
            targets.update(n for n in loaded if n in modules and n != name)
    return targets


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    modules = project_modules()
    return {name: imports_of(path.read_text(encoding="utf-8"), name,
                             path.name == "__init__.py", modules)
            for name, path in modules.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm):
    each holds at least one import circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_lazy_and_package_imports():
    modules = {"pkg", "pkg.a", "pkg.b", "pkg.c", "other"}
    source = ("from pkg import b, NAME\n"
              "from . import c\n"
              "def later():\n"
              "    import other\n")
    assert imports_of(source, "pkg.a", False, modules) == {"pkg", "pkg.b", "pkg.c", "other"}
    assert imports_of("from pkg.a import x", "pkg", True, modules) == {"pkg.a"}
    assert "media.inspect.demux" in import_graph()["media.inspect"]  # __init__ -> submodule
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_among_the_projects_modules():
    assert import_cycles(import_graph()) == []


def test_beam_stays_out_of_media():
    offenders = []
    for name, path in project_modules().items():
        if not name.startswith("media"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""])
                offenders += [f"{name}: {n}" for n in names
                              if n == "apache_beam" or n.startswith("apache_beam.")]
    assert offenders == []
