"""The layers of the code base: imports only go down.

    dags/ -> osmf_app/ (CLI, Airflow tasks, local Airflow, demo) -> jobs/ -> osmf/ (core) -> osmf_models/ (pure torch)

Every import in every module counts, including the ones inside functions. Also checked: plotting
lives in ``osmf/plots.py`` alone, ``osmf_models`` never imports the world's code, and no function
outside the tests is longer than 80 lines; only the world generator and the evaluation import the
world's code (the pipeline knows only the lake). Each checker is first shown to catch a planted breach,
so these tests can fail."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"dags": 4, "osmf_app": 3, "jobs": 2, "osmf": 1, "osmf_models": 0}
MAX_FUNCTION_LINES = 80


def _modules(root: Path, folders=tuple(LAYERS)):
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            yield folder, path


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def upward_imports(root: Path) -> list[str]:
    bad = []
    for folder, path in _modules(root):
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in LAYERS and LAYERS[top] > LAYERS[folder]:
                bad.append(f"{path.relative_to(root)}:{line} ({folder}) imports {module} ({top})")
    return bad


def misplaced_imports(root: Path) -> list[str]:
    """matplotlib outside osmf/plots.py; the world's code inside osmf_models."""
    bad = []
    for folder, path in _modules(root):
        rel = path.relative_to(root).as_posix()
        for line, module in _imports(path):
            if module.split(".")[0] == "matplotlib" and rel != "osmf/plots.py":
                bad.append(f"{rel}:{line} imports matplotlib (plots live in osmf/plots.py)")
            if folder == "osmf_models" and module.startswith("osmf.world"):
                bad.append(f"{rel}:{line} imports {module} (models never see the world's code)")
    return bad


# the world's code and truth belong to the generator and the evaluation alone
WORLD_READERS = ("osmf/world/", "osmf/evaluate_ab.py", "osmf/evaluate_grouping.py",
                 "osmf_app/cli.py", "osmf_app/demo.py", "osmf_app/evaluation.py")


def world_readers(root: Path) -> list[str]:
    """Modules outside WORLD_READERS that import ``osmf.world`` or open the truth directory."""
    bad = []
    for _, path in _modules(root):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(WORLD_READERS):
            continue
        for line, module in _imports(path):
            if module == "osmf.world" or module.startswith("osmf.world."):
                bad.append(f"{rel}:{line} imports {module}")
        if rel == "osmf/settings.py":
            continue
        if "truth_root" in path.read_text():
            bad.append(f"{rel} reads settings.truth_root")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                    node.value == "truth" or node.value.startswith("truth/")):
                bad.append(f"{rel}:{node.lineno} names the truth directory")
    return bad


def long_functions(root: Path, folders=(*LAYERS, "bench")) -> list[str]:
    bad = []
    for _, path in _modules(root, folders):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    bad.append(f"{path.relative_to(root)}:{node.lineno} {node.name} is {n} lines")
    return bad


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    for folder in (*LAYERS, "bench"):
        (tmp_path / folder).mkdir(exist_ok=True)
    return tmp_path


def test_the_checkers_catch_planted_breaches(tmp_path):
    root = _plant(tmp_path, {
        "osmf/core.py": "def f():\n    from jobs import ingest_events\n",  # core -> job, inside a function
        "osmf_models/m.py": "import osmf.world.styles\nimport matplotlib.pyplot as plt\n",
        "jobs/j.py": "def g():\n" + "    x = 1\n" * MAX_FUNCTION_LINES,
        "dags/d.py": "from osmf_app import chain\nimport jobs\n",  # downward: fine
    })
    up = upward_imports(root)
    assert any("osmf/core.py:2" in b and "jobs" in b for b in up)
    assert any("osmf_models/m.py:1" in b for b in up)
    assert not any(b.startswith("dags/") for b in up)
    mis = misplaced_imports(root)
    assert any("matplotlib" in b for b in mis) and any("osmf.world" in b for b in mis)
    assert long_functions(root) == [f"jobs/j.py:1 g is {MAX_FUNCTION_LINES + 1} lines"]
    root2 = _plant(tmp_path / "w", {"jobs/k.py": "from osmf.world.styles import STYLES\n",
                                    "osmf/evaluate_ab.py": "from osmf.world import Simulator\n",
                                    "osmf/x.py": "def f(s):\n    return s.truth_root\n",
                                    "osmf/y.py": "def g(home):\n    return home / 'truth' / 'segments.parquet'\n"})
    assert sorted(world_readers(root2)) == ["jobs/k.py:1 imports osmf.world.styles", "osmf/x.py reads settings.truth_root",
                                            "osmf/y.py:2 names the truth directory"]


def test_imports_only_go_down():
    assert upward_imports(ROOT) == []


def test_plots_in_one_place_and_models_without_the_world():
    assert misplaced_imports(ROOT) == []


def test_only_the_generator_and_the_evaluation_see_the_world():
    assert world_readers(ROOT) == []


def test_no_function_over_80_lines():
    assert long_functions(ROOT) == []
