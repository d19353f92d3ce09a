"""A static HTML report: per claim, the reproduction verdicts from the results ledger and the pipeline checks of the
runs on this machine; one page per run. Works offline (no CDN, no script).

    reports/index.html                                   claims in reading-list order, with a table of contents
    reports/claims/<id with / as __>/index.html                  a claim: verdicts, why, design history, code
    reports/runs/<id with / as __>/<run folder>/index.html       a local run: checks with both sides, figures, ...
    reports/ledger/<id with / as __>/<budget>-s<seed>/index.html a published ledger entry, with its figures
    reports/ledger/<id with / as __>/design-<n>/<budget>-s<seed>/ a superseded entry (the design history)

Two different things are shown and never mixed up:
- **reproduction verdicts** (quick, full) come only from the ledger (`results/`, written by `mlreads publish`),
  grouped over seeds by each experiment's seed rule: reproduced, not reproduced, inconclusive (its own colour) or
  mixed; every claim that is not reproduced says why (the failing check or precondition, both sides);
- **pipeline checks** are the smoke runs found under `--runs`: "pipeline ok" means the code runs and learns something
  at a tiny scale, never that the claim reproduces.

The report reads folders that may come from someone else: each result.json is validated (core/run/results.py), a bad one
is skipped with a one-line warning, every value is escaped, and only files that resolve inside their run folder are
read or copied.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from mlreads.core import fmt
from mlreads.core.papers import paper_of, reading_key
from mlreads.core.report.claim import (
    WORD_CLASS,
    anchor,
    claim_folder,
    claim_page,
    links_line,
)
from mlreads.core.report.history import load_history
from mlreads.core.report.ledger import Verdict, load_ledger, seed_rules, verdicts
from mlreads.core.report.page import (
    default_caption,
    esc,
    href,
    page,
    paper_links,
    run_page,
    status,
)
from mlreads.core.run.results import (
    BUDGETS,
    MAX_ARTIFACT_BYTES,
    NAME_RE,
    BadResult,
    find_results,
    inside,
    load_result,  # fmt: skip
    printable,
    read_limited,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_FIGURES = 100  # per run: a hostile result.json cannot make the report copy one file thousands of times


def _warn(message: str) -> None:
    print(f"mlreads: warning: {message}", file=sys.stderr)


def collect(runs: Path, warn: Callable[[str], None] = _warn) -> list[dict]:
    """Every valid result.json under `runs`, each with its run folder; bad ones are skipped with a warning."""
    runs = Path(runs)
    results = []
    for path in find_results(runs):
        try:
            results.append(load_result(path, runs))
        except BadResult as e:
            warn(f"skipped {printable(path.parent.relative_to(runs))}: {printable(e)}")
    order = {b: i for i, b in enumerate(BUDGETS)}
    return sorted(results, key=lambda r: (r["id"], order[r["budget"]], r["seed"], str(r["_dir"])))


def _slug(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).lstrip(".") or "run"
    return name[:100]


def _copy_figures(result: dict, page_dir: Path, warn: Callable[[str], None]) -> list[tuple]:
    """Copy the run's PNG figures that resolve inside its run folder; return (file name, caption, (width, height))
    for each."""
    shown, used, sources = [], set(), set()
    if len(result["figures"]) > MAX_FIGURES:
        warn(f"{result['id']}: {len(result['figures'])} figures listed; showing the first {MAX_FIGURES}")
    for fig in result["figures"][:MAX_FIGURES]:
        src = inside(result["_dir"], fig)
        if src is None:
            warn(f"{result['id']}: figure {printable(repr(fig[:80]))} is not a file inside its run folder; not shown")
            continue
        if src in sources:
            continue
        sources.add(src)
        try:
            data = read_limited(src, MAX_ARTIFACT_BYTES)
        except BadResult as e:
            warn(f"{result['id']}: figure {printable(repr(fig[:80]))}: {printable(e)}; not shown")
            continue
        if not data.startswith(PNG_MAGIC):
            warn(f"{result['id']}: figure {printable(repr(fig[:80]))} is not a PNG file; not shown")
            continue
        name = _slug(Path(fig).name)
        if not name.lower().endswith(".png"):
            name += ".png"
        while name in used or name == "index.html":
            name = "_" + name
        used.add(name)
        (page_dir / name).write_bytes(data)
        shown.append((name, result["captions"].get(fig) or default_caption(fig), png_size(data)))
    return shown


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels from a PNG's IHDR chunk, or None when the header is not there."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _ledger_cell(v: Verdict | None, page_of: dict[int, str], budget: str, has_budget: bool) -> str:
    """The verdict, why it is not reproduced (the failing check or precondition with both sides; a headline number
    is shown only for what is reproduced or mixed), seeds, time, and links to each seed's page."""
    if not has_budget:
        return f'<span class="unmeasured">no {budget} budget</span>'
    if v is None:
        return '<span class="unmeasured">not yet measured</span>'
    links = ", ".join(f'<a href="{esc(page_of[id(e)])}">s{e["seed"]}</a>' for e in v.entries if id(e) in page_of)
    head = v.headline if v.word in ("reproduced", "mixed") else ""
    bits = [b for b in (head, v.seeds_text, fmt.duration(v.elapsed)) if b]
    why = f'<br><span class="why">why: {esc(v.why)}</span>' if v.why else ""
    return (f'<span class="{WORD_CLASS[v.word]}">{esc(v.word)}</span>{why}<br><span class="muted">{esc("; ".join(bits))}'
            f"</span> {links}")  # fmt: skip


