"""The layers of the code base and the rules of the house (DESIGN.md §5b; the map of issue 17).

    dags/ -> osmf_app/ (CLI, Airflow tasks, local Airflow, demo) -> jobs/ -> osmf/ (core) -> osmf_models/ (pure torch)

Each rule is a pure function that returns the breaches it finds:

* ``upward_imports``: no import goes up a layer.
* ``osmf_subpackage_imports``: ``osmf/`` holds sub-packages only, and each imports only the sub-packages
  the map allows (``OSMF_MAY_IMPORT``).
* ``job_imports``: no job imports another job.
* ``string_dispatch``: the app, the DAGs and the jobs import no module by name, and the chain, the Airflow
  tasks and the CLI call no ``getattr(x, name)`` with a computed name (the chain names its jobs).
* ``world_readers``: only ``osmf/world``, ``osmf/evaluation`` and the functions of ``WORLD_FUNCTIONS``
  touch the world's code, its truth directory or its manifest (``unused_world_exemptions`` keeps that
  list short).
* ``misplaced_imports``: matplotlib in ``osmf/reports/plots.py`` alone; ``osmf_models`` never imports the
  world's code.
* ``long_definitions``: no function over 80 lines and no class over 200 lines outside the tests.
* ``heavy_imports``: importing ``osmf_app.chain`` (DAG files do, while parsing) imports no heavy library.

Every import counts, wherever it is (inside functions too): ``import a.b``; ``from a.b import c``, read as
``a.b.c`` (so ``from osmf import world`` imports ``osmf.world``); relative imports, resolved against the
file's package; ``importlib.import_module(...)`` and ``__import__(...)`` of a string literal, or of an
f-string (or ``"..." + name``) whose constant prefix names a module (``f"jobs.{name}"`` imports ``jobs``).
Each checker is first shown to catch planted breaches and to pass legitimate code, so these tests can fail.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"dags": 4, "osmf_app": 3, "jobs": 2, "osmf": 1, "osmf_models": 0}
CODE = (*LAYERS, "bench")  # every folder of code outside tests/
MAX_FUNCTION_LINES = 80
MAX_CLASS_LINES = 200

# What each osmf sub-package may import inside osmf, besides itself (the map of issue 17). Every one may
# import osmf_models, except those of NEVER_OSMF_MODELS.
OSMF_MAY_IMPORT = {
    "config": (),
    "lake": ("config",),
    "runtime": ("config", "lake"),
    "tracking": ("config", "lake"),
    "reports": (),
    "data": ("config", "lake"),
    "ingest": ("config", "lake"),
    "quality": ("config", "lake", "ingest"),
    "grouping": ("config", "lake", "data"),
    "generation": ("config", "lake", "data"),
    "evaluation": ("config", "lake", "data", "tracking", "reports", "grouping", "generation", "world"),
    "world": ("config",),
}
NEVER_OSMF_MODELS = ("world",)
# packages of data files, not code (read with importlib.resources): they import nothing
OSMF_DATA_PACKAGES = {"presets": ()}

# The dispatch of work by name: no module imported by name in these folders, and no getattr(x, name)
# with a computed name in these files.
NO_IMPORT_BY_NAME = ("osmf_app", "dags", "jobs")
NO_GETATTR_BY_NAME = ("osmf_app/chain.py", "osmf_app/airflow_tasks.py", "osmf_app/cli.py")

# The world's code, its truth directory and its manifest belong to the world, the evaluation and these
# functions alone ("path::function", a method as "path::Class.method"; what is nested in one is exempt too).
WORLD_PACKAGES = ("osmf/world/", "osmf/evaluation/")
WORLD_FUNCTIONS = frozenset({
    "osmf_app/evaluation.py::ab_on_new_world",  # an A/B test on a freshly generated world
    "osmf_app/demo.py::run_demo",  # generates the world the demo runs on
    "osmf_app/cli.py::cmd_world_generate",
    "osmf_app/cli.py::cmd_world_show",
    "osmf_app/cli.py::cmd_evaluate_ab",
    "osmf_app/cli.py::_world_config",  # the WorldConfig of --preset/--config
    "osmf_app/cli.py::main",  # imports WorldConfigError, to display it
    "osmf/config/settings.py::Settings.truth_root",  # the settings own every path of the state layout
    "osmf/config/settings.py::Settings.world_manifest",
})
WORLD_CHECKED = tuple(LAYERS)  # bench/ generates the worlds it measures: not checked
WORLD_ATTRIBUTES = ("truth_root", "world_manifest")

PLOTS = "osmf/reports/plots.py"  # the only matplotlib user
HEAVY_AT_DAG_PARSE = ("pandas", "pyspark", "torch", "mlflow", "deltalake")


# ---- reading the code ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    rel: str  # the path under the root, with /
    folder: str  # the top folder: its layer
    package: str  # the dotted package the module lives in (relative imports are resolved against it)
    tree: ast.Module


@dataclass(frozen=True)
class Import:
    line: int
    module: str | None  # absolute and dotted; None: imported by a name known only when it runs
    scope: tuple[str, ...]  # the functions and classes around the import, outermost first
    by_name: str | None = None  # "import_module" or "__import__" for an import by name


def _sources(root: Path, folders=tuple(LAYERS)) -> Iterator[Source]:
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root)
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            yield Source(rel.as_posix(), folder, ".".join(rel.parent.parts), tree)


def _scoped(tree: ast.AST) -> Iterator[tuple[ast.AST, tuple[str, ...]]]:
    """Every node, in source order, with the names of the functions and classes around it."""
    todo = [(tree, ())]
    while todo:
        node, scope = todo.pop()
        yield node, scope
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            scope = (*scope, node.name)
        todo.extend((child, scope) for child in reversed(list(ast.iter_child_nodes(node))))


def _where(scope: tuple[str, ...]) -> str:
    return ".".join(scope) or "<module>"


def _absolute(module: str | None, level: int, package: str) -> str | None:
    """The absolute name of ``from <level dots><module> import ...`` in ``package``; None past the top."""
    if level == 0:
        return module
    parts = package.split(".") if package else []
    if level - 1 >= len(parts):
        return None
    base = ".".join(parts[: len(parts) - (level - 1)])
    return f"{base}.{module}" if module else base


def _constant_prefix(node: ast.AST) -> str | None:
    """The constant start of an f-string or of ``"..." + name``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and _is_str(node.values[0]):
        return "".join(v.value for v in node.values) if all(_is_str(v) for v in node.values) else node.values[0].value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _constant_prefix(node.left)
    return None


