"""The results ledger: `results/<id>/<budget>-s<seed>.json`, published from real quick and full runs.

A ledger entry is the run's result.json plus a `published` block: the commit the run was made at, its date, torch
version, threads and machine. Its figures (shrunk to at most 300 KB each) and text artifacts are copied next to it,
into `results/<id>/<budget>-s<seed>/` (report/evidence.py). Every verdict is filed alike: pass, fail and
inconclusive. Entries are written only by `mlreads publish RUN_DIR`, which refuses what is not evidence of a claim:

- a smoke run (a pipeline check, not a reproduction),
- a run with `--set` overrides (unless `--allow-overrides`: the entry is then named `<budget>-s<seed>-<hash>.json`
  and never counts as the claim's verdict),
- a run whose sources are unknown (no git commit recorded) or were uncommitted (`dirty`) when it ran,
- an id the registry does not know, or a result.json that fails the schema;
- a run that would overwrite an entry of an earlier design: `mlreads supersede ID --why "..."` moves the old
  entries to `results/<id>/superseded/` first (report/history.py), so nothing published is ever deleted.

The report's reproduction verdicts and the README's results table are generated from the ledger
(`mlreads readme-table`; a test fails when README.md and the ledger disagree).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlreads.core import fmt
from mlreads.core.errors import UserError
from mlreads.core.report.evidence import artifacts_dir, copy_artifacts
from mlreads.core.report.history import SUPERSEDED
from mlreads.core.run.results import (
    MAX_RESULT_BYTES,
    BadResult,
    load_result,
    parse_json_bytes,
    printable,
    read_limited,  # fmt: skip
    run_dir_name,
    validate,
)
from mlreads.core.run.verdict import ALL_SEEDS, SeedRule, judge

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"


def _warn(message: str) -> None:
    print(f"mlreads: warning: {message}", file=sys.stderr)


def entry_path(results: Path, result: dict) -> Path:
    return Path(results) / result["id"] / f"{run_dir_name(result['budget'], result['seed'], result['overrides'])}.json"


def publish(run_dir: Path, results: Path, allow_overrides: bool = False, experiments: dict | None = None,
            warn: Callable[[str], None] = _warn, replace: bool = False) -> Path:  # fmt: skip
    """Copy one run's result.json into the ledger with its provenance, and its figures and texts next to it;
    UserError (one line) when it is not evidence.

    `experiments` (id -> Experiment, default: none checked): the run must be of a registered experiment and still
    match it (config, checks and preconditions), see `stale_reasons`; an existing entry it would replace must match
    it too (else it is an earlier design: supersede it first). An existing entry published from another commit is
    replaced only with `replace` (a re-run of the same design): a redesign in code alone (an init, a loss) leaves the
    config and checks as they were, so only the commit tells the two apart, and the old entry belongs in the
    design history (`mlreads supersede --force`), not overwritten."""
    run_dir = Path(run_dir)
    where = str(run_dir)
    if not (run_dir / "result.json").is_file():
        raise UserError(f"publish {where}: no result.json there; give a run folder such as runs/<id>/quick-s0")
    try:
        result = load_result(run_dir / "result.json", run_dir)
    except BadResult as e:
        raise UserError(f"publish {where}: {e}") from None
    if result["budget"] == "smoke":
        raise UserError(f"publish {where}: a smoke run is a pipeline check, not a reproduction; publish quick or full runs")
    if result["overrides"] and not allow_overrides:
        sets = " ".join(f"--set {k}={v}" for k, v in result["overrides"].items())
        raise UserError(f"publish {where}: the run has overrides ({sets}); the ledger holds default configs "
                        "(pass --allow-overrides to publish it as a variant)")  # fmt: skip
    env = result["env"]
    if not env.get("commit"):
        raise UserError(f"publish {where}: unknown provenance: the run records no git commit (it ran from an "
                        "installed copy, or before mlreads recorded commits); re-run it from a git checkout")  # fmt: skip
    if env.get("dirty") is not False:
        state = "uncommitted changes" if env.get("dirty") else "unknown source state"
        raise UserError(f"publish {where}: the run was made from {state} on top of {str(env['commit'])[:12]}; "
                        "commit, re-run, then publish")  # fmt: skip
    sources = {(str(x.get("commit")), x.get("dirty")) for x in result.get("sittings") or []}
    if sources and sources != {(str(env["commit"]), False)}:
        listed = ", ".join(sorted(f"{c[:12]}{' (dirty)' if d else ''}" for c, d in sources))
        raise UserError(f"publish {where}: the run's sittings ran from different sources ({listed}); a run published "
                        "as one must resume from the commit it started at: re-run it")  # fmt: skip
    if experiments is not None:
        if result["id"] not in experiments:
            raise UserError(f"publish {where}: {result['id']!r} is not a registered experiment")
        reasons = stale_reasons(result, experiments[result["id"]])
        if reasons:
            raise UserError(f"publish {where}: the run no longer matches the registered experiment ({'; '.join(reasons)}); "
                            "re-run it")  # fmt: skip
    target = entry_path(results, result)
    if experiments is not None and target.is_file():
        _refuse_overwriting_an_earlier_design(where, target, experiments[result["id"]])
    if target.is_file() and not replace:
        _refuse_replacing_another_commits_entry(where, target, str(env["commit"]))
    entry = {k: v for k, v in result.items() if not k.startswith("_") and k != "published"}
    entry["published"] = {
        "commit": env["commit"],
        "date": env.get("date"),
        "torch": env.get("torch"),
        "threads": env.get("threads"),
        "machine": env.get("machine") or env.get("platform"),
        "python": env.get("python"),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    entry["figures"], entry["captions"], entry["texts"] = copy_artifacts(
        result, result["_dir"], artifacts_dir(target), lambda m: warn(f"publish {where}: {m}"))
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(entry, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, target)
    return target


def _refuse_overwriting_an_earlier_design(where: str, target: Path, exp) -> None:
    try:
        old = validate(parse_json_bytes(read_limited(target, MAX_RESULT_BYTES), target.name))
    except BadResult:
        return  # a broken file is not evidence; publishing replaces it
    reasons = stale_reasons(old, exp)
    if reasons:
        raise UserError(f"publish {where}: {target} holds a result of an earlier design ({reasons[0]}); keep it in the "
                        f"design history first: mlreads supersede {old['id']} --why 'the design flaw, in one line'")  # fmt: skip


def _refuse_replacing_another_commits_entry(where: str, target: Path, commit: str) -> None:
    try:
        old = parse_json_bytes(read_limited(target, MAX_RESULT_BYTES), target.name)
        old_commit = str(old["published"]["commit"])
    except (BadResult, KeyError, TypeError):
        return  # a broken file is not evidence; publishing replaces it
    if old_commit != commit:
        raise UserError(f"publish {where}: {target} was published from commit {old_commit[:12]}, this run is from "
                        f"{commit[:12]}: if the design changed (in code alone, say), keep the old entry in the design "
                        f"history first: mlreads supersede {old.get('id', 'ID')} --force --why 'the flaw, in one line'; "
                        "if it is a re-run of the same design, pass --replace")  # fmt: skip


DEFAULT_LEDGER = Path("results")  # relative: the clone's ledger when mlreads runs in its clone


def ledger_folder(given: Path | None, required: bool = False, warn: Callable[[str], None] = _warn) -> Path | None:
    """The ledger to read: `--results` as given, else `results/` here. When that folder is missing (a typo, or
    mlreads run outside its clone) one line says so and None is returned, so nothing reads an absent ledger as an
    empty one ("0 claims reproduced"); `required` (the README's table) makes that line an error."""
    path = Path(given) if given is not None else DEFAULT_LEDGER
    if path.is_dir():
        return path
    where = (f"no results folder {str(path)[:80]!r}" if given is not None else
             f"no results ledger here ({DEFAULT_LEDGER}/ is missing: run mlreads in its clone, or give --results PATH)")
    if required:
        raise UserError(where)
    warn(f"{where}; published results are not shown")
    return None


def load_ledger(results: Path, warn: Callable[[str], None] = _warn) -> list[dict]:
    """Every valid ledger entry under `results`; a bad or misplaced file is skipped with one warning line."""
    results = Path(results)
    if not results.is_dir():
        return []
    entries = []
    for dirpath, dirnames, filenames in os.walk(results, followlinks=False):
        # an entry's evidence folder (quick-s0/ beside quick-s0.json) and the design history are not entries
        dirnames[:] = sorted(d for d in dirnames if d != SUPERSEDED and f"{d}.json" not in filenames)
        for fname in sorted(filenames):
            if not fname.endswith(".json"):
                continue
            path = Path(dirpath) / fname
            rel = path.relative_to(results)
            try:
                if path.is_symlink():
                    raise BadResult("is a symlink")
                entry = validate(parse_json_bytes(read_limited(path, MAX_RESULT_BYTES), str(rel)))
                if not isinstance(entry.get("published"), dict) or not entry["published"].get("commit"):
                    raise BadResult("has no 'published' block with a commit (write entries with 'mlreads publish')")
                if path.resolve() != entry_path(results, entry).resolve():
                    raise BadResult(f"does not match its content (expected {entry_path(results, entry).relative_to(results)})")
            except BadResult as e:
                warn(f"skipped ledger entry {printable(rel)}: {printable(e)}")
                continue
            entry["_file"] = str(rel)
            entries.append(entry)
    return entries


def _without_new_defaults(cfg, current: dict, old: dict) -> dict:
    """`current` (the registered config as JSON) less the fields that `old` (a published entry's) lacks and that hold
    their declared default: a field added later whose default keeps the old behaviour (a data option off by default)
    does not make earlier entries stale. Nested configs are walked alike; any other difference stays."""
    import dataclasses

    if not dataclasses.is_dataclass(cfg) or not isinstance(old, dict):
        return current
    out = {}
    for f in dataclasses.fields(cfg):
        if f.name not in current:
            continue
        value = getattr(cfg, f.name)
        if f.name not in old:
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)  # fmt: skip
            if default is not dataclasses.MISSING and value == default:
                continue
        out[f.name] = _without_new_defaults(value, current[f.name], old.get(f.name))
    return out