def _local_cell(runs: list[tuple[dict, str]]) -> str:
    if not runs:
        return '<span class="unmeasured">no run here</span>'
    items = []
    for r, link in runs:
        cls, word = status(r)
        if r["budget"] != "smoke":
            word = f"{word} (not in the ledger)"
        label = f"{r['budget']} s{r['seed']}" + (" (overrides)" if r["overrides"] else "")
        items.append(f'<a href="{esc(link)}">{esc(label)}</a>: <span class="{cls}">{esc(word)}</span>')
    return "<br>".join(items)


def write_report(runs: Path | None, out: Path, results: Path | None = None, experiments: list | None = None,
                 warn: Callable[[str], None] = _warn) -> Path:  # fmt: skip
    """Write the report of the runs under `runs` and the ledger under `results` into `out`; return the index path.

    `experiments`: the registered experiments (default: every registered one), so claims without any result still
    get a row ("not yet measured")."""
    if experiments is None:
        from mlreads.core.run.registry import load_all

        experiments = list(load_all().values())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = out.resolve()

    def page_folder(rel: tuple[str, ...]) -> Path:
        """A page's folder inside `out`; a symlink left in `out` (by an earlier copy of a report) is replaced by a
        real folder, never written through."""
        folder = out
        for part in rel:
            folder = folder / part
            if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
                folder.unlink()
            folder.mkdir(exist_ok=True)
        if not folder.resolve().is_relative_to(root):
            raise OSError(f"{folder} resolves outside the report folder")
        for stale in folder.iterdir():
            if stale.is_symlink():
                stale.unlink()
        return folder

    local = collect(runs, warn) if runs is not None else []
    ledger = load_ledger(results, warn) if results is not None else []

    # --- pages: local runs, then ledger entries
    local_by_id: dict[str, list[tuple[dict, str]]] = {}
    used: set[str] = set()
    for r in local:
        folder = r["_dir"].name if NAME_RE.fullmatch(r["_dir"].name) else f"{r['budget']}-s{r['seed']}"
        rel = ("runs", r["id"].replace("/", "__"), folder)
        while "/".join(rel) in used:
            rel = (*rel[:-1], rel[-1] + "_")
        used.add("/".join(rel))
        page_dir = page_folder(rel)
        figures = _copy_figures(r, page_dir, warn)
        (page_dir / "index.html").write_text(run_page(r, figures, href("..", "..", "..", "index.html")))
        local_by_id.setdefault(r["id"], []).append((r, href(*rel, "index.html")))

    history = load_history(results, warn) if results is not None else {}
    page_of: dict[int, str] = {}
    superseded = [(d, e) for designs in history.values() for d in designs for e in d.entries]
    for design, e in [(None, e) for e in ledger] + superseded:
        stem = _slug(Path(e["_file"]).name.removesuffix(".json"))
        rel = ("ledger", e["id"].replace("/", "__"), *((f"design-{design.number}",) if design else ()), stem)
        page_dir = page_folder(rel)
        (page_dir / "index.html").write_text(_ledger_page(e, design, results, page_dir, rel, warn))
        page_of[id(e)] = href(*rel, "index.html")

    # --- the index: one row per claim, grouped by paper in reading-list order
    known = {e.id: (i, e) for i, e in enumerate(experiments)}
    ids = set(known) | {r["id"] for r in local} | {e["id"] for e in ledger} | set(history)
    found = verdicts(ledger, seed_rules(experiments))
    ordered = sorted(ids, key=lambda i: reading_key(i, known[i][0] if i in known else 10**6))

    def about(exp_id: str) -> tuple[str, str, str, tuple[str, ...]]:
        if exp_id in known:
            e = known[exp_id][1]
            return e.paper, e.claim, e.paper_value, tuple(e.budgets)
        old = [e for d in history.get(exp_id, []) for e in d.entries]
        r = next(x for x in [*local, *ledger, *old] if x["id"] == exp_id)
        return r.get("paper", ""), r.get("claim", ""), r.get("paper_value", ""), BUDGETS

    sections, current, rows, toc = [], None, [], []
    counts = {"quick": {"reproduced": 0, "not reproduced": 0, "mixed": 0, "inconclusive": 0, None: 0}}
    counts["full"] = dict(counts["quick"])
    for exp_id in ordered:
        prefix = exp_id.split("/", 1)[0]
        if prefix != current:
            if rows:
                sections.append(_section(current, rows))
            current, rows = prefix, []
            toc.append(prefix)
        paper, claim, paper_value, budgets = about(exp_id)
        exp = known[exp_id][1] if exp_id in known else None
        cells = []
        for b in ("quick", "full"):
            v = found.get((exp_id, b))
            if b in budgets and exp_id in known:  # the summary counts registered claims only
                counts[b][v.word if v else None] += 1
            cells.append(f'<td class="v">{_ledger_cell(v, page_of, b, b in budgets)}</td>')
        rel = claim_folder(exp_id)
        (page_folder(rel) / "index.html").write_text(claim_page(
            exp_id, {"paper": paper, "claim": claim, "paper_value": paper_value, "budgets": budgets},
            {b: found[(exp_id, b)] for b in BUDGETS if (exp_id, b) in found}, history.get(exp_id, []), page_of, exp,
            out.joinpath(*rel)))  # fmt: skip
        links = links_line(exp_id, exp, out)
        if history.get(exp_id):
            n = len(history[exp_id])
            links += f'<br><span class="muted">{n} earlier design{"s" if n > 1 else ""} superseded (see its page)</span>'
        rows.append(f'<tr id="{esc(anchor(exp_id))}"><td class="claim"><a href="{esc(href(*rel, "index.html"))}">'
                    f"<b>{esc(exp_id)}</b></a><br>{esc(claim)}<br><span class=\"muted\">paper: {esc(paper_value)}"
                    f"</span><br>{links}</td>{''.join(cells)}<td>{_local_cell(local_by_id.get(exp_id, []))}</td></tr>")  # fmt: skip
    if rows:
        sections.append(_section(current, rows))

    smoke = [r for r in local if r["budget"] == "smoke"]
    n_ok = sum(r["verdict"] == "pass" for r in smoke)
    q = counts["quick"]
    f = counts["full"]
    if results is None:
        reproduction = ("no results ledger was read (<code>mlreads report</code> reads <code>results/</code> in the "
                        "mlreads clone, or <code>--results PATH</code>), so no claim's verdict is shown.")  # fmt: skip
    else:
        reproduction = (f"at quick, {fmt.plural(q['reproduced'], 'claim')} reproduced, {q['not reproduced']} not "
                        "reproduced" + (f", {q['mixed']} mixed across seeds" if q["mixed"] else "")
                        + f", {q['inconclusive']} inconclusive, {q[None]} not yet measured; at full, "
                        f"{f['reproduced']} reproduced, {f['not reproduced']} not reproduced, {f['inconclusive']} "
                        f"inconclusive, {f[None]} not yet measured. A claim is <i>inconclusive</i> when a "
                        "precondition of its test failed (the test could not tell) or its measurement lies within two "
                        "standard errors of its bound.")  # fmt: skip
    smoke_runs = fmt.plural(len(smoke), "smoke run") + (" is a pipeline check" if len(smoke) == 1 else
                                                         " are pipeline checks")  # fmt: skip
    n_local = len(local) - len(smoke)
    summary = (f"<p><b>Reproduction</b> (from the results ledger: quick and full runs published with their commit): "
               f"{reproduction}</p><p><b>This machine</b>: {smoke_runs} ({n_ok} pipeline ok, {len(smoke) - n_ok} "
               "pipeline broken). A smoke run shows that the code runs and learns something at a tiny scale; it "
               "never says that a claim reproduces."
               + (f" {fmt.plural(n_local, 'local quick/full run')} {'is' if n_local == 1 else 'are'} shown but not "
                  "counted until published (<code>mlreads publish RUN_DIR</code>)." if n_local else "")
               + "</p>")  # fmt: skip
    contents = "".join(f'<li><a href="#{esc(_paper_anchor(p))}">{esc(_title(p))}</a></li>' for p in toc)
    body = (f"<h1>mlreads: the reading list's claims, with what was measured</h1>{summary}"
            f"<nav><h2>Contents</h2><ul>{contents}</ul></nav>" + "".join(sections))  # fmt: skip
    index = out / "index.html"
    if index.is_symlink():
        index.unlink()
    index.write_text(page("mlreads report", body))
    return index


