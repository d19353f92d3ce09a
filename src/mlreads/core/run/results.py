"""Reading result.json files that may come from someone else: size, encoding, nesting, schema and paths.

The report and the ledger read run folders they did not write. Every result.json goes through `load_result`, which
refuses (with `BadResult`, one line) a file that is too large, not UTF-8, not JSON, nested too deeply, not an object,
or whose fields have the wrong types; it returns a normalised dict that holds only the schema's keys. `inside(root,
name)` is the one way to turn a name from a result.json into a file: the path is resolved (symlinks first) and must
stay inside `root`.

Identifiers that become folder names (`id`, `budget`, `seed`) are checked against strict patterns, so a value such as
`../../etc` can never steer a path.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from mlreads.core.run.verdict import VERDICTS, decide

BUDGETS = ("smoke", "quick", "full")
OPS = ("<=", ">=", "<", ">", "==")
MAX_RESULT_BYTES = 4_000_000  # a real result.json is a few kB; metrics with long curves stay far below this
MAX_ARTIFACT_BYTES = 20_000_000  # a figure or text artifact copied or shown by the report
MAX_DEPTH = 32  # a real result.json nests at most ~6 levels
ID_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}/[a-z0-9][a-z0-9_.-]{0,127}")
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def run_dir_name(budget: str, seed: int, overrides: dict[str, str] | None = None) -> str:
    """`<budget>-s<seed>`, plus `-<8 hex>` of the overrides when there are any (so they never overwrite the default).
    Run folders and ledger entries are named by this one rule."""
    name = f"{budget}-s{seed}"
    if overrides:
        digest = hashlib.sha256(json.dumps(sorted(overrides.items())).encode()).hexdigest()[:8]
        name += f"-{digest}"
    return name


class BadResult(ValueError):
    """A result.json that cannot be trusted; the message is one line naming what is wrong."""


def printable(path: Any) -> str:
    """A path for a one-line message: control characters and other unprintables shown as '?'."""
    return "".join(c if c.isprintable() else "?" for c in str(path))[:300]


def _depth(x: Any, limit: int = MAX_DEPTH) -> int:
    stack, deepest = [(x, 1)], 0
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(v, dict):
            stack.extend((w, d + 1) for w in v.values())
        elif isinstance(v, list):
            stack.extend((w, d + 1) for w in v)
    return deepest


def parse_json_bytes(raw: bytes, what: str = "result.json") -> Any:
    """Bytes -> JSON value, refusing non-UTF-8, invalid JSON and deep nesting with a one-line BadResult."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadResult(f"{what} is not UTF-8 (byte {e.start})") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise BadResult(f"{what} is nested too deeply") from None
    except json.JSONDecodeError as e:
        raise BadResult(f"{what} is not valid JSON (line {e.lineno}: {e.msg})") from None
    if _depth(value) > MAX_DEPTH:
        raise BadResult(f"{what} is nested too deeply (more than {MAX_DEPTH} levels)")
    return value


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return (isinstance(x, int | float)) and not isinstance(x, bool)


def _str(d: dict, key: str, default: str = "", limit: int = 20_000) -> str:
    v = d.get(key, default)
    if v is None:
        v = default
    if not isinstance(v, str):
        raise BadResult(f"{key!r} must be a string, not {type(v).__name__}")
    return v[:limit]


def _str_map(d: dict, key: str) -> dict[str, str]:
    v = d.get(key) or {}
    if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()):
        raise BadResult(f"{key!r} must be an object of strings")
    return dict(v)


def validate(data: Any) -> dict:
    """Check a decoded result.json against the schema; return a normalised copy with only the schema's keys."""
    if not isinstance(data, dict):
        raise BadResult(f"result.json must be a JSON object, not {type(data).__name__}")
    if "id" not in data:
        raise BadResult("result.json has no 'id'")
    exp_id = data["id"]
    if not isinstance(exp_id, str) or not ID_RE.fullmatch(exp_id):
        raise BadResult(f"'id' must look like 'paper/slug' (lower-case letters, digits, '-', '_', '.'), got {exp_id!r:.80}")
    budget = data.get("budget")
    if budget not in BUDGETS:
        raise BadResult(f"'budget' must be one of {', '.join(BUDGETS)}, got {budget!r:.40}")
    seed = data.get("seed")
    if not _is_int(seed) or not 0 <= seed < 2**64:
        raise BadResult(f"'seed' must be an integer in [0, 2^64), got {seed!r:.40}")
    verdict = data.get("verdict")
    if verdict not in VERDICTS:
        raise BadResult(f"'verdict' must be one of {', '.join(VERDICTS)}, got {verdict!r:.40}")
    checks = data.get("checks")
    if not isinstance(checks, list) or not checks:
        raise BadResult("'checks' must be a non-empty list")
    clean_checks = [_record(c, "check") for c in checks]
    pre = data.get("preconditions")
    if pre is None:
        pre = []  # written before preconditions existed: none
    if not isinstance(pre, list):
        raise BadResult("'preconditions' must be a list")
    clean_pre = [_record(c, "precondition") for c in pre]
    if verdict != decide(clean_checks, clean_pre):
        raise BadResult(f"'verdict' is {verdict!r} but its checks and preconditions give {decide(clean_checks, clean_pre)!r}")
    metrics = data.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise BadResult("'metrics' must be an object")
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise BadResult("'config' must be an object")
    env = data.get("env") or {}
    if not isinstance(env, dict):
        raise BadResult("'env' must be an object")
    figures = data.get("figures") or []
    if not isinstance(figures, list) or not all(isinstance(f, str) for f in figures):
        raise BadResult("'figures' must be a list of file names")
    elapsed = data.get("elapsed_s", 0.0)
    if not _is_num(elapsed) or not math.isfinite(elapsed) or elapsed < 0:
        raise BadResult(f"'elapsed_s' must be a non-negative number, got {elapsed!r:.40}")
    cpu = data.get("cpu_s")  # None: recorded before CPU time was
    if cpu is not None and (not _is_num(cpu) or not math.isfinite(cpu) or cpu < 0):
        raise BadResult(f"'cpu_s' must be a non-negative number, got {cpu!r:.40}")
    published = data.get("published")
    if published is not None and not isinstance(published, dict):
        raise BadResult("'published' must be an object")
    sittings = data.get("sittings")
    if sittings is not None and not (isinstance(sittings, list) and sittings and all(
            isinstance(x, dict) and _is_num(x.get("elapsed_s", 0)) and _is_num(x.get("cpu_s", 0)) for x in sittings)):
        raise BadResult("'sittings' must be a non-empty list of objects with numeric 'elapsed_s' and 'cpu_s'")
    extra = {} if sittings is None else {"sittings": sittings}  # a resumed run's sittings (core/run/sittings.py)
    return {
        "id": exp_id, "budget": budget, "seed": seed, "verdict": verdict, "checks": clean_checks,
        "preconditions": clean_pre, "cpu_s": None if cpu is None else float(cpu),
        "paper": _str(data, "paper"), "claim": _str(data, "claim"), "paper_value": _str(data, "paper_value"),
        "headline": _str(data, "headline", limit=200), "notes": _str(data, "notes"), "config": config,
        "metrics": metrics, "figures": figures, "captions": _str_map(data, "captions"), "texts": _str_map(data, "texts"),
        "overrides": _str_map(data, "overrides"), "elapsed_s": float(elapsed), "env": env, "published": published,
        **extra,
    }  # fmt: skip


