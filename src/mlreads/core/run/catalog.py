"""A plain-data catalogue of the registered experiments, cached so that `mlreads list` and `mlreads show` need neither
torch nor matplotlib (importing every paper's experiments takes seconds; reading the cache takes milliseconds).

The cache file is `<cache>/catalog-<key>.json`, where `<cache>` is `$MLREADS_DATA` or `~/.cache/mlreads`, and `<key>`
hashes the path, size and modification time of every Python file of the installed package: any edit to the sources
gives a new key, so a stale catalogue is never read. The first call after a change imports the registry once.

`estimate` gives the time `mlreads list` shows per budget: the results ledger's measured time where published
(`ledger_times`, JSON only), else what the budget promises (`BUDGET_LIMITS`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def _package_dir() -> Path:
    return Path(__file__).resolve().parents[2]  # the mlreads package


def source_key() -> str:
    h = hashlib.sha256()
    root = _package_dir()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(".py"):
                st = os.stat(os.path.join(dirpath, name))
                h.update(f"{os.path.relpath(os.path.join(dirpath, name), root)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    env = os.environ.get("MLREADS_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mlreads"


def describe(exp, position: int) -> dict:
    """One experiment as plain data: what `list`, `show --json` and docs/claims.md print."""
    from mlreads.core.run.config import to_dict

    return {
        "id": exp.id,
        "position": position,
        "paper": exp.paper,
        "claim": exp.claim,
        "paper_value": exp.paper_value,
        "budgets": list(exp.budgets),
        "checks": {b: [c.expected for c in exp.checks[b]] for b in exp.budgets},
        "preconditions": {b: [c.expected for c in exp.preconditions.get(b, ())] for b in exp.budgets},
        "seed_rule": exp.seed_rule.text,
        "seed_rule_of": {"metric": exp.seed_rule.metric, "op": exp.seed_rule.op, "bound": exp.seed_rule.bound},
        "configs": {b: _jsonable(to_dict(exp.configs[b])) for b in exp.budgets},
        "threads": {b: exp.threads_for(b) for b in exp.budgets},
        "requires": list(exp.requires),
        "headline": exp.headline,
        "notes": exp.notes,
        "full_scale": exp.full_scale,
        "source": exp.source,
    }


def _jsonable(x):
    return json.loads(json.dumps(x, default=str))


KEYS = {"id": str, "position": int, "paper": str, "claim": str, "paper_value": str, "budgets": list, "checks": dict,
        "preconditions": dict, "seed_rule": str, "seed_rule_of": dict, "configs": dict, "threads": dict, "requires": list,
        "headline": str, "notes": str, "full_scale": str, "source": str}  # fmt: skip


def _valid(entry) -> bool:
    """A cached entry has every key with its type (a damaged cache is rebuilt, never trusted)."""
    return isinstance(entry, dict) and all(isinstance(entry.get(k), t) for k, t in KEYS.items())


def seed_rule(entry: dict):
    """The entry's seed rule as the registry declares it (core/run/verdict.py's SeedRule), rebuilt from plain data."""
    from mlreads.core.run.verdict import SeedRule

    of = entry["seed_rule_of"]
    return SeedRule(entry["seed_rule"], of.get("metric"), of.get("op", ">"), float(of.get("bound", 0.0)))


def select(patterns) -> list[dict]:
    """The catalogue entries that ids, prefixes or 'all' name (registry.match_ids), in reading-list order within each
    pattern: what `mlreads show` needs, without importing torch."""
    from mlreads.core.papers import reading_key
    from mlreads.core.run.registry import match_ids

    entries = {e["id"]: e for e in sorted(catalog(), key=lambda e: reading_key(e["id"], e["position"]))}
    return [entries[i] for i in match_ids(list(entries), patterns)]


def build() -> list[dict]:
    from mlreads.core.run.registry import load_all

    return [describe(e, i) for i, e in enumerate(load_all().values())]


def _torch_loaded() -> bool:
    import sys

    return "torch" in sys.modules


def catalog(use_cache: bool = True) -> list[dict]:
    """Every registered experiment as plain data, from the cache when the sources have not changed."""
    if _torch_loaded():  # the registry is cheap to load now (and may hold experiments added at run time)
        return build()
    path = cache_dir() / f"catalog-{source_key()}.json"
    if use_cache:
        try:
            data = json.loads(path.read_text())
            if isinstance(data, list) and all(_valid(e) for e in data):
                return data
        except (OSError, ValueError):
            pass
    data = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: list still works, just slower
    return data
