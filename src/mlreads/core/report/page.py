"""One run's page in the static report: the claim, the evidence of each check, figures with captions, text artifacts
rendered as tables where they are tables, metrics, config, environment and the command that reproduces the run.

Everything taken from a result.json is escaped (`esc`, text and attribute context alike); file names from it are
resolved inside the run folder by `results.inside` before anything is read or copied.
"""

from __future__ import annotations

import ast
import html
import json
import re
import shlex
from pathlib import Path
from urllib.parse import quote

from mlreads.core import fmt
from mlreads.core.papers import paper_of
from mlreads.core.run.results import BadResult, inside, read_limited
from mlreads.core.run.verdict import outcome, over_budget, status, why

MAX_TEXT_BYTES = 1_000_000
MAX_LITERAL_CHARS = 100_000

CSS = """
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,sans-serif;max-width:1100px;margin:1.5em auto;padding:0 .8em;color:#222}
h1{font-size:1.5em;overflow-wrap:anywhere}h2{font-size:1.2em;margin-top:1.6em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.35em .5em;text-align:left;
vertical-align:top}th{background:#f4f4f4}td.claim{min-width:14em}td.v{min-width:11em;max-width:24em}
.pass{color:#0a7a2f;font-weight:600}.fail{color:#b3261e;font-weight:600}.mixed{color:#8a5a00;font-weight:600}
.inconclusive{color:#5b3fa8;font-weight:600}.why{font-size:14px;white-space:normal;display:inline-block;min-width:14em}nav ul{columns:2;margin:.3em 0}
.pipe-ok{color:#666}.pipe-broken{color:#8a5a00;font-weight:600}.unmeasured{color:#888;font-style:italic}
.banner{background:#f4f4f4;border-left:4px solid #999;padding:.6em .8em;margin:1em 0}
.warn{background:#fff4e0;border-left:4px solid #c77d00;padding:.6em .8em;margin:1em 0}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:13px;white-space:pre-wrap;overflow-wrap:anywhere}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.5em 0}figure{margin:1em 0}
figcaption{color:#444;font-size:14px}code{background:#f2f2f2;padding:0 .2em;overflow-wrap:anywhere}.muted{color:#666}
@media (max-width:700px){body{font-size:14px}td.claim{min-width:10em}}
"""


def esc(x) -> str:
    """Escape for HTML text and double-quoted attributes alike."""
    return html.escape(str(x), quote=True)


def page(title: str, body: str) -> str:
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n{body}\n</body></html>\n")  # fmt: skip


def href(*parts: str) -> str:
    """A relative link from path parts, each percent-quoted (parts come from validated names only)."""
    return "/".join(quote(p, safe="") if p not in ("..", ".") else p for p in parts)


def reproduce_command(result: dict) -> str:
    args = ["mlreads", "run", result["id"], "--budget", result["budget"], "--seed", str(result["seed"])]
    for k, v in result.get("overrides", {}).items():
        args += ["--set", f"{k}={v}"]
    return shlex.join(args)


def paper_links(exp_id: str) -> str:
    paper = paper_of(exp_id)
    if paper is None:
        return ""
    return " · ".join(f'<a href="{esc(url)}">{esc(label)}</a>' for label, url in paper.links)


# ---------------------------------------------------------------------------------------------- text artifacts


def _table(rows: list[list[str]], header: list[str] | None) -> str:
    head = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<div class="scroll"><table>{head}{body}</table></div>'


def _md_cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def _literal_table(text: str) -> str | None:
    """A Python literal (a dict, a list of dicts, a list of rows) as an HTML table; None when it is not one."""
    if len(text) > MAX_LITERAL_CHARS:
        return None
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(value, dict) and value:
        return _table([[str(k), fmt.value(v)] for k, v in value.items()], ["key", "value"])
    if isinstance(value, list | tuple) and value:
        if all(isinstance(r, dict) for r in value):
            keys = list(dict.fromkeys(k for r in value for k in r))
            return _table([[fmt.value(r.get(k, "")) for k in keys] for r in value], [str(k) for k in keys])
        if all(isinstance(r, list | tuple) for r in value):
            return _table([[fmt.value(c) for c in r] for r in value], None)
    return None


_NUM = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?%?")


def _numeric_row(line: str) -> list[str] | None:
    cells = line.split()
    return cells if len(cells) >= 2 and all(_NUM.fullmatch(c) for c in cells) else None


def render_text(text: str) -> str:
    """Markdown tables become HTML tables, so do grids of numbers (2+ lines of the same number of columns) and a
    text that is one Python literal; everything else stays preformatted."""
    literal = _literal_table(text)
    if literal is not None:
        return literal
    lines = text.splitlines()
    out, plain, i = [], [], 0

    def flush():
        if plain and any(p.strip() for p in plain):
            out.append(f"<pre>{esc(chr(10).join(plain))}</pre>")
        plain.clear()

    while i < len(lines):
        if lines[i].lstrip().startswith("|") and i + 1 < len(lines) and _SEP.match(lines[i + 1]):
            flush()
            header = _md_cells(lines[i])
            rows, i = [], i + 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_md_cells(lines[i]))
                i += 1
            out.append(_table(rows, header))
            continue
        first = _numeric_row(lines[i])
        if first is not None:
            j = i + 1
            while j < len(lines) and (row := _numeric_row(lines[j])) is not None and len(row) == len(first):
                j += 1
            if j - i >= 2:
                flush()
                out.append(_table([lines[k].split() for k in range(i, j)], None))
                i = j
                continue
        plain.append(lines[i])
        i += 1
    flush()
    return "".join(out)


