"""A claim's design history: redesigns happen in the open, and nothing published is ever deleted.

When a redesign replaces a published result (its checks, preconditions or config changed, so the entries no longer
speak for the registered experiment), `mlreads supersede ID --why "..."` moves every ledger entry of the claim, with
its evidence folder, into

    results/<id>/superseded/design-<n>/          n = 1 for the first design, 2 for the next, ...
        superseded.json                           {"design", "why", "commit", "date", "entries"}
        quick-s0.json, quick-s0/ ...              the entries as they were published, byte for byte

`why` is one line: the design flaw, in words. `commit` is the commit of the redesign (default: HEAD). The current
entries, under `results/<id>/`, are the next design. The claim's page in the report shows the history, e.g.
"design 1: not reproduced (seed 0), superseded at 1a2b3c4: the target was reachable by a linear model; design 2
(current): reproduced (seeds 0, 1, 2)".
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlreads.core.errors import UserError
from mlreads.core.run.results import (
    MAX_RESULT_BYTES,
    BadResult,
    parse_json_bytes,
    printable,
    read_limited,
    validate,  # fmt: skip
)

SUPERSEDED = "superseded"
WHY_FILE = "superseded.json"
DESIGN_RE = re.compile(r"design-([1-9][0-9]{0,3})")
COMMIT_RE = re.compile(r"[0-9a-f]{40}")
MAX_WHY = 300


@dataclass
class Design:
    """One superseded design of a claim: why it was replaced, by which commit, and its entries."""

    number: int
    why: str
    commit: str
    date: str
    folder: Path
    entries: list[dict] = field(default_factory=list)


def resolve_commit(rev: str, cwd: Path | None = None) -> str:
    """A full commit hash for `rev` (a hash or a name git knows, HEAD by default); UserError when git cannot."""
    if COMMIT_RE.fullmatch(rev):
        return rev
    try:
        out = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], capture_output=True,
                             text=True, timeout=10, cwd=cwd)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        out = None
    if out is None or out.returncode != 0 or not COMMIT_RE.fullmatch(out.stdout.strip()):
        raise UserError(f"--commit {rev[:60]!r} is not a commit git knows here; give the redesign's full commit hash")
    return out.stdout.strip()


def supersede(results: Path, exp_id: str, why: str, commit: str, stale: Callable[[dict], list[str]] | None = None,
              force: bool = False) -> Design:  # fmt: skip
    """Move every ledger entry of `exp_id` (and its evidence folder) into the next `superseded/design-<n>/`.

    `stale(entry) -> reasons`: when given, at least one entry must no longer match the registered experiment (a
    redesign), unless `force`. UserError (one line) when there is nothing to supersede or the input is bad."""
    why = " ".join(str(why).split())
    if not why:
        raise UserError("--why is empty: say the design flaw in one line, e.g. 'the target was reachable by a linear model'")
    if len(why) > MAX_WHY:
        raise UserError(f"--why is {len(why)} characters; say it in one line of at most {MAX_WHY}")
    if not COMMIT_RE.fullmatch(commit):
        raise UserError(f"the redesign's commit must be a full 40-hex hash, got {commit[:60]!r}")
    folder = Path(results) / exp_id
    files = sorted(p for p in folder.glob("*.json") if p.is_file() and not p.is_symlink()) if folder.is_dir() else []
    if not files:
        raise UserError(f"nothing published for {exp_id} in {results}/ to supersede")
    entries = []
    for p in files:
        try:
            entries.append(validate(parse_json_bytes(read_limited(p, MAX_RESULT_BYTES), p.name)))
        except BadResult as e:
            raise UserError(f"{printable(p)}: {e}; fix or remove it by hand first") from None
    if stale is not None and not force and not any(stale(e) for e in entries):
        raise UserError(f"the published entries of {exp_id} still match the registered experiment: supersede is for "
                        "a redesign (changed checks, preconditions or config); pass --force if the design changed "
                        "in a way the ledger cannot see")  # fmt: skip
    numbers = [int(m[1]) for d in (folder / SUPERSEDED).glob("design-*") if (m := DESIGN_RE.fullmatch(d.name))]
    number = max(numbers, default=0) + 1
    dest = folder / SUPERSEDED / f"design-{number}"
    dest.mkdir(parents=True)
    for p in files:
        os.replace(p, dest / p.name)
        evidence = p.with_suffix("")
        if evidence.is_dir() and not evidence.is_symlink():
            os.replace(evidence, dest / evidence.name)
    record = {"design": number, "why": why, "commit": commit, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "entries": [p.name for p in files]}  # fmt: skip
    (dest / WHY_FILE).write_text(json.dumps(record, indent=1) + "\n")
    return Design(number, why, commit, record["date"], dest, entries)


def load_history(results: Path, warn: Callable[[str], None]) -> dict[str, list[Design]]:
    """id -> its superseded designs, oldest first. A malformed design folder or entry is skipped with a warning."""
    results = Path(results)
    out: dict[str, list[Design]] = {}
    if not results.is_dir():
        return out
    for sup in sorted(results.glob(f"*/*/{SUPERSEDED}")):
        if sup.is_symlink() or not sup.is_dir():
            continue
        exp_id = f"{sup.parent.parent.name}/{sup.parent.name}"
        for d in sorted(sup.iterdir(), key=lambda p: int(m[1]) if (m := DESIGN_RE.fullmatch(p.name)) else 0):
            rel = printable(d.relative_to(results))
            if not DESIGN_RE.fullmatch(d.name) or d.is_symlink() or not d.is_dir():
                warn(f"skipped {rel}: not a design-<n> folder")
                continue
            try:
                record = parse_json_bytes(read_limited(d / WHY_FILE, 100_000), WHY_FILE)
                if not (isinstance(record, dict) and isinstance(record.get("why"), str)
                        and isinstance(record.get("commit"), str) and COMMIT_RE.fullmatch(record["commit"])):  # fmt: skip
                    raise BadResult(f"{WHY_FILE} needs a string 'why' and a 40-hex 'commit'")
            except BadResult as e:
                warn(f"skipped {rel}: {printable(e)}")
                continue
            design = Design(int(DESIGN_RE.fullmatch(d.name)[1]), record["why"][:MAX_WHY], record["commit"],
                            str(record.get("date", ""))[:40], d)  # fmt: skip
            for p in sorted(d.glob("*.json")):
                if p.name == WHY_FILE or p.is_symlink():
                    continue
                try:
                    entry = validate(parse_json_bytes(read_limited(p, MAX_RESULT_BYTES), p.name))
                    if entry["id"] != exp_id:
                        raise BadResult(f"its id {entry['id']!r} is not the folder's {exp_id!r}")
                except BadResult as e:
                    warn(f"skipped {printable(p.relative_to(results))}: {printable(e)}")
                    continue
                entry["_file"] = str(p.relative_to(results))
                design.entries.append(entry)
            out.setdefault(exp_id, []).append(design)
    return out
