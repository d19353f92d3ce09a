"""The mutation test of issue 22: forcing a precondition false turns a pass into `inconclusive`, end to end: run ->
result.json -> verdict line and exit code -> publish -> report (index, claim page, run and ledger pages) -> README
table. The same run with the precondition true is a pass everywhere, so the test can fail both ways."""

import html
import json
from dataclasses import dataclass

import pytest

from mlreads import cli
from mlreads.core.report.ledger import load_ledger, readme_table
from mlreads.core.run import registry
from mlreads.core.run.registry import Experiment, at_least, holds

COMMIT = "1234567890abcdef1234567890abcdef12345678"
PRE = "the toy reached its target (else its value says nothing)"
READY = {"value": True}  # the precondition's input, forced false by the test


@dataclass(frozen=True)
class GatedCfg:
    value: float = 2.0


def _run(cfg, ctx):
    return {"value": cfg.value, "target_reached": READY["value"]}


@pytest.fixture
def gated(monkeypatch):
    exp = Experiment(
        id="toytest/gated", paper="Nobody 2026", claim="value reaches 1", paper_value="1.0",
        configs={"smoke": GatedCfg(), "quick": GatedCfg()}, run=_run,
        checks={"smoke": [at_least("value", 1.0)], "quick": [at_least("value", 1.0)]},
        preconditions={"quick": [holds("target_reached", PRE)]}, headline="value",
    )  # fmt: skip
    monkeypatch.setitem(registry.REGISTRY, exp.id, exp)
    monkeypatch.setattr("mlreads.core.run.registry.load_all", lambda: {exp.id: exp})
    return exp


@pytest.mark.parametrize("ready", [True, False], ids=["precondition-met", "precondition-forced-false"])
def test_a_precondition_forced_false_turns_a_pass_into_inconclusive(gated, tmp_path, monkeypatch, capsys, ready):
    monkeypatch.setitem(READY, "value", ready)
    runs, results, out = tmp_path / "runs", tmp_path / "results", tmp_path / "report"
    verdict = "pass" if ready else "inconclusive"

    # run -> result.json, verdict line, exit code
    assert cli.main(["run", gated.id, "--budget", "quick", "--out", str(runs)]) == (0 if ready else 1)
    assert capsys.readouterr().out.startswith(f"{verdict.upper()} toytest/gated [quick, seed 0")
    run_dir = runs / gated.id / "quick-s0"
    result = json.loads((run_dir / "result.json").read_text())
    assert result["verdict"] == verdict and result["checks"][0]["passed"] is True, "the check itself still passes"
    assert result["preconditions"][0]["passed"] is ready and result["preconditions"][0]["expected"] == PRE

    # publish files it like any verdict (provenance faked: tests only)
    result["env"].update(commit=COMMIT, dirty=False)
    (run_dir / "result.json").write_text(json.dumps(result))
    assert cli.main(["publish", str(run_dir), "--results", str(results)]) == 0
    [entry] = load_ledger(results)
    assert entry["verdict"] == verdict

    # the report: index, claim page, run page, ledger page
    assert cli.main(["report", "--runs", str(runs), "--results", str(results), "--out", str(out)]) == 0
    index = (out / "index.html").read_text()
    claim = (out / "claims/toytest__gated/index.html").read_text()
    ledger_page = (out / "ledger/toytest__gated/quick-s0/index.html").read_text()
    run_page = (out / "runs/toytest__gated/quick-s0/index.html").read_text()
    table = readme_table([gated], load_ledger(results))
    if ready:
        assert '<span class="pass">reproduced</span>' in index and "at quick, 1 claim reproduced" in html.unescape(index)
        assert "why:" not in index and '<span class="pass">reproduced</span>' in claim
        assert "| reproduced: value = 2; seed 0;" in table
        assert ">met</td>" in ledger_page and "not judged" not in ledger_page
    else:
        assert '<span class="inconclusive">inconclusive</span>' in index and 'class="pass"' not in index
        assert f"why: precondition failed: {PRE} (measured: False)" in html.unescape(index)
        assert "0 claims reproduced, 0 not reproduced, 1 inconclusive" in html.unescape(index)
        assert '<span class="inconclusive">inconclusive</span>' in claim and f"precondition: <code>{html.escape(PRE)}" in claim
        assert "| *inconclusive*: seed 0; " in table and f"precondition failed: {PRE} (measured: False) |" in table
        assert "value = 2" not in table, "no number that decides nothing beside an inconclusive verdict"
        for page in (ledger_page, run_page):
            assert "<h2>Preconditions</h2>" in page and ">not met</td>" in page
            assert "Why: precondition failed" in page and ">ok (not judged)</td>" in page
