"""The packages import each other in one direction only (parsed from the source, not imported).

Low to high: functional, layers, models, data, measure, report, tasks, engine, bench, commands, cli.
Low packages (functional, layers, models, data) import nothing from tasks, engine, report or commands;
no two packages import each other; nothing imports the CLI. Inside tasks/, each task is a folder: the engine and
the commands import none of them, and no task folder imports another.
"""

import ast
from pathlib import Path

SRC = Path(__file__).parents[1] / "src" / "attnlab"
LOW = {"functional", "layers", "models", "data"}
HIGH = {"tasks", "engine", "report", "commands", "bench", "cli"}


def unit(path: Path) -> str:
    """The package (or top-level module) a file belongs to: layers, engine, cli, …"""
    rel = path.relative_to(SRC).with_suffix("")
    return rel.parts[0]


def imported_units(path: Path) -> set[str]:
    """attnlab units ``path`` imports (absolute ``attnlab.x`` or relative ``..x`` imports)."""
    tree = ast.parse(path.read_text())
    depth_of_file = len(path.relative_to(SRC).parts) - 1  # 0 for top-level modules
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("attnlab.")]
            found |= {n.split(".")[1] for n in names}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.startswith("attnlab."):
                found.add(node.module.split(".")[1])
            elif node.level > depth_of_file and node.level >= 1:
                # ".." from inside a package, "." from a top-level module: relative to attnlab/
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found |= {a.name for a in node.names}
    return found - {unit(path)}


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        if path.name == "__main__.py" or path.relative_to(SRC).parts[0] == "__init__.py":
            continue  # the entry points may import anything
        edges.setdefault(unit(path), set()).update(imported_units(path))
    return edges


def test_the_parser_sees_imports():
    edges = graph()
    assert "layers" in edges["models"] and "engine" in edges["commands"] and "tasks" in edges["engine"]


def test_low_packages_import_nothing_above_them():
    edges = graph()
    for low in LOW:
        assert not edges.get(low, set()) & HIGH, (low, edges[low] & HIGH)


def test_nothing_imports_the_cli():
    assert all("cli" not in deps for name, deps in graph().items())


def test_no_cycles_between_packages():
    edges = graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in edges.get(node, ()):
            assert state.get(dep) != 1, "import cycle: " + " -> ".join([*path, node, dep])
            if dep not in state:
                visit(dep, [*path, node])
        state[node] = 2

    for node in edges:
        if node not in state:
            visit(node, [])


TASKS_DIR = SRC / "tasks"
TASK_FOLDERS = {p.name for p in TASKS_DIR.iterdir() if (p / "__init__.py").is_file()}


def imported_modules(path: Path) -> set[str]:
    """Dotted attnlab module names ``path`` imports (``attnlab.tasks.segment.data``), relative ones resolved."""
    tree = ast.parse(path.read_text())
    package = ["attnlab", *path.relative_to(SRC).parent.parts]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("attnlab.")}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names}  # `from . import segment` names a module too
    return found


def task_folders_imported(path: Path) -> set[str]:
    return {
        m.split(".")[2] for m in imported_modules(path) if m.startswith("attnlab.tasks.") and len(m.split(".")) > 2
    } & TASK_FOLDERS


def test_the_task_folders_are_found():
    assert {"classify", "segment", "text", "video"} <= TASK_FOLDERS
    assert task_folders_imported(TASKS_DIR / "__init__.py") >= {"classify", "segment", "text", "video"}


def test_engine_and_commands_import_no_concrete_task():
    for room in ("engine", "commands"):
        for path in (SRC / room).rglob("*.py"):
            assert not task_folders_imported(path), (path, task_folders_imported(path))


def test_no_task_folder_imports_another():
    for folder in TASK_FOLDERS:
        for path in (TASKS_DIR / folder).rglob("*.py"):
            others = task_folders_imported(path) - {folder}
            assert not others, f"{path.relative_to(SRC)} imports the task folders {sorted(others)}"
