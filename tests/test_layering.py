"""The import map stays a forward one: no module imports inside a function except where Django
expects it (``AppConfig.ready``, tasks, management commands), no import cycle between the
project's modules, and provider adapters import no app."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "customers", "credentials", "devtools", "integrations", "webhooks")
APPS = ("customers", "credentials", "webhooks")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _function_imports_allowed(path: Path, function: str) -> bool:
    return (
        path.name == "tasks.py"
        or "commands" in path.parts
        or (path.name == "apps.py" and function == "ready")
    )


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _module_level_imports(module: str, tree: ast.Module) -> set[str]:
    """Project modules imported when ``module`` is (TYPE_CHECKING blocks excluded)."""
    imported = set()
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or _type_checking_block(node):
            continue
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
        else:
            stack.extend(ast.iter_child_nodes(node))
    # A submodule import runs its packages' __init__ too, except the importer's own packages,
    # which are already being imported.
    closed = set()
    for name in imported:
        parts = name.split(".")
        closed.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    own = module.split(".")
    own_packages = {".".join(own[:i]) for i in range(1, len(own) + 1)}
    return {name for name in closed if name in MODULES and name not in own_packages}


def test_imports_inside_functions_only_where_django_expects_them():
    found = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if _function_imports_allowed(path, node.name):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    found.append(f"{module}:{inner.lineno} in {node.name}()")
    assert not found, "move these imports to module level:\n" + "\n".join(sorted(found))


def _cycle_from(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, if there is any (depth-first search with a path stack)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_between_project_modules():
    graph = {
        module: _module_level_imports(module, ast.parse(path.read_text()))
        for module, path in MODULES.items()
    }
    cycle = _cycle_from(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle_from({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle_from({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if m.startswith("integrations.providers."))
)
def test_provider_adapters_import_no_app_and_no_model(module):
    imports = _module_level_imports(module, ast.parse(MODULES[module].read_text()))
    reaching = {
        name
        for name in imports
        if name.split(".")[0] in APPS or name.startswith("integrations.models")
    }
    assert not reaching, f"{module} imports {sorted(reaching)}"