def stale_reasons(entry: dict, exp) -> list[str]:
    """Why a ledger entry no longer speaks for the registered experiment (empty when it does): its budget is gone,
    its config differs from the registered one (for a default-config entry), its checks or preconditions are not the
    registered ones (checks are committed before the runs that test them), or the current checks and preconditions,
    evaluated on its metrics, give another verdict. Such an entry must be re-run and re-published, and the old one
    superseded (`mlreads supersede`)."""
    from mlreads.core.run.config import to_dict

    budget = entry["budget"]
    if budget not in exp.configs:
        return [f"{exp.id} has no {budget!r} budget any more"]
    reasons = []
    if not entry["overrides"]:
        current = _without_new_defaults(exp.configs[budget], json.loads(json.dumps(to_dict(exp.configs[budget]),
                                                                                   default=str)), entry["config"])  # fmt: skip
        if entry["config"] != current:
            keys = sorted(k for k in set(current) | set(entry["config"]) if current.get(k) != entry["config"].get(k))
            reasons.append(f"the {budget} config changed since it was published ({', '.join(keys)})")
    now = judge(exp, budget, entry["metrics"])
    for key in ("checks", "preconditions"):
        if [c["expected"] for c in now[key]] != [c["expected"] for c in entry.get(key) or []]:
            reasons.append(f"the {budget} {key} changed since it was published")
    verdict = now["verdict"]
    if verdict != entry["verdict"]:
        reasons.append(f"the current checks give {verdict!r} on its metrics, the entry says {entry['verdict']!r}")
    return reasons


