"""What `mlreads list` and `mlreads show ID` print beyond the catalogue: each budget's time (measured in the ledger,
else the budget's promise), and one claim as a reader needs it: the paper, the claim and the paper's value, what is
tested per budget (preconditions, checks, config), the seed rule, the published results with each verdict and why,
the claim's design history, and where to read it: the paper (with the claim's section or figure), the experiment and
model files (paths in the repository) and the paper's walkthrough notebook, as on its page in the report (claim.py).
cli.py parses the arguments; this module gathers and prints."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

BUDGET_LIMITS = {"smoke": "≤30 s", "quick": "≤10 min", "full": "hours"}  # what a budget promises, shown until measured


def ledger_times(results: Path) -> dict[tuple[str, str], float]:
    """(id, budget) -> mean elapsed seconds of the published default runs (cheap: JSON only)."""
    from mlreads.core.report.ledger import load_ledger, verdicts

    return {k: v.elapsed for k, v in verdicts(load_ledger(results, warn=lambda m: None)).items()}


def estimate(exp: dict, budget: str, times: dict) -> str:
    """A budget's estimated time: the ledger's measured time where published, else the budget's limit."""
    from mlreads.core.fmt import duration

    if budget not in exp["budgets"]:
        return "-"
    t = times.get((exp["id"], budget))
    return f"{duration(t)}*" if t is not None else BUDGET_LIMITS[budget]


def describe_published(entry: dict, ledger: list[dict], found: dict, designs: list, results: Path | None) -> dict:
    """`mlreads show`'s data for one experiment: its catalogue entry (core/run/catalog.py: no torch needed), its
    published entries with their verdicts and reasons, the claim's verdict per budget under its seed rule, and its
    superseded designs."""
    from mlreads.core.papers import paper_of
    from mlreads.core.run.verdict import why

    d = dict(entry)
    exp_id, headline = d["id"], d["headline"]
    d["published"] = [{k: e[k] for k in ("budget", "seed", "verdict", "overrides", "elapsed_s", "cpu_s", "published")}
                      | {"file": f"{results}/{e['_file']}", "headline": e["metrics"].get(headline), "why": why(e)}
                      for e in ledger if e["id"] == exp_id]  # fmt: skip
    d["verdicts"] = {b: {"verdict": v.word, "seeds": v.seeds, "why": v.why} for b in d["budgets"]
                     if (v := found.get((exp_id, b)))}  # fmt: skip
    d["history"] = [{"design": g.number, "why": g.why, "commit": g.commit, "date": g.date,
                     "entries": [{"budget": e["budget"], "seed": e["seed"], "verdict": e["verdict"], "why": why(e)}
                                 for e in g.entries]} for g in designs]  # fmt: skip
    from mlreads.core.papers import WHERE, exp_file
    from mlreads.core.report.claim import model_files, walkthrough_file

    paper = paper_of(exp_id)
    d["links"] = [url for _, url in paper.links] if paper else []
    d["where"] = WHERE.get(exp_id, "")
    d["code"] = f"src/mlreads/{exp_file(exp_id)}" if paper else None  # the layout's naming rule: no import needed
    d["models"] = [label for label, _ in model_files(exp_id, SimpleNamespace(source=d.get("source", "")))]
    notebook = walkthrough_file(exp_id)
    d["walkthrough"] = None if notebook is None else notebook[0]
    d["walkthrough_written"] = notebook is not None and notebook[1] is not None and notebook[1].is_file()
    return d


def print_show(d: dict, limits: dict[str, str]) -> None:
    from mlreads.core.fmt import duration, flat, num
    from mlreads.core.run.verdict import WORDS

    print(f"{d['id']}\n  paper:        {d['paper']}")
    if d["links"]:
        print(f"  read:         {' '.join(d['links'])}" + (f" ({d['where']})" if d["where"] else ""))
    code = ([f"{d['code']} (experiment)"] if d["code"] else []) + d["models"]
    if code:
        print(f"  code:         {'; '.join(code)}")
    if d["walkthrough"]:
        print(f"  walkthrough:  {d['walkthrough']}" + ("" if d["walkthrough_written"] else " (not written yet)"))
    print(f"  claim:        {d['claim']}\n  paper value:  {d['paper_value']}")
    if d["requires"]:
        print(f"  data:         {', '.join(d['requires'])}")
    print(f"  seeds:        {d['seed_rule']}")
    for b in d["budgets"]:
        kind = "a pipeline check" if b == "smoke" else "the claim's check"
        print(f"  {b} ({kind}, {limits[b]}):")
        for c in d["preconditions"][b]:
            print(f"    precondition: {c} (else inconclusive)")
        for c in d["checks"][b]:
            print(f"    check:  {c}")
        print(f"    config: {' '.join(f'{k}={v}' for k, v in flat(d['configs'][b]).items())}")
        if d["threads"].get(b, 1) != 1:
            print(f"    threads: {d['threads'][b]} unless --threads says otherwise (measured faster on 2 cores)")
    if d["full_scale"]:
        import textwrap

        pad = " " * 16
        print(textwrap.fill(d["full_scale"], 116, initial_indent="  full scale:   ", subsequent_indent=pad))
    if d["published"]:
        print("  published results:")
        for b, v in d["verdicts"].items():
            print(f"    {b}: {v['verdict']}" + (f" ({v['why']})" if v["why"] else ""))
        for p in d["published"]:
            head = f", {d['headline']} = {num(p['headline'])}" if isinstance(p["headline"], int | float) else ""
            var = " (variant with overrides)" if p["overrides"] else ""
            print(f"    {p['budget']} seed {p['seed']}{var}: {WORDS[p['verdict']]}{head}, {duration(p['elapsed_s'])}, "
                  f"commit {str(p['published'].get('commit'))[:12]} ({p['file']})")  # fmt: skip
            if p["why"]:
                print(f"      why: {p['why']}")
    else:
        print("  published results: not yet measured")
    for g in d["history"]:
        runs = ", ".join(f"{e['budget']} s{e['seed']} {WORDS[e['verdict']]}" for e in g["entries"])
        print(f"  design {g['design']} (superseded by {g['commit'][:12]}): {g['why']}; {runs or 'no entries'}")
    if d["notes"]:
        import textwrap

        from mlreads.core.report.page import paragraphs

        pad = " " * 16
        text = "\n\n".join(textwrap.fill(p, 116, initial_indent=pad, subsequent_indent=pad)
                           for p in paragraphs(d["notes"]))  # fmt: skip
        print("  notes:" + text[len("  notes:") :])
    print()
