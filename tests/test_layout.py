"""The package layout, checked from the code itself: every rule below is read off the real imports (parsed with `ast`,
imports inside functions included), the registry and the files on disk, so a new file is checked as soon as it exists.

1. core knows no paper: no module under core/ imports a paper package.
2. core's rooms are layered: nothing in core/run imports core/report, and the rooms (run, train, report, nn, data and
   each root leaf such as papers.py or errors.py) import each other without a cycle.
3. Papers import each other only through `mlreads.<package>` (its __init__), never `mlreads.<other>.<module>`.
4. Model files (every module of a paper package except experiments.py, exp_*.py and figures.py) import nothing from
   core.train: training machinery belongs to the experiments.
5. The run function of id `P/S` lives in the file `core.papers.exp_file` names (`<package>/exp_<S>.py`, or
   `<package>/exp_<P>_<S>.py` when P is not the package's name); each exp_ file holds one experiment, and an exp_
   module imports no other experiment's module (shared code is exp_common.py).
6. Every paper package is on the reading list's map (core/papers.py) and has experiments.py and figures.py.
7. No source file outside mamba/csrc exceeds 500 lines.
8. Paper metadata lives in core/papers.py: no Experiment(...) in a paper package writes its own `paper=`.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

from mlreads.core.papers import PACKAGES, exp_file
from mlreads.core.run.registry import load_all

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "mlreads"
CORE = PKG / "core"
PAPERS = sorted(d.name for d in PKG.iterdir() if (d / "__init__.py").is_file() and d.name != "core")
CORE_ROOMS = sorted(d.name for d in CORE.iterdir() if (d / "__init__.py").is_file())  # run, train, report, nn, data
MAX_LINES = 500
LONG_FILES_ALLOWED: set[str] = set()  # none: a file past MAX_LINES is split along its seams
NOT_MODEL_FILES = ("experiments.py", "figures.py")  # and exp_*.py


def module_of(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


@functools.cache
def imports(path: Path) -> tuple[tuple[int, str], ...]:
    """(line, module) of every mlreads module `path` imports: `from X import name` counts as X.name when that is a
    module (`from mlreads.core import train` imports mlreads.core.train), else as X."""
    me = module_of(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for a in node.names:
                found.append((node.lineno, f"{base}.{a.name}" if is_module(f"{base}.{a.name}") else base))
    return tuple((line, m) for line, m in found if m == "mlreads" or m.startswith("mlreads."))


def sources(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py"))


def show(path: Path) -> str:
    return str(path.relative_to(SRC.parent))


def is_model_file(path: Path) -> bool:
    return path.name not in NOT_MODEL_FILES and not path.name.startswith("exp_")


def room_of(module: str) -> str | None:
    """The core room of a module: 'run', 'train', ... or the root leaf's own name ('papers'); None outside core."""
    parts = module.split(".")
    if parts[:2] != ["mlreads", "core"]:
        return None
    return parts[2] if len(parts) > 2 else "core/__init__"


def test_the_checks_see_the_tree():
    """Guards the test itself: it finds the packages and rooms, imports inside functions, and `from X import module`."""
    assert {"gpt", "mamba", "vision"} <= set(PAPERS) and {"run", "train", "report"} <= set(CORE_ROOMS)
    assert "mlreads.core.train" in {m for _, m in imports(PKG / "generative" / "exp_common.py")}  # inside a function
    assert "mlreads.core.data" in {m for _, m in imports(CORE / "data" / "text.py")}  # from mlreads.core import data


def test_core_imports_no_paper():
    bad = [f"{show(p)}:{line} imports {m}" for p in sources(CORE) for line, m in imports(p)
           if m.split(".")[1:2] and m.split(".")[1] in PAPERS]  # fmt: skip
    assert not bad, "core knows no paper; move what it needs into core or pass it in:\n" + "\n".join(bad)


def test_run_does_not_import_report():
    bad = [f"{show(p)}:{line} imports {m}" for p in sources(CORE / "run") for line, m in imports(p)
           if m.startswith("mlreads.core.report")]  # fmt: skip
    assert not bad, "core/run must not import core/report (the report reads what runs write):\n" + "\n".join(bad)


def test_core_leaves_import_no_room():
    """The modules at core's root (errors, fields, fmt, stats, papers, ...) are leaves every room may import: they
    import no room (run, train, report, nn, data), so no room reaches another through them."""
    rooms = {r for r in CORE_ROOMS}
    bad = [f"{show(p)}:{line} imports {m}" for p in sorted(CORE.glob("*.py")) for line, m in imports(p)
           if room_of(m) in rooms]  # fmt: skip
    assert not bad, "a core leaf imports a room; move the shared piece into the leaf:\n" + "\n".join(bad)