# ---------------------------------------------------------------------------------------------- grouping seeds


@dataclass
class Verdict:
    """The ledger's verdict on one claim at one budget: the default-config entries, grouped over seeds by the
    experiment's seed rule (core/run/verdict.py)."""

    id: str
    budget: str
    entries: list[dict] = field(default_factory=list)
    rule: SeedRule = ALL_SEEDS

    @property
    def seeds(self) -> list[int]:
        return sorted(e["seed"] for e in self.entries)

    @property
    def n_pass(self) -> int:
        return sum(e["verdict"] == "pass" for e in self.entries)

    @property
    def word(self) -> str:
        """'reproduced', 'not reproduced', 'inconclusive', or 'mixed' when seeds disagree (under ALL_SEEDS)."""
        return self.rule.combine(self.entries)[0]

    @property
    def rule_detail(self) -> str:
        """What the seed rule computed (the mean and its interval, for `paired_mean`); empty for ALL_SEEDS."""
        return self.rule.combine(self.entries)[1]

    @property
    def headline(self) -> str:
        """`key = value [lo, hi]` (one seed, with its interval when the run recorded one) or `key = mean (range
        lo–hi, n seeds)`; empty when there is no numeric headline."""
        from mlreads.core.stats import interval_of

        key = self.entries[0].get("headline") if self.entries else ""
        values = [e["metrics"].get(key) for e in self.entries] if key else []
        if not values or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return ""
        if len(values) == 1:
            return f"{key} = {fmt.with_interval(values[0], interval_of(self.entries[0]['metrics'], key))}"
        return (f"{key} = {fmt.num(statistics.fmean(values))} (range {fmt.num(min(values))}–{fmt.num(max(values))}, "
                f"{len(values)} seeds)")  # fmt: skip

    @property
    def seeds_text(self) -> str:
        s = self.seeds
        if len(s) == 1:
            return f"seed {s[0]}"
        counts = [f"{self.n_pass} of {len(s)} pass"]
        n_inc = sum(e["verdict"] == "inconclusive" for e in self.entries)
        if n_inc:
            counts.append(f"{n_inc} inconclusive")
        return f"seeds {', '.join(map(str, s))}: {', '.join(counts)}"

    @property
    def why(self) -> str:
        """Why the claim is not reproduced here: the seed rule's detail, or each distinct failing precondition or check
        with both its sides (from the first seed that shows it); empty when reproduced."""
        from mlreads.core.run.verdict import why

        if self.word == "reproduced":
            return ""
        if self.rule_detail:
            return self.rule_detail
        seen, lines = set(), []
        for e in sorted(self.entries, key=lambda e: e["seed"]):
            line = why(e)
            if line and line not in seen:
                seen.add(line)
                lines.append(line if len(self.entries) == 1 else f"seed {e['seed']}: {line}")
        return "; ".join(lines)

    @property
    def elapsed(self) -> float:
        return statistics.fmean(e["elapsed_s"] for e in self.entries)