def _named_module(call: ast.Call, package: str) -> str | None:
    """The module an ``import_module``/``__import__`` call names, as far as its text tells."""
    if not call.args:
        return None
    arg = call.args[0]
    complete = _is_str(arg) or (isinstance(arg, ast.JoinedStr) and all(_is_str(v) for v in arg.values))
    name = _constant_prefix(arg)
    if name is None:
        return None
    if not complete:  # keep the whole dotted parts only: f"jobs.{x}" -> "jobs", f"job{x}" -> nothing
        if "." not in name.lstrip("."):
            name = name[: len(name) - len(name.lstrip("."))]  # f".{x}" -> "." (the package itself)
        else:
            name = name.rsplit(".", 1)[0]
    level = len(name) - len(name.lstrip("."))
    if level == 0:
        return name or None
    anchor = call.args[1] if len(call.args) > 1 else None
    if isinstance(anchor, ast.Constant) and isinstance(anchor.value, str):
        package = anchor.value
    return _absolute(name[level:] or None, level, package)


def _imports(src: Source) -> list[Import]:
    by_name = {"import_module", "__import__"}  # plus the local names of `from importlib import import_module as x`
    for node in ast.walk(src.tree):
        if isinstance(node, ast.ImportFrom) and node.module == "importlib" and node.level == 0:
            by_name |= {a.asname for a in node.names if a.name == "import_module" and a.asname}
    out = []
    for node, scope in _scoped(src.tree):
        if isinstance(node, ast.Import):
            out += [Import(node.lineno, a.name, scope) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, src.package)
            if base is not None:
                out += [Import(node.lineno, base if a.name == "*" else f"{base}.{a.name}", scope) for a in node.names]
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in ("import_module", "__import__"):
                how = f.attr
            elif isinstance(f, ast.Name) and f.id in by_name:
                how = "__import__" if f.id == "__import__" else "import_module"
            else:
                continue
            out.append(Import(node.lineno, _named_module(node, src.package), scope, how))
    return out