def _record(c: Any, kind: str) -> dict:
    """One recorded check or precondition, validated and normalised (the same form for both)."""
    if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not isinstance(c.get("passed"), bool):
        raise BadResult(f"each {kind} must be an object with a string 'name' and a boolean 'passed'")
    rel = c.get("relation")
    if rel is not None and not (
        isinstance(rel, dict) and rel.get("op") in OPS and isinstance(rel.get("lhs"), str)
        and (rel.get("rhs") is None or isinstance(rel.get("rhs"), str)) and _is_num(rel.get("margin", 0))
    ):  # fmt: skip
        raise BadResult(f"{kind} {c['name']!r:.60}: malformed 'relation'")
    out = {"name": c["name"][:500], "passed": c["passed"], "measured": c.get("measured"),
           "expected": _str(c, "expected", limit=2000), "relation": rel}  # fmt: skip
    interval = c.get("interval")
    if interval is not None:
        if not (isinstance(interval, list) and len(interval) == 2 and all(_is_num(v) for v in interval)):
            raise BadResult(f"{kind} {c['name']!r:.60}: 'interval' must be [lo, hi]")
        out["interval"] = interval
    if c.get("se") is not None:
        if not _is_num(c["se"]):
            raise BadResult(f"{kind} {c['name']!r:.60}: 'se' must be a number")
        out["se"] = c["se"]
    if c.get("inconclusive") is not None:
        if not isinstance(c["inconclusive"], bool) or (c["inconclusive"] and c["passed"]):
            raise BadResult(f"{kind} {c['name']!r:.60}: 'inconclusive' must be a boolean, and false when it passed")
        if c["inconclusive"]:
            out["inconclusive"] = True
    return out


def read_limited(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (BadResult otherwise)."""
    try:
        st = os.stat(path)
        if not os.path.isfile(path):
            raise BadResult(f"{path.name} is not a regular file")
        if st.st_size > limit:
            raise BadResult(f"{path.name} is too large ({st.st_size:,} bytes; at most {limit:,})")
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as e:
        raise BadResult(f"cannot read {path.name} ({e.strerror})") from None
    if len(raw) > limit:
        raise BadResult(f"{path.name} is too large (more than {limit:,} bytes)")
    return raw


def inside(root: Path, name: Any) -> Path | None:
    """`root / name` resolved (symlinks first) when it exists and stays inside `root` (itself resolved); else None."""
    if not isinstance(name, str) or not name or "\x00" in name or os.path.isabs(name):
        return None
    base = Path(root).resolve()
    try:
        path = (base / name).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, a symlink loop
        return None
    return path if path != base and path.is_relative_to(base) else None


def load_result(path: Path, root: Path) -> dict:
    """Load and validate one result.json found under `root`; the run folder must also lie inside `root`.

    Returns the normalised result with `_dir`, the resolved run folder. Raises BadResult with a one-line reason."""
    root = Path(root).resolve()
    run_dir = Path(path).parent.resolve()
    if not run_dir.is_relative_to(root):
        raise BadResult("the run folder resolves outside the runs folder")
    real = inside(run_dir, Path(path).name)
    if real is None:
        raise BadResult("result.json resolves outside its run folder")
    result = validate(parse_json_bytes(read_limited(real, MAX_RESULT_BYTES)))
    result["_dir"] = run_dir
    return result


def find_results(root: Path) -> list[Path]:
    """Every `result.json` under `root`, without following symlinked folders or descending into checkpoints."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d != "checkpoints" and not d.startswith("."))
        if "result.json" in filenames:
            found.append(Path(dirpath) / "result.json")
    return found