def text_sections(result: dict) -> str:
    if not result.get("_dir"):  # a ledger entry: its text artifacts stayed with the run
        return ""
    parts = []
    for name, fname in result.get("texts", {}).items():
        path = inside(result["_dir"], fname) if result.get("_dir") else None
        if path is None:
            parts.append(f"<h3>{esc(name)}</h3><p class=\"muted\">(not found inside the run folder)</p>")
            continue
        try:
            text = read_limited(path, MAX_TEXT_BYTES).decode("utf-8", errors="replace")
        except BadResult as e:
            parts.append(f"<h3>{esc(name)}</h3><p class=\"muted\">({esc(e)})</p>")
            continue
        parts.append(f"<h3>{esc(name)}</h3>{render_text(text)}")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------- the page


def checks_table(result: dict, key: str = "checks") -> str:
    """One row per check (or precondition, `key="preconditions"`): its outcome, and the relation with the measured
    values of both sides (and the interval of a noisy one). The check's name is added only where it says something
    the relation does not (a `holds` check's metric, a custom name)."""
    words = {"checks": {"pass": "ok", "fail": "failed", "inconclusive": "within noise"},
             "preconditions": {"pass": "met", "fail": "not met", "inconclusive": "not met (within noise)"}}[key]  # fmt: skip
    rows = []
    unjudged = key == "checks" and any(outcome(p) != "pass" for p in result.get("preconditions") or ())
    for c in result.get(key) or []:
        got = outcome(c)
        cls, word = {"pass": "pass", "fail": "fail", "inconclusive": "inconclusive"}[got], words[got]
        if key == "preconditions" and got != "pass":
            cls = "inconclusive"  # an unmet precondition makes the run inconclusive, never a fail
        if result["budget"] == "smoke" and cls != "inconclusive":
            cls = "pipe-ok" if got == "pass" else "pipe-broken"
        if unjudged:  # the checks do not measure the claim when a precondition is not met: shown, not counted
            cls, word = "muted", f"{word} (not judged)"
        shown = fmt.evidence(c)
        name = c["name"]
        extra = "" if name == c.get("expected") or name in shown else f'<br><span class="muted">{esc(name)}</span>'
        rows.append(f"<tr><td class=\"v {cls}\">{word}</td><td><code>{esc(shown)}</code>{extra}</td></tr>")
    what = "check" if key == "checks" else "precondition"
    return (f'<div class="scroll"><table><tr><th>result</th><th>{what}, with the measured values of both sides</th></tr>'
            f"{''.join(rows)}</table></div>")  # fmt: skip


def metrics_table(metrics: dict) -> str:
    """Every metric, a value with its interval (`<name>_ci`, or `<name> ± 2 <name>_se`) shown as `93.8 [86, 97.3]`;
    lists and objects in full (a run's lists are short: its curves are in metrics.jsonl)."""
    from mlreads.core.stats import interval_of

    rows = "".join(f"<tr><td><code>{esc(k)}</code></td><td>{esc(fmt.with_interval(v, interval_of(metrics, k), None))}"
                   "</td></tr>" for k, v in metrics.items())  # fmt: skip
    return f'<div class="scroll"><table>{rows}</table></div>'


WIDE_PX = 1600  # a figure wider than this is unreadable at the page's width: it links its full-size image


def figure_html(name: str, caption: str, size: tuple[int, int] | None = None) -> str:
    """One figure with its caption; a wide one (a grid of panels) also links the image at full size."""
    full = (f' <a href="{esc(href(name))}">Open the full-size image ({size[0]} x {size[1]} px).</a>'
            if size and size[0] > WIDE_PX else "")  # fmt: skip
    return (f'<figure><img src="{esc(href(name))}" alt="{esc(caption)}"><figcaption>{esc(caption)}{full}'
            "</figcaption></figure>")


_ABBREV = ("e.g.", "i.e.", "et al.", "vs.", "Fig.", "Eq.", "Sec.", "cf.", "approx.", "No.")
_LABEL = re.compile(r"[A-Z][\w'()/-]*(?: [\w'()/-]+){0,3}:")  # "Deviations:", "Reading list:", "Smoke:"


