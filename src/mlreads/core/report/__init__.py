"""Reporting and publishing: the static HTML report (index.py, with one page per run from page.py), the results
ledger (ledger.py: publish, load, the README table) and docs/claims.md (docs.py). Reads result.json files through
`core.run.results`; nothing in `core.run` imports this room."""

from mlreads.core.report.index import write_report

__all__ = ["write_report"]
