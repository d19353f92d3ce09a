"""A static HTML report from result.json files: a claims table and one page per run. Works offline (no CDN).

    reports/index.html                            claim, paper value, measured, verdict, budget, time
    reports/<id with / as __>/<budget>-s<seed>/index.html   figures, checks, config, texts, notes
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

from mlreads.core.registry import BUDGETS

CSS = """
body{font:15px/1.5 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.4em .5em;text-align:left;
vertical-align:top}th{background:#f4f4f4}.pass{color:#0a7a2f;font-weight:600}.fail{color:#b3261e;font-weight:600}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:13px}img{max-width:100%;border:1px solid #eee;margin:.5em 0}
code{background:#f2f2f2;padding:0 .2em}.muted{color:#666}
"""


def _e(x) -> str:
    return html.escape(str(x))


def _fmt(x) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    if isinstance(x, list) and len(x) > 8:
        return f"[{', '.join(_fmt(v) for v in x[:8])}, …]"
    return str(x)


def _page(title: str, body: str) -> str:
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")  # fmt: skip


def collect(runs: Path) -> list[dict]:
    """Every result.json under `runs`, each with the folder it came from."""
    results = []
    for path in sorted(Path(runs).rglob("result.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        result["_dir"] = path.parent
        results.append(result)
    order = {b: i for i, b in enumerate(BUDGETS)}
    return sorted(results, key=lambda r: (r["id"], order.get(r["budget"], 9), r["seed"]))


def measured(result: dict) -> str:
    key = result.get("headline")
    if key and key in result.get("metrics", {}):
        return f"{key} = {_fmt(result['metrics'][key])}"
    checks = result.get("checks") or [{}]
    return _fmt(checks[0].get("measured", ""))


def _rel(result: dict) -> str:
    return f"{result['id'].replace('/', '__')}/{result['budget']}-s{result['seed']}"


def run_page(result: dict) -> str:
    rows = "".join(
        f"<tr><td>{_e(c['name'])}</td><td>{_e(c['expected'])}</td><td>{_e(_fmt(c['measured']))}</td>"
        f"<td class=\"{'pass' if c['passed'] else 'fail'}\">{'pass' if c['passed'] else 'fail'}</td></tr>"
        for c in result["checks"]
    )
    figs = "".join(f'<figure><img src="{_e(f)}" alt="{_e(f)}"><figcaption class="muted">{_e(f)}</figcaption></figure>'
                   for f in result.get("figures", []))  # fmt: skip
    texts = ""
    for name, fname in (result.get("texts") or {}).items():
        path = Path(result["_dir"]) / fname
        content = path.read_text() if path.exists() else "(missing)"
        texts += f"<h3>{_e(name)}</h3><pre>{_e(content)}</pre>"
    metrics = "".join(f"<tr><td><code>{_e(k)}</code></td><td>{_e(_fmt(v))}</td></tr>"
                      for k, v in result.get("metrics", {}).items())  # fmt: skip
    notes = f"<h2>Notes</h2><div style=\"white-space:pre-wrap\">{_e(result['notes'])}</div>" if result.get("notes") else ""
    body = f"""<p><a href="../../index.html">← all claims</a></p>
<h1>{_e(result['id'])} <span class="{result['verdict']}">{_e(result['verdict'])}</span></h1>
<p><b>Paper:</b> {_e(result['paper'])}<br><b>Claim:</b> {_e(result['claim'])}<br>
<b>Paper value:</b> {_e(result.get('paper_value', ''))}<br>
<b>Budget:</b> {_e(result['budget'])}, seed {_e(result['seed'])}, {result['elapsed_s']:.1f} s,
{_e(result['env'].get('threads'))} threads, torch {_e(result['env'].get('torch'))}</p>
<h2>Checks</h2><table><tr><th>check</th><th>expected</th><th>measured</th><th>verdict</th></tr>{rows}</table>
<h2>Figures</h2>{figs or '<p class="muted">none</p>'}
{texts}
{notes}
<h2>Metrics</h2><table>{metrics}</table>
<h2>Config</h2><pre>{_e(json.dumps(result['config'], indent=2))}</pre>
<p class="muted">Reproduce: <code>mlreads run {_e(result['id'])} --budget {_e(result['budget'])} --seed {_e(result['seed'])}</code></p>"""
    return _page(result["id"], body)


def write_report(runs: Path, out: Path) -> Path:
    """Write the report for every run under `runs` into `out`; return the index path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = collect(runs)
    rows = []
    for r in results:
        page_dir = out / _rel(r)
        page_dir.mkdir(parents=True, exist_ok=True)
        for fig in r.get("figures", []):
            src = Path(r["_dir"]) / fig
            if src.exists():
                shutil.copy2(src, page_dir / fig)
        (page_dir / "index.html").write_text(run_page(r))
        rows.append(
            f"<tr><td><a href=\"{_rel(r)}/index.html\">{_e(r['id'])}</a></td><td>{_e(r['paper'])}</td>"
            f"<td>{_e(r['claim'])}</td><td>{_e(r.get('paper_value', ''))}</td><td>{_e(measured(r))}</td>"
            f"<td class=\"{r['verdict']}\">{_e(r['verdict'])}</td><td>{_e(r['budget'])}</td>"
            f"<td>{r['elapsed_s']:.1f} s</td></tr>"
        )
    n_pass = sum(r["verdict"] == "pass" for r in results)
    body = f"""<h1>mlreads: the reading list, re-measured</h1>
<p>{len(results)} runs, {n_pass} pass, {len(results) - n_pass} fail. Each row is one claim re-measured on this machine;
a claim that does not reproduce at its budget is shown as failing, with the reason on its page.</p>
<table><tr><th>id</th><th>paper</th><th>claim</th><th>paper value</th><th>measured</th><th>verdict</th><th>budget</th>
<th>time</th></tr>{''.join(rows)}</table>"""
    index = out / "index.html"
    index.write_text(_page("mlreads report", body))
    return index