def _title(prefix: str) -> str:
    paper = paper_of(prefix + "/")
    return paper.title if paper else prefix


def _paper_anchor(prefix: str) -> str:
    return "paper-" + _slug(prefix)


def _threads(n) -> str:
    return fmt.plural(n, "thread") if isinstance(n, int) and not isinstance(n, bool) else f"{n} threads"


def _ledger_page(e: dict, design, results: Path, page_dir: Path, rel: tuple[str, ...], warn) -> str:
    """A ledger entry's page, with the figures and texts published beside it (results/<id>/<budget>-s<seed>/)."""
    evidence = Path(results) / e["_file"]
    e["_dir"] = None
    folder = evidence.with_suffix("")
    if folder.is_dir() and not folder.is_symlink() and folder.resolve().is_relative_to(Path(results).resolve()):
        e["_dir"] = folder.resolve()
    figures = _copy_figures(e, page_dir, warn) if e["_dir"] else []
    pub = e["published"]
    kept = ("Its figures and text artifacts were published beside it." if e["_dir"] else
            "It was published before the ledger kept figures: the Reproduce command redraws them.")  # fmt: skip
    extra = (f'<p class="muted">Published in the results ledger as <code>results/{esc(e["_file"])}</code> from '
             f"commit {esc(str(pub.get('commit'))[:12])}, run on {esc(pub.get('date'))}, {esc(pub.get('machine'))}, "
             f"{esc(_threads(pub.get('threads')))}, torch {esc(pub.get('torch'))}. {kept}</p>")  # fmt: skip
    if design is not None:
        extra = (f'<div class="warn">Superseded: this is design {design.number} of the claim, replaced by commit '
                 f"<code>{esc(design.commit[:12])}</code> because {esc(design.why)}. It is kept, not deleted: the "
                 "claim's page shows the design history.</div>" + extra)  # fmt: skip
    return run_page(e, figures, href(*[".."] * len(rel), "index.html"), extra)


def _section(prefix: str, rows: list[str]) -> str:
    title = _title(prefix)
    links = paper_links(prefix + "/")
    return (f'<h2 id="{esc(_paper_anchor(prefix))}">{esc(title)}</h2>' + (f"<p>{links}</p>" if links else "")
            + '<div class="scroll"><table><tr><th>claim</th><th>quick (ledger)</th><th>full (ledger)</th>'
            "<th>runs on this machine</th></tr>" + "".join(rows) + "</table></div>")  # fmt: skip
