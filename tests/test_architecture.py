"""The layout keeps its promises: one transport boundary, no import cycles, no reaching in.

These read the source with :mod:`ast`, so they hold for every module, including ones
no other test imports.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._paths import ROOT

SRC = ROOT / "src" / "yunhu_stream"
PACKAGE = "yunhu_stream"

# Servers (not clients) may use aiohttp however they like.
SERVER_MODULES = ("emulator", "testing.fake_llm", "app._webhook", "app._botapp")
CLIENT_CALLS = {"request", "post", "put", "patch", "delete", "ws_connect"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(*roots: Path) -> Iterator[tuple[Path, ast.Module]]:
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def runtime_imports(path: Path, tree: ast.Module) -> set[str]:
    """Modules of this package imported at module level (``if TYPE_CHECKING:`` left out)."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith(PACKAGE))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith(PACKAGE):
                    continue
                for alias in node.names:  # `from . import errors` imports a module
                    candidate = f"{target}.{alias.name}"
                    found.add(candidate if _exists(candidate) else target)

    visit(tree.body)
    return found


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (SRC / rel).with_suffix(".py").exists() or (SRC / rel / "__init__.py").exists()


class TestImports:
    def test_no_import_cycle_in_the_package(self) -> None:
        """No module imports, at load time, a module that imports it back (directly or not)."""
        graph = {module_name(p): runtime_imports(p, t) for p, t in source_files(SRC)}
        # Importing a submodule runs its packages' __init__ first; that is not a cycle.
        for name, deps in graph.items():
            graph[name] = {d for d in deps if not name.startswith(d + ".")}
        seen: dict[str, int] = {}  # 1 = on the current path, 2 = finished

        def walk(node: str, path: list[str]) -> None:
            seen[node] = 1
            for dep in sorted(graph.get(node, ())):
                if seen.get(dep) == 1:
                    cycle = [*path[path.index(dep):], dep]
                    pytest.fail("import cycle: " + " -> ".join(cycle))
                if dep not in seen:
                    walk(dep, [*path, dep])
            seen[node] = 2

        for module in sorted(graph):
            if module not in seen:
                walk(module, [module])

    def test_importing_the_package_loads_only_the_core(self) -> None:
        """`import yunhu_stream` loads neither the SSE parser, the events, the apps nor the CLI."""
        code = (
            "import sys, yunhu_stream; "
            "print(sorted(m for m in sys.modules if m.startswith('yunhu_stream.')))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, timeout=60).stdout
        loaded = [m.strip(" '") for m in out.strip().strip("[]").split(",")]
        heavy = ("sse", "llm", "events", "app", "cli", "emulator", "testing", "integrations",
                 "wschat")
        assert not [m for m in loaded if m.split(".")[1] in heavy]


class TestBoundaries:
    def test_client_requests_go_through_the_transport_module(self) -> None:
        """Only _transport.py calls aiohttp's client request methods (servers aside)."""
        offenders = []
        for path, tree in source_files(SRC):
            name = module_name(path).removeprefix(PACKAGE + ".")
            if name == "_transport" or name.startswith(SERVER_MODULES):
                continue
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in CLIENT_CALLS
                    and not ast.unparse(node.func.value).endswith("transport")
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        assert offenders == []

    @pytest.mark.parametrize("root", ["src", "tests", "examples", "bench"])
    def test_no_private_attribute_of_another_object_is_read(self, root: str) -> None:
        """`x._name` appears only as self._name / cls._name: no module reaches into another."""
        offenders = []
        for path, tree in source_files(ROOT / root):
            for node in ast.walk(tree):
                if not (
                    isinstance(node, ast.Attribute)
                    and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                ):
                    continue
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                if isinstance(owner, ast.Call) and ast.unparse(owner.func) == "super":
                    continue
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
        assert offenders == []