def paragraphs(text: str, most_words: int = 90) -> list[str]:
    """Notes as paragraphs: the author's blank lines first; a long block is then cut at sentence ends, before a
    labelled sentence ("Deviations: ...") or once it passes `most_words` words."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        sentences, current = _sentences(" ".join(block.split())), []
        for s in sentences:
            size = sum(len(x.split()) for x in current)
            if current and (_LABEL.match(s) or size + len(s.split()) > most_words):
                out.append(" ".join(current))
                current = []
            current.append(s)
        if current:
            out.append(" ".join(current))
    return out


def _sentences(text: str) -> list[str]:
    parts, start = [], 0
    for m in re.finditer(r"(?<=[.!?])\s+(?=[A-Z(\"'])", text):
        if not text[: m.start()].endswith(_ABBREV):
            parts.append(text[start : m.start()])
            start = m.end()
    return parts + [text[start:]]


def run_page(result: dict, figures: list[tuple[str, str]], back: str, extra: str = "") -> str:
    """The page of one run. `figures`: (file name next to the page, caption). `back`: link to the index."""
    cls, word = status(result)
    rid, budget = result["id"], result["budget"]
    if budget == "smoke":
        banner = ('<p class="banner">A <b>smoke</b> run is a pipeline check: the code runs and learns something at a '
                  "tiny scale. It does not say whether the claim reproduces; the quick and full verdicts in the "
                  "results ledger do (see the index).</p>")  # fmt: skip
    else:
        reason = why(result)
        banner = (f'<p class="banner">The claim\'s check at the <b>{esc(budget)}</b> budget, seed {esc(result["seed"])}: '
                  f'<span class="{cls}">{esc(word)}</span>.' + (f"<br>Why: {esc(reason)}" if reason else "") + "</p>")  # fmt: skip
    late = over_budget(result)
    if late:
        banner += f'<div class="warn">This run went {esc(late)}.</div>'  # fmt: skip
    over = ""
    if result.get("overrides"):
        items = "".join(f"<li><code>{esc(k)}={esc(v)}</code></li>" for k, v in result["overrides"].items())
        over = (f'<div class="warn">This run changed the registered config:<ul>{items}</ul>Its checks are about this '
                "variant; the claim and paper value below describe the registered experiment.</div>")  # fmt: skip
    figs = "".join(figure_html(*f) for f in figures)
    notes = ("<h2>Notes</h2>" + "".join(f"<p>{esc(p)}</p>" for p in paragraphs(result["notes"]))
             if result.get("notes") else "")  # fmt: skip
    env = result.get("env", {})
    env_bits = [f"{k} {fmt.value(env[k])}" for k in ("commit", "date", "machine", "threads", "torch", "python") if
                env.get(k) is not None]  # fmt: skip
    if env.get("dirty"):
        env_bits.append("sources had uncommitted changes")
    links = paper_links(rid)
    cpu = f", {esc(fmt.duration(result['cpu_s']))} CPU" if isinstance(result.get("cpu_s"), int | float) else ""
    sittings = result.get("sittings") or []
    if len(sittings) > 1:  # a resumed run: its times are summed over the sittings (core/run/sittings.py)
        steps = "; ".join(", ".join(f"{k} from step {v}" for k, v in (s.get("resumed_from") or {}).items())
                          for s in sittings[1:] if s.get("resumed_from"))  # fmt: skip
        kept = sum(len(s.get("stages_reused") or ()) for s in sittings)
        steps += (("; " if steps else "") + fmt.plural(kept, "finished stage") + " read back") if kept else ""
        cpu += esc(f", in {len(sittings)} sittings (resumed from its checkpoints{': ' + steps if steps else ''}; "
                   "times summed over the sittings)")
    pre = ""
    if result.get("preconditions"):
        pre = ("<h2>Preconditions</h2><p class=\"muted\">The conditions under which the checks measure the claim: "
               "when one is not met, the run is inconclusive.</p>" + checks_table(result, "preconditions"))  # fmt: skip
    body = f"""<p><a href="{esc(back)}">← all claims</a></p>
<h1>{esc(rid)} <span class="{cls}">{esc(word)}</span></h1>
{banner}{over}
<p><b>Paper:</b> {esc(result.get('paper', ''))}{(' · ' + links) if links else ''}<br><b>Claim:</b> {esc(result.get('claim', ''))}<br>
<b>Paper value:</b> {esc(result.get('paper_value', ''))}<br>
<b>Run:</b> {esc(budget)} budget, seed {esc(result['seed'])}, {esc(fmt.duration(result['elapsed_s']))} wall{cpu}</p>
{extra}
{pre}<h2>Checks</h2>{checks_table(result)}
<h2>Figures</h2>{figs or '<p class="muted">none</p>'}
{text_sections(result)}
{notes}
<h2>Metrics</h2>{metrics_table(result.get('metrics', {}))}
<h2>Config</h2><pre>{esc(json.dumps(result.get('config', {}), indent=2, default=str))}</pre>
<h2>Environment</h2><p class="muted">{esc('; '.join(env_bits)) or 'not recorded'}</p>
<h2>Reproduce</h2><pre>{esc(reproduce_command(result))}</pre>"""
    return page(f"{rid} ({budget}, seed {result['seed']})", body)


def default_caption(fname: str) -> str:
    return Path(fname).stem.replace("_", " ").replace("-", " ")