def test_core_rooms_import_each_other_without_a_cycle():
    edges: dict[str, set[str]] = {}
    for p in sources(CORE):
        src = room_of(module_of(p))
        for _, m in imports(p):
            dst = room_of(m)
            if dst and dst != src and src != "core/__init__":
                edges.setdefault(src, set()).add(dst)
    cycle = _find_cycle(edges)
    assert cycle is None, f"core rooms import each other in a cycle: {' -> '.join(cycle)}"


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt] if nxt in path else [*path, nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


@pytest.mark.parametrize("paper", PAPERS)
def test_papers_import_each_other_only_through_their_init(paper):
    bad = []
    for p in sources(PKG / paper):
        for line, m in imports(p):
            parts = m.split(".")
            if len(parts) > 2 and parts[1] in PAPERS and parts[1] != paper:
                bad.append(f"{show(p)}:{line} imports {m}; use `from mlreads.{parts[1]} import ...` (export it there)")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("paper", PAPERS)
def test_model_files_import_no_training_machinery(paper):
    bad = [f"{show(p)}:{line} imports {m}" for p in sources(PKG / paper) if is_model_file(p)
           for line, m in imports(p) if m.startswith("mlreads.core.train")]  # fmt: skip
    assert not bad, ("a model file imports core.train; move the training into exp_common.py or an exp_ module (or "
                     "a pure function of the paper's equation):\n" + "\n".join(bad))  # fmt: skip


def test_every_run_function_lives_in_the_file_named_after_its_id():
    bad = []
    for exp in load_all().values():
        if not exp.run.__module__.startswith("mlreads."):
            continue  # a test's toy experiment
        try:
            want = "mlreads." + exp_file(exp.id).removesuffix(".py").replace("/", ".")
        except KeyError:
            bad.append(f"{exp.id}: its prefix is not on the reading list (core/papers.py)")
            continue
        if exp.run.__module__ != want:
            bad.append(f"{exp.id}: run is in {exp.run.__module__}, the naming rule says {want}")
    assert not bad, "\n".join(bad)


def test_one_experiment_per_exp_file_and_no_experiment_imports_another():
    owners: dict[str, list[str]] = {}
    for exp in load_all().values():
        owners.setdefault(exp.run.__module__, []).append(exp.id)
    bad = []
    for paper in PAPERS:
        for p in sorted((PKG / paper).glob("exp_*.py")):
            mod = module_of(p)
            if p.name == "exp_common.py":
                continue
            if len(owners.get(mod, [])) != 1:
                bad.append(f"{show(p)} holds the run of {owners.get(mod, [])}; an exp_ file holds exactly one")
            bad += [f"{show(p)}:{line} imports {m}; shared code goes into exp_common.py" for line, m in imports(p)
                    if m.rpartition(".")[2].startswith("exp_") and not m.endswith(".exp_common")]  # fmt: skip
    assert not bad, "\n".join(bad)


def test_every_paper_package_is_mapped_and_has_experiments_and_figures():
    assert sorted(PACKAGES) == PAPERS, "core/papers.py's reading list must name exactly the paper packages"
    missing = [f"{p}/{f}" for p in PAPERS for f in ("experiments.py", "figures.py") if not (PKG / p / f).is_file()]
    assert not missing, f"every paper package has experiments.py and figures.py; missing: {missing}"


def test_no_source_file_is_longer_than_500_lines():
    csrc = PKG / "mamba" / "csrc"
    long = {show(p): n for p in sources(PKG) if csrc not in p.parents
            and (n := len(p.read_text().splitlines())) > MAX_LINES}  # fmt: skip
    allowed = {show(PKG / f) for f in LONG_FILES_ALLOWED}
    bad = {f: n for f, n in long.items() if f not in allowed}
    assert not bad, f"split these along the paper's seams (at most {MAX_LINES} lines): {bad}"


def test_experiments_take_their_paper_from_core_papers():
    bad = []
    for paper in PAPERS:
        for p in sources(PKG / paper):
            calls = [n for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.Call)]
            bad += [f"{show(p)}:{c.lineno}" for c in calls if _name(c.func) == "Experiment"
                    and any(k.arg == "paper" for k in c.keywords)]  # fmt: skip
    assert not bad, ("paper metadata lives in core/papers.py (a Paper's cite, or SOURCES with source=KEY); these "
                     f"Experiment(...) calls write their own paper=: {bad}")  # fmt: skip


def _name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