def _is_world(module: str | None) -> bool:
    return module is not None and (module == "osmf.world" or module.startswith("osmf.world."))


def _top(module: str | None) -> str:
    return (module or "").split(".")[0]


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


# ---- the rules -------------------------------------------------------------------------------------
def upward_imports(root: Path) -> list[str]:
    bad = []
    for src in _sources(root):
        for imp in _imports(src):
            top = _top(imp.module)
            if top in LAYERS and LAYERS[top] > LAYERS[src.folder]:
                bad.append(f"{src.rel}:{imp.line} ({src.folder}) imports {imp.module} ({top})")
    return bad


def _init_names(root: Path) -> set[str]:
    """The names ``osmf/__init__.py`` binds (``from osmf import __version__`` imports no sub-package)."""
    init = root / "osmf" / "__init__.py"
    if not init.exists():
        return set()
    names = set()
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def osmf_subpackage_imports(root: Path) -> list[str]:
    """Modules directly under osmf/, packages not on the map, and imports the map does not allow."""
    rules = {**OSMF_MAY_IMPORT, **OSMF_DATA_PACKAGES}
    init_names = _init_names(root) - set(rules)
    bad, unknown = [], set()
    for src in _sources(root, ("osmf",)):
        parts = src.rel.split("/")
        sub = parts[1] if len(parts) > 2 else None  # None: osmf/__init__.py, which imports no sub-package
        if sub is None and parts[1] != "__init__.py":
            bad.append(f"{src.rel} is a module directly under osmf/ (osmf/ holds sub-packages only)")
            continue
        if sub is not None and sub not in rules:
            if sub not in unknown:
                unknown.add(sub)
                bad.append(f"osmf/{sub}/ is not a sub-package of the map")
            continue
        for imp in _imports(src):
            names = (imp.module or "").split(".")
            if names[0] == "osmf_models" and sub in NEVER_OSMF_MODELS:
                bad.append(f"{src.rel}:{imp.line} imports {imp.module} (osmf/{sub} never imports osmf_models)")
            if names[0] != "osmf" or len(names) < 2 or names[1] == sub or names[1] in init_names:
                continue
            other = names[1]
            if other not in rules:
                bad.append(f"{src.rel}:{imp.line} imports {imp.module} (osmf/{other} is not a sub-package of the map)")
            elif sub is None:
                bad.append(f"{src.rel}:{imp.line} imports {imp.module} (osmf/__init__.py imports no sub-package)")
            elif other not in rules[sub]:
                may = ", ".join(rules[sub]) or "nothing in osmf"
                bad.append(f"{src.rel}:{imp.line} imports {imp.module} (osmf/{sub} may import: {may})")
    return bad


def job_imports(root: Path) -> list[str]:
    """A module jobs/X.py that imports jobs.Y, Y != X (jobs/__init__.py, run by every job's import, included)."""
    bad = []
    for src in _sources(root, ("jobs",)):
        me = src.rel.split("/")[1].removesuffix(".py")
        for imp in _imports(src):
            names = (imp.module or "").split(".")
            if names[0] == "jobs" and len(names) > 1 and names[1] != me:
                bad.append(f"{src.rel}:{imp.line} imports {imp.module} (a job imports no other job)")
    return bad


