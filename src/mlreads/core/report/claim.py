"""A claim's page in the report: what is tested, the verdict per budget under the experiment's seed rule, why it is
not reproduced where it is not, its design history, and links to its code, its paper and each published run.

    reports/claims/<id with / as __>/index.html

Its "Read it" list joins paper, code and walkthrough: the paper's links with the section or figure of the claim
(core/papers.py `WHERE`), the experiment file (the run function's module, `exp.run.__module__`, so it follows
renames), the files that implement the paper (`code_files`) and the paper's walkthrough notebook (`walkthrough`),
linked once notebooks/ exists beside src/. Links into the repository are relative to the page, so they resolve in a
report written inside the repository checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlreads.core import fmt
from mlreads.core.papers import WHERE, code_files, walkthrough
from mlreads.core.report.page import esc, href, page, paper_links
from mlreads.core.run.verdict import WORDS, over_budget

WORD_CLASS = {"reproduced": "pass", "not reproduced": "fail", "mixed": "mixed", "inconclusive": "inconclusive"}


def claim_folder(exp_id: str) -> tuple[str, str]:
    return ("claims", exp_id.replace("/", "__"))


def anchor(exp_id: str) -> str:
    return "claim-" + exp_id.replace("/", "__")


def code_file(exp) -> tuple[str, Path] | None:
    """(path as shown, e.g. 'src/mlreads/vision/exp_relu_vs_tanh.py', the file) of the experiment's run function;
    None when the run function is not in the mlreads package (a test's toy experiment)."""
    import mlreads

    module = getattr(getattr(exp, "run", None), "__module__", "") or ""
    parts = module.split(".")
    if parts[0] != "mlreads" or len(parts) < 2:
        return None
    path = Path(mlreads.__file__).resolve().parent.joinpath(*parts[1:]).with_suffix(".py")
    return ("src/" + "/".join(parts) + ".py", path) if path.is_file() else None


def code_href(exp, from_dir: Path) -> tuple[str, str] | None:
    """(label, relative link from `from_dir`) of the experiment's code file, or None."""
    found = code_file(exp)
    return None if found is None else (found[0], _relative(found[1], from_dir))


def _relative(path: Path, from_dir: Path) -> str:
    return href(*Path(os.path.relpath(path, Path(from_dir).resolve())).parts)


def repository() -> Path | None:
    """The repository checkout the package runs from (the folder holding src/mlreads), or None (an installed copy)."""
    import mlreads

    package = Path(mlreads.__file__).resolve().parent
    root = package.parents[1]
    return root if package.parent.name == "src" and (root / "src" / "mlreads") == package else None


def model_files(exp_id: str, exp) -> list[tuple[str, Path]]:
    """(label 'src/mlreads/gpt/model.py', file) of each file that implements the claim's paper, where it exists."""
    import mlreads

    package = Path(mlreads.__file__).resolve().parent
    found = [(f"src/mlreads/{rel}", package / rel) for rel in code_files(exp_id, getattr(exp, "source", ""))]
    return [(label, path) for label, path in found if path.is_file()]


def walkthrough_file(exp_id: str) -> tuple[str, Path | None] | None:
    """(label 'notebooks/gpt.ipynb', the file once notebooks/ exists in the checkout, else None); None off the
    reading list."""
    rel, root = walkthrough(exp_id), repository()
    if rel is None:
        return None
    return rel, (root / rel if root is not None and (root / "notebooks").is_dir() else None)


def read_it(exp_id: str, exp, page_dir: Path) -> str:
    """The claim page's list joining the paper (with the claim's section or figure), the experiment file, the model
    files and the walkthrough."""
    items = []
    paper = paper_links(exp_id)
    if paper:
        where = WHERE.get(exp_id)
        items.append(f"the paper: {paper}" + (f", {esc(where)}" if where else ""))
    code = code_href(exp, page_dir) if exp is not None else None
    if code:
        items.append(f'the experiment: <a href="{esc(code[1])}"><code>{esc(code[0])}</code></a>')
    models = [f'<a href="{esc(_relative(path, page_dir))}"><code>{esc(label)}</code></a>'
              for label, path in model_files(exp_id, exp)]  # fmt: skip
    if models:
        items.append("the implementation: " + ", ".join(models))
    notebook = walkthrough_file(exp_id)
    if notebook is not None:
        label, path = notebook
        shown = (f'<a href="{esc(_relative(path, page_dir))}"><code>{esc(label)}</code></a>' if path is not None
                 else f'<code>{esc(label)}</code> <span class="muted">(not written yet)</span>')  # fmt: skip
        items.append(f"the walkthrough: {shown}")
    return "<h2>Read it</h2><ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>" if items else ""


def links_line(exp_id: str, exp, from_dir: Path, page_link: str | None = None) -> str:
    """`page · code · paper` links for a claim row or page (each only where it exists)."""
    bits = [f'<a href="{esc(page_link)}">claim page</a>'] if page_link else []
    code = code_href(exp, from_dir) if exp is not None else None
    if code:
        bits.append(f'<a href="{esc(code[1])}" title="{esc(code[0])}">code: {esc(Path(code[0]).name)}</a>')
    paper = paper_links(exp_id)
    if paper:
        bits.append(paper)
    return " · ".join(bits)


def _up(back: tuple[str, ...], link: str) -> str:
    """A link from the report's root (already quoted), seen from a page `back` levels down."""
    return "/".join((*back, link))


def _design_line(number: int, entries: list[dict], page_of: dict[int, str], back: tuple[str, ...]) -> str:
    """`design n: not reproduced at quick (s0)`: the words of a design's entries, with links to their pages."""
    by_budget: dict[str, list[dict]] = {}
    for e in entries:
        if not e["overrides"]:
            by_budget.setdefault(e["budget"], []).append(e)
    parts = []
    for budget, es in by_budget.items():
        words = sorted({WORDS[e["verdict"]] for e in es})
        seeds = ", ".join(f'<a href="{esc(_up(back, page_of[id(e)]))}">s{e["seed"]}</a>' if id(e) in page_of
                          else f"s{e['seed']}" for e in sorted(es, key=lambda e: e["seed"]))  # fmt: skip
        parts.append(f"{esc(' / '.join(words))} at {esc(budget)} ({seeds})")
    return f"design {number}: " + ("; ".join(parts) or "no default-config entries")


def disagreement(verdicts: dict) -> str:
    """A paragraph for a claim whose quick and full verdicts differ: which to believe, and why ("" otherwise)."""
    quick, full = verdicts.get("quick"), verdicts.get("full")
    if quick is None or full is None or quick.word == full.word:
        return ""
    if full.word == "inconclusive":
        advice = (f"The full run could not measure the claim (a precondition failed: {esc(full.why or 'see its page')}), so "
                  "it neither confirms nor overturns quick; quick's verdict stands at its smaller scale only.")
    else:
        advice = ("Believe the full verdict: the full budget is the paper's recipe or the largest faithful scale this "
                  "CPU runs (see <b>Full scale</b> below), where the claim is meant to hold; quick is laptop scale, "
                  "where an effect that needs size or training time may not show yet, or may show by luck of a "
                  "small run.")
    return (f'<p class="disagree"><b>Quick and full disagree:</b> {esc(quick.word)} at quick, {esc(full.word)} at '
            f"full. {advice}</p>")


def claim_page(exp_id: str, about: dict, verdicts: dict, designs: list, page_of: dict[int, str], exp,
               page_dir: Path) -> str:  # fmt: skip
    """The page of one claim. `about`: paper, claim, paper_value, budgets; `verdicts`: budget -> ledger Verdict;
    `designs`: its superseded designs (history.Design), oldest first; `page_of`: id(entry) -> link from the report
    root; `exp`: the registered experiment (None when unregistered)."""
    back = ("..", "..")
    rows = []
    for b in [b for b in about["budgets"] if b != "smoke"]:  # smoke runs are pipeline checks, never in the ledger
        v = verdicts.get(b)
        if v is None:
            rows.append(f'<tr><td>{esc(b)}</td><td class="unmeasured">not yet measured</td><td></td></tr>')
            continue
        seeds = ", ".join(f'<a href="{esc(_up(back, page_of[id(e)]))}">s{e["seed"]}</a>' for e in
                          sorted(v.entries, key=lambda e: e["seed"]) if id(e) in page_of)  # fmt: skip
        late = [e for e in v.entries if over_budget(e)]
        bits = [x for x in (v.headline, v.seeds_text, f"{fmt.duration(v.elapsed)} wall") if x]
        if late:
            bits.append(f"over the {b} budget: seed(s) {', '.join(str(e['seed']) for e in late)}")
        why = f'<br><span class="why">why: {esc(v.why)}</span>' if v.why else ""
        rows.append(f'<tr><td>{esc(b)}</td><td><span class="{WORD_CLASS[v.word]}">{esc(v.word)}</span>{why}</td>'
                    f'<td>{esc("; ".join(bits))}<br>{seeds}</td></tr>')  # fmt: skip
    table = ('<div class="scroll"><table><tr><th>budget</th><th>verdict (results ledger)</th><th>measured</th></tr>'
             + "".join(rows) + "</table></div>" + disagreement(verdicts))  # fmt: skip
    history = ""
    if designs:
        items = [f"<li>{_design_line(d.number, d.entries, page_of, back)}; superseded by commit "
                 f"<code>{esc(d.commit[:12])}</code> ({esc(d.date[:10])}): {esc(d.why)}</li>" for d in designs]  # fmt: skip
        current = [f"{esc(v.word)} at {esc(b)} ({esc(v.seeds_text)})" for b, v in verdicts.items()]
        items.append(f"<li>design {len(designs) + 1} (current): {'; '.join(current) or 'not yet measured'}</li>")
        history = ("<h2>Design history</h2><p class=\"muted\">Each redesign moved the entries it replaced to "
                   f"<code>results/{esc(exp_id)}/superseded/</code>, with the flaw in one line.</p><ol>"
                   + "".join(items) + "</ol>")  # fmt: skip
    tested = ""
    if exp is not None:
        parts = []
        for b in exp.budgets:
            pre = "".join(f"<li>precondition: <code>{esc(c.expected)}</code></li>" for c in exp.preconditions.get(b, ()))
            chk = "".join(f"<li>check: <code>{esc(c.expected)}</code></li>" for c in exp.checks[b])
            kind = " (a pipeline check, not the claim's)" if b == "smoke" else ""
            parts.append(f"<h3>{esc(b)}{kind}</h3><ul>{pre}{chk}</ul>")
        tested = ("<h2>What is tested</h2><p>A failed precondition makes a run <span class=\"inconclusive\">"
                  "inconclusive</span>; a check that declares its noise passes or fails only by two standard errors. "
                  f"<b>Across seeds:</b> {esc(exp.seed_rule.text)}.</p>" + "".join(parts))  # fmt: skip
        if exp.full_scale:
            tested += f"<p><b>Full scale</b> (against the paper's): {esc(exp.full_scale)}</p>"
    links = links_line(exp_id, exp, page_dir)
    body = (f'<p><a href="{esc(href(*back, "index.html"))}#{esc(anchor(exp_id))}">← all claims</a></p>'
            f"<h1>{esc(exp_id)}</h1><p><b>Paper:</b> {esc(about['paper'])}" + (f" · {links}" if links else "")
            + f"<br><b>Claim:</b> {esc(about['claim'])}<br><b>Paper value:</b> {esc(about['paper_value'])}</p>"
            + f"{read_it(exp_id, exp, page_dir)}<h2>Verdicts</h2>{table}{history}{tested}")  # fmt: skip
    return page(f"{exp_id}: claim", body)
