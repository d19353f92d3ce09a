"""`docs/claims.md`, generated from the registry: every claim with its paper, the paper's number, and our checks and
configs per budget, in reading-list order. `mlreads docs` writes it; a test fails when the file is out of date."""

from __future__ import annotations

HEADER = """# The claims mlreads re-measures

Generated from the experiment registry by `mlreads docs`; do not edit by hand (a test checks that this file is up to
date). Each section is one paper of the reading list, each entry one claim: what the paper says, the paper's own
number, and the checks we run at each budget. Budgets: **smoke** (≤ 30 s) is a pipeline check run by the tests and
never a reproduction; **quick** (≤ 10 min on one CPU thread) is the claim's check at laptop scale; **full** is the
paper's scale. The measured verdicts live in the results ledger (`results/`, see the README's results table and
`mlreads report`). A claim that does not reproduce gets a `fail` verdict; thresholds are never loosened to pass. A
failed precondition, or a noisy check within two standard errors of its bound, gets `inconclusive`.
"""


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")


def claims_markdown(experiments: list | None = None) -> str:
    from mlreads.core.fmt import flat
    from mlreads.core.papers import paper_of, reading_key
    from mlreads.core.run.catalog import describe
    from mlreads.core.run.verdict import ALL_SEEDS

    if experiments is None:
        from mlreads.core.run.registry import load_all

        experiments = list(load_all().values())
    described = sorted((describe(e, i) for i, e in enumerate(experiments)), key=lambda d: reading_key(d["id"], d["position"]))
    out, current = [HEADER], None
    for d in described:
        prefix = d["id"].split("/", 1)[0]
        if prefix != current:
            current = prefix
            paper = paper_of(d["id"])
            out.append(f"\n## {paper.title if paper else prefix}\n")
            if paper:
                out.append(" · ".join(f"[{label}]({url})" for label, url in paper.links) + "\n")
        out.append(f"\n### `{d['id']}`\n")
        out.append(f"- **Paper:** {d['paper']}")
        out.append(f"- **Claim:** {d['claim']}")
        out.append(f"- **Paper's value:** {d['paper_value']}")
        if d["requires"]:
            out.append(f"- **Data:** {', '.join(d['requires'])}")
        if d["headline"]:
            out.append(f"- **Headline metric:** `{d['headline']}`")
        if d["seed_rule"] != ALL_SEEDS.text:
            out.append(f"- **Seeds:** {d['seed_rule']}")
        out.append("\n| budget | checks | config (`--set` keys) |\n|---|---|---|")
        for b in d["budgets"]:
            checks = "<br>".join([*(f"precondition: `{_md(c)}`" for c in d["preconditions"][b]),
                                  *(f"`{_md(c)}`" for c in d["checks"][b])])  # fmt: skip
            config = " ".join(f"`{_md(k)}={_md(v)}`" for k, v in flat(d["configs"][b]).items())
            out.append(f"| {b} | {checks} | {config} |")
        if d["full_scale"]:
            out.append(f"\n**Full scale:** {_md(d['full_scale'])}")
        if d["notes"]:
            out.append("\n" + "\n".join(f"> {line}" if line else ">" for line in d["notes"].strip().splitlines()))
        out.append(f"\nReproduce: `mlreads run {d['id']} --budget quick` · details: `mlreads show {d['id']}`\n")
    return "\n".join(out).rstrip() + "\n"