def string_dispatch(root: Path) -> list[str]:
    """Imports by name in NO_IMPORT_BY_NAME; getattr with a computed name in NO_GETATTR_BY_NAME."""
    bad = []
    for src in _sources(root, NO_IMPORT_BY_NAME):
        for imp in _imports(src):
            if imp.by_name:
                what = imp.module or "a name known when it runs"
                bad.append(f"{src.rel}:{imp.line} in {_where(imp.scope)}: {imp.by_name}() imports {what} by name")
        if src.rel not in NO_GETATTR_BY_NAME:
            continue
        for node, scope in _scoped(src.tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                    and len(node.args) >= 2 and not _is_str(node.args[1])):
                bad.append(f"{src.rel}:{node.lineno} in {_where(scope)}: getattr() with a computed name "
                           f"({ast.unparse(node.args[1])})")
    return bad


def _world_touch(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and node.attr in WORLD_ATTRIBUTES:
        return f"reads .{node.attr}"
    if _is_str(node):
        v = node.value
        if v == "truth" or v.startswith("truth/"):
            return f"names the truth directory ({v!r})"
        if v == "manifest.json" or v.endswith("/manifest.json"):
            return f"names the world's manifest ({v!r})"
        if v in WORLD_ATTRIBUTES:
            return f"names {v!r}"
    if isinstance(node, ast.Call):
        f = node.func
        if (isinstance(f, ast.Name) and f.id == "read_manifest") or (
                isinstance(f, ast.Attribute) and f.attr == "read_manifest"):
            return "calls read_manifest"
    return None


def _world_touches(root: Path) -> Iterator[tuple[str, int, tuple[str, ...], str]]:
    """(path, line, scope, what) of every touch of the world outside WORLD_PACKAGES."""
    for src in _sources(root, WORLD_CHECKED):
        if src.rel.startswith(WORLD_PACKAGES):
            continue
        found = [(imp.line, imp.scope, f"imports {imp.module}") for imp in _imports(src)
                 if _is_world(imp.module)]
        found += [(node.lineno, scope, what) for node, scope in _scoped(src.tree) if (what := _world_touch(node))]
        for line, scope, what in sorted(found, key=lambda f: f[0]):
            yield src.rel, line, scope, what


def _exemption(rel: str, scope: tuple[str, ...], allowed) -> str | None:
    for i in range(1, len(scope) + 1):
        key = f"{rel}::{'.'.join(scope[:i])}"
        if key in allowed:
            return key
    return None


def world_readers(root: Path, allowed=WORLD_FUNCTIONS) -> list[str]:
    return [f"{rel}:{line} in {_where(scope)}: {what}" for rel, line, scope, what in _world_touches(root)
            if _exemption(rel, scope, allowed) is None]


def unused_world_exemptions(root: Path, allowed=WORLD_FUNCTIONS) -> list[str]:
    """Entries of the allow-list that exempt nothing (the function is gone, or no longer needs it)."""
    used = {_exemption(rel, scope, allowed) for rel, _, scope, _ in _world_touches(root)}
    return sorted(set(allowed) - used)


def misplaced_imports(root: Path) -> list[str]:
    """matplotlib outside PLOTS; the world's code inside osmf_models."""
    bad = []
    for src in _sources(root, CODE):
        for imp in _imports(src):
            if _top(imp.module) == "matplotlib" and src.rel != PLOTS:
                bad.append(f"{src.rel}:{imp.line} imports {imp.module} (plots live in {PLOTS})")
            if src.folder == "osmf_models" and _is_world(imp.module):
                bad.append(f"{src.rel}:{imp.line} imports {imp.module} (models never see the world's code)")
    return bad


def long_definitions(root: Path, folders=CODE) -> list[str]:
    bad = []
    for src in _sources(root, folders):
        for node in ast.walk(src.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                kind, limit = "function", MAX_FUNCTION_LINES
            elif isinstance(node, ast.ClassDef):
                kind, limit = "class", MAX_CLASS_LINES
            else:
                continue
            n = node.end_lineno - node.lineno + 1
            if n > limit:
                bad.append(f"{src.rel}:{node.lineno} {kind} {node.name} is {n} lines (at most {limit})")
    return bad


# below the app layer only the settings loader reads the environment; the rest gets Settings passed down
ENVIRONMENT_READERS = ("osmf/config/settings.py",)


def environment_reads(root: Path) -> list[str]:
    """``os.environ`` / ``os.getenv`` / ``os.putenv`` in jobs/, osmf/ and osmf_models/, outside the settings loader."""
    bad = []
    for src in _sources(root, ("jobs", "osmf", "osmf_models")):
        if src.rel in ENVIRONMENT_READERS:
            continue
        for node, scope in _scoped(src.tree):
            if (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv")
                    and isinstance(node.value, ast.Name) and node.value.id == "os"):
                bad.append(f"{src.rel}:{node.lineno} in {_where(scope)}: os.{node.attr} (take it from Settings)")
            elif isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                    a.name in ("environ", "getenv", "putenv") for a in node.names):
                bad.append(f"{src.rel}:{node.lineno} in {_where(scope)}: from os import (take it from Settings)")
    return bad


def heavy_imports(root: Path, module: str = "osmf_app.chain", heavy=HEAVY_AT_DAG_PARSE) -> list[str]:
    """The heavy libraries a fresh interpreter has imported once it has imported ``module``."""
    code = (f"import json, sys, {module}; heavy = set(sys.argv[1:]); "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & heavy)))")
    done = subprocess.run([sys.executable, "-c", code, *heavy], cwd=root, capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        return [f"import {module} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}"]
    return [f"import {module} imports {m}" for m in json.loads(done.stdout.strip().splitlines()[-1])]


# ---- the checkers catch planted breaches -----------------------------------------------------------
def _plant(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    for folder in CODE:
        (root / folder).mkdir(parents=True, exist_ok=True)
    return root


def test_every_import_form_is_read(tmp_path):
    root = _plant(tmp_path, {"osmf/lake/store.py": (
        "import a.b, c as d\n"  # 1
        "from e.f import g\n"  # 2
        "from osmf import world\n"  # 3
        "from . import tables\n"  # 4
        "from .tables import T\n"  # 5
        "from ..config import settings\n"  # 6
        "from ... import past_the_top\n"  # 7: not a module
        "import importlib\n"  # 8
        "from importlib import import_module as im\n"  # 9
        "def f(name):\n"  # 10
        "    importlib.import_module('jobs.ingest_events')\n"  # 11
        "    __import__('osmf_app')\n"  # 12
        "    im(f'dags.{name}')\n"  # 13
        "    importlib.import_module('jobs.' + name)\n"  # 14
        "    importlib.import_module(name)\n"  # 15
        "    importlib.import_module('.spark', 'osmf.lake')\n"  # 16
        "    importlib.import_module(f'jo{name}')\n"  # 17
        "    class C:\n"  # 18
        "        def m(self):\n"  # 19
        "            from .. import world\n"  # 20
    )})
    src = next(_sources(root, ("osmf",)))
    assert src.package == "osmf.lake"
    got = [(i.line, i.module, _where(i.scope), i.by_name) for i in _imports(src)]
    assert got == [
        (1, "a.b", "<module>", None), (1, "c", "<module>", None), (2, "e.f.g", "<module>", None),
        (3, "osmf.world", "<module>", None), (4, "osmf.lake.tables", "<module>", None),
        (5, "osmf.lake.tables.T", "<module>", None), (6, "osmf.config.settings", "<module>", None),
        (8, "importlib", "<module>", None), (9, "importlib.import_module", "<module>", None),
        (11, "jobs.ingest_events", "f", "import_module"), (12, "osmf_app", "f", "__import__"),
        (13, "dags", "f", "import_module"), (14, "jobs", "f", "import_module"), (15, None, "f", "import_module"),
        (16, "osmf.lake.spark", "f", "import_module"), (17, None, "f", "import_module"),
        (20, "osmf.world", "f.C.m", None)]


def test_the_layer_checker_catches_upward_imports(tmp_path):
    root = _plant(tmp_path, {
        "osmf/grouping/fit.py": "def f():\n    from jobs import ingest_events\n",  # core -> job, in a function
        "osmf_models/m.py": "import osmf.world.styles\n",
        "jobs/j.py": "import importlib\n\ndef g(x):\n    return importlib.import_module(f'osmf_app.{x}')\n",
        "dags/d.py": "from osmf_app import chain\nimport jobs\nimport osmf_models\n",  # downward: fine
        "osmf/lake/store.py": "import osmf_models.common\nfrom . import tables\n",  # fine
    })
    assert sorted(upward_imports(root)) == sorted([
        "jobs/j.py:4 (jobs) imports osmf_app (osmf_app)",
        "osmf/grouping/fit.py:2 (osmf) imports jobs.ingest_events (jobs)",
        "osmf_models/m.py:1 (osmf_models) imports osmf.world.styles (osmf)"])


def test_the_subpackage_checker_catches_what_the_map_forbids(tmp_path):
    root = _plant(tmp_path, {
        "osmf/__init__.py": "__version__ = '0'\n",
        "osmf/settings.py": "",  # a module directly under osmf/
        "osmf/presets/__init__.py": "",  # a data package
        "osmf/lake/__init__.py": "from .store import Lake\n",  # itself: fine
        "osmf/lake/store.py": "from osmf.config import settings\nfrom osmf import __version__\nimport numpy\n",
        "osmf/grouping/fit.py": "from osmf.lake import Lake\nfrom osmf.data import audience\n"
                                "def f():\n    from .. import tracking\n",  # tracking: not for grouping
        "osmf/world/generate.py": "from osmf.config.settings import Settings\nimport osmf_models\n",
        "osmf/evaluation/ab.py": "from osmf.world import Simulator\nfrom osmf.grouping import fit\nimport osmf_models\n",
        "osmf/data/audience.py": "from osmf import settings\n",  # the old top-level module
        "osmf/misc/x.py": "", "osmf/misc/y.py": "",  # not on the map (reported once)
        "osmf/reports/plots.py": "import matplotlib\n",
        "osmf/config/settings.py": "import importlib\nimportlib.import_module('osmf.lake')\n",  # config: nothing
    })
    assert sorted(osmf_subpackage_imports(root)) == sorted([
        "osmf/config/settings.py:2 imports osmf.lake (osmf/config may import: nothing in osmf)",
        "osmf/data/audience.py:1 imports osmf.settings (osmf/settings is not a sub-package of the map)",
        "osmf/grouping/fit.py:4 imports osmf.tracking (osmf/grouping may import: config, lake, data)",
        "osmf/misc/ is not a sub-package of the map",
        "osmf/settings.py is a module directly under osmf/ (osmf/ holds sub-packages only)",
        "osmf/world/generate.py:2 imports osmf_models (osmf/world never imports osmf_models)"])
    (root / "osmf/__init__.py").write_text("from osmf.lake import Lake\n")  # every sub-package's import runs it
    assert "osmf/__init__.py:1 imports osmf.lake.Lake (osmf/__init__.py imports no sub-package)" in \
        osmf_subpackage_imports(root)


def test_the_job_checker_catches_a_job_importing_another(tmp_path):
    root = _plant(tmp_path, {
        "jobs/__init__.py": "from jobs import a\n",
        "jobs/a.py": "from jobs import b\nfrom jobs.a import helper\ndef f():\n    from . import c\n",
        "jobs/b.py": "import jobs\nfrom osmf.lake import Lake\n",  # the package itself, the core: fine
        "osmf_app/chain.py": "from jobs import a, b\n",  # not a job: fine
    })
    assert sorted(job_imports(root)) == sorted([
        "jobs/__init__.py:1 imports jobs.a (a job imports no other job)",
        "jobs/a.py:1 imports jobs.b (a job imports no other job)",
        "jobs/a.py:4 imports jobs.c (a job imports no other job)"])


def test_the_dispatch_checker_catches_lookups_by_name(tmp_path):
    root = _plant(tmp_path, {
        "osmf_app/steps.py": "import importlib\ndef run(name):\n    return importlib.import_module(f'jobs.{name}')\n",
        "dags/d.py": "__import__('osmf_app.chain')\n",
        "jobs/j.py": "import importlib\n",  # imported, not called: fine
        "osmf/lake/delta_source.py": "import importlib\nimportlib.import_module(m)\n",  # the core: not checked
        "osmf_app/chain.py": "from osmf_app import steps\ndef run(name, ctx):\n    return getattr(steps, name)(ctx)\n"
                             "def conf(dr):\n    return getattr(dr, 'conf', None)\n",  # a literal name: fine
        "osmf_app/stack.py": "def port(cfg, key):\n    return getattr(cfg, key)\n",  # not a dispatching file
    })
    assert sorted(string_dispatch(root)) == sorted([
        "dags/d.py:1 in <module>: __import__() imports osmf_app.chain by name",
        "osmf_app/chain.py:3 in run: getattr() with a computed name (name)",
        "osmf_app/steps.py:3 in run: import_module() imports jobs by name"])


def test_the_world_checker_catches_readers_outside_the_allow_list(tmp_path):
    allowed = {"osmf_app/cli.py::cmd_world_show", "osmf_app/demo.py::run_demo",
               "osmf/config/settings.py::Settings.truth_root", "osmf_app/cli.py::cmd_gone"}
    root = _plant(tmp_path, {
        "osmf_app/cli.py": (
            "from osmf.world import WorldConfigError\n"  # 1: module level, not an allowed function
            "def cmd_world_show(args, s):\n"
            "    from osmf.world import read_manifest\n"
            "    return read_manifest(s.home)\n"  # 2-4: allowed
            "def cmd_settings(args, s):\n"
            "    return s.truth_root, getattr(s, 'world_manifest')\n"  # 6
            "def cmd_other(s):\n"
            "    def inner():\n"
            "        return s.home / 'world/manifest.json', s.home / 'truth'\n"  # 9
            "    return inner\n"
            "HELP = 'reads the truth'\n"),  # prose: fine
        "osmf_app/demo.py": "def run_demo(s):\n    def gen():\n        from osmf.world import generate_world\n",
        "jobs/k.py": "from osmf.world.styles import STYLES\nimport importlib\n"
                     "def f():\n    importlib.import_module('osmf.world')\n",
        "osmf/config/settings.py": "class Settings:\n    def truth_root(self):\n        return self.home / 'truth'\n"
                                   "    def segments(self):\n        return self.home / 'truth/segments.parquet'\n",
        "osmf/evaluation/ab.py": "from osmf.world import Simulator\ndef f(s):\n    return s.truth_root\n",
        "osmf/world/generate.py": "def f(d):\n    return d / 'manifest.json'\n",
        "osmf/grouping/fit.py": "from .. import world\n",
        "osmf_models/m.py": "def f(x):\n    return x.read_manifest()\n",
    })
    assert sorted(world_readers(root, allowed)) == sorted([
        "jobs/k.py:1 in <module>: imports osmf.world.styles.STYLES",
        "jobs/k.py:4 in f: imports osmf.world",
        "osmf/config/settings.py:5 in Settings.segments: names the truth directory ('truth/segments.parquet')",
        "osmf/grouping/fit.py:1 in <module>: imports osmf.world",
        "osmf_app/cli.py:1 in <module>: imports osmf.world.WorldConfigError",
        "osmf_app/cli.py:6 in cmd_settings: reads .truth_root",
        "osmf_app/cli.py:6 in cmd_settings: names 'world_manifest'",
        "osmf_app/cli.py:9 in cmd_other.inner: names the world's manifest ('world/manifest.json')",
        "osmf_app/cli.py:9 in cmd_other.inner: names the truth directory ('truth')",
        "osmf_models/m.py:2 in f: calls read_manifest"])
    assert unused_world_exemptions(root, allowed) == ["osmf_app/cli.py::cmd_gone"]


def test_the_placement_checker_catches_matplotlib_and_the_world_in_models(tmp_path):
    root = _plant(tmp_path, {
        "osmf/reports/plots.py": "import matplotlib.pyplot as plt\n",  # fine
        "osmf/grouping/fit.py": "def f():\n    import matplotlib.pyplot\n",
        "bench/b.py": "from matplotlib import pyplot\n",
        "osmf_models/m.py": "from osmf import world\nimport osmf_models.common\nimport osmf.worldly\n",
    })
    assert sorted(misplaced_imports(root)) == sorted([
        "osmf/grouping/fit.py:2 imports matplotlib.pyplot (plots live in osmf/reports/plots.py)",
        "osmf_models/m.py:1 imports osmf.world (models never see the world's code)",
        "bench/b.py:1 imports matplotlib.pyplot (plots live in osmf/reports/plots.py)"])


def test_the_length_checker_catches_long_functions_and_classes(tmp_path):
    body = "    x = 1\n"
    root = _plant(tmp_path, {
        "jobs/j.py": "def g():\n" + body * MAX_FUNCTION_LINES + "def ok():\n" + body * (MAX_FUNCTION_LINES - 1),
        "bench/b.py": "class C:\n" + body * MAX_CLASS_LINES + "class D:\n" + body * (MAX_CLASS_LINES - 1),
        "tests/test_x.py": "def t():\n" + body * 500,  # the tests: not checked
    })
    assert sorted(long_definitions(root)) == sorted([
        f"jobs/j.py:1 function g is {MAX_FUNCTION_LINES + 1} lines (at most {MAX_FUNCTION_LINES})",
        f"bench/b.py:1 class C is {MAX_CLASS_LINES + 1} lines (at most {MAX_CLASS_LINES})"])


def test_the_environment_checker_catches_reads_below_the_app_layer(tmp_path):
    root = _plant(tmp_path, {
        "osmf/grouping/a.py": "import os\n\ndef f():\n    return os.environ.get('OSMF_X')\n",
        "jobs/j.py": "from os import getenv\n",
        "osmf/config/settings.py": "import os\nENV = os.environ\n",  # the settings loader: allowed
        "osmf_app/cli.py": "import os\nHOME = os.environ['HOME']\n",  # the app layer: allowed
        "osmf/lake/b.py": "import os\nP = os.path.join('a', 'b')\n",  # not the environment
    })
    assert environment_reads(root) == [
        "jobs/j.py:1 in <module>: from os import (take it from Settings)",
        "osmf/grouping/a.py:4 in f: os.environ (take it from Settings)"]


def test_nothing_below_the_app_layer_reads_the_environment():
    assert environment_reads(ROOT) == []


def test_the_heavy_import_checker_catches_a_heavy_import_at_parse_time(tmp_path):
    root = _plant(tmp_path, {
        "pandas/__init__.py": "", "torch/__init__.py": "",  # stand-ins, found first (the root is the cwd)
        "osmf_app/__init__.py": "", "osmf_app/chain.py": "import json\nfrom jobs import j\n",
        "jobs/__init__.py": "", "jobs/j.py": "import pandas\ndef run(ctx):\n    import torch\n",
    })
    assert heavy_imports(root) == ["import osmf_app.chain imports pandas"]  # torch: imported when it runs
    (root / "jobs/j.py").write_text("def run(ctx):\n    import pandas, torch\n")
    assert heavy_imports(root) == []


# ---- the rules hold in this repository -------------------------------------------------------------
def test_imports_only_go_down():
    assert upward_imports(ROOT) == []


def test_osmf_sub_packages_import_what_the_map_allows():
    assert osmf_subpackage_imports(ROOT) == []


def test_no_job_imports_another_job():
    assert job_imports(ROOT) == []


def test_no_dispatch_by_name():
    assert string_dispatch(ROOT) == []


def test_only_the_generator_and_the_evaluation_see_the_world():
    assert world_readers(ROOT) == []


def test_every_world_exemption_is_needed():
    assert unused_world_exemptions(ROOT) == []


def test_plots_in_one_place_and_models_without_the_world():
    assert misplaced_imports(ROOT) == []


def test_no_function_over_80_lines_and_no_class_over_200():
    assert long_definitions(ROOT) == []


def test_parsing_a_dag_imports_no_heavy_library():
    assert heavy_imports(ROOT) == []