def verdicts(entries: list[dict], rules: dict[str, SeedRule] | None = None) -> dict[tuple[str, str], Verdict]:
    """(id, budget) -> Verdict over the default-config entries (variants with overrides never count). `rules`: each
    experiment's seed rule (default ALL_SEEDS)."""
    out: dict[tuple[str, str], Verdict] = {}
    rules = rules or {}
    for e in entries:
        if e["overrides"]:
            continue
        key = (e["id"], e["budget"])
        out.setdefault(key, Verdict(e["id"], e["budget"], rule=rules.get(e["id"], ALL_SEEDS))).entries.append(e)
    return out


def seed_rules(experiments) -> dict[str, SeedRule]:
    """id -> seed rule of the registered experiments (a list or an id -> Experiment mapping)."""
    exps = experiments.values() if isinstance(experiments, dict) else experiments
    return {e.id: e.seed_rule for e in exps}


# ---------------------------------------------------------------------------------------------- the README table


def _md(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _cell(v: Verdict | None) -> str:
    """`word: headline; seeds; time`; an inconclusive claim shows its reason instead of a number that decides
    nothing."""
    if v is None:
        return "not yet measured"
    word = {"not reproduced": "**not reproduced**", "inconclusive": "*inconclusive*"}.get(v.word, v.word)
    head = "" if v.word == "inconclusive" else v.headline
    bits = [b for b in (head, v.seeds_text, fmt.duration(v.elapsed)) if b]
    if v.word == "inconclusive":
        bits.append(v.why)
    return f"{word}: {'; '.join(b for b in bits if b)}"


def readme_table(experiments: list, entries: list[dict]) -> str:
    """The README's results table, in reading-list order: one row per claim, its quick and full verdicts (pass:
    reproduced, fail: not reproduced, inconclusive), then the paper's own number."""
    from mlreads.core.papers import reading_key

    found = verdicts(entries, seed_rules(experiments))
    order = sorted(enumerate(experiments), key=lambda ie: reading_key(ie[1].id, ie[0]))
    rows = ["| id | claim | quick | full | paper |", "|---|---|---|---|---|"]
    for _, e in order:
        quick = _cell(found.get((e.id, "quick"))) if "quick" in e.configs else "no quick budget"
        full = _cell(found.get((e.id, "full"))) if "full" in e.configs else "no full budget"
        rows.append(f"| `{e.id}` | {_md(e.claim)} | {_md(quick)} | {_md(full)} | {_md(e.paper_value)} |")
    return "\n".join(rows) + "\n"


def readme_block(experiments: list, entries: list[dict]) -> str:
    """The table between its markers, as README.md holds it."""
    return f"{README_START}\n{readme_table(experiments, entries)}{README_END}"


def readme_section(readme_text: str) -> str | None:
    """The text between the results markers of README.md, or None when the markers are absent."""
    start, end = readme_text.find(README_START), readme_text.find(README_END)
    if start < 0 or end < start:
        return None
    return readme_text[start : end + len(README_END)]
