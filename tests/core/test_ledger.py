"""The results ledger: `mlreads publish` admits only evidence (quick/full, default config, committed sources), the
ledger loader skips what it cannot trust, seeds are grouped, and the README table is generated from it.

Quick-budget metadata and provenance are faked here, inside tests only: publish is tested on small toy runs."""

import json
from pathlib import Path

import pytest

from mlreads import cli
from mlreads.core.report.ledger import (
    load_ledger,
    readme_block,
    readme_section,
    readme_table,
    verdicts,
)
from mlreads.core.run.runner import environment, source_provenance

COMMIT = "1234567890abcdef1234567890abcdef12345678"


def toy_run(tmp_path, budget="quick", seed=0, overrides=(), **env) -> Path:
    """A real toy run at `budget`, its provenance then set to `env` (commit, dirty) for the test."""
    argv = ["run", "toytest/threshold", "--out", str(tmp_path / "runs"), "--budget", budget, "--seed", str(seed)]
    for o in overrides:
        argv += ["--set", o]
    cli.main(argv)
    run_dir = next(p.parent for p in (tmp_path / "runs/toytest/threshold").glob("*/result.json")
                   if p.parent.name.startswith(f"{budget}-s{seed}") and bool(overrides) == (p.parent.name.count("-") > 1))  # fmt: skip
    result = json.loads((run_dir / "result.json").read_text())
    result["env"].update({"commit": COMMIT, "dirty": False, **env})
    (run_dir / "result.json").write_text(json.dumps(result))
    return run_dir


def test_publish_replaces_another_commits_entry_only_when_asked(toy, tmp_path, capsys):
    """A redesign in code alone (an init) keeps config and checks: only the commit tells it from a re-run, so
    overwriting the earlier commit's entry needs --replace (or a supersede first), never happens silently."""
    results = tmp_path / "results"
    assert cli.main(["publish", str(toy_run(tmp_path)), "--results", str(results)]) == 0
    assert cli.main(["publish", str(toy_run(tmp_path)), "--results", str(results)]) == 0, "same commit: idempotent"
    before = (results / "toytest/threshold/quick-s0.json").read_bytes()
    later = toy_run(tmp_path, commit="b" * 40)
    capsys.readouterr()
    assert cli.main(["publish", str(later), "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert f"published from commit {COMMIT[:12]}" in err and "--replace" in err and "supersede toytest/threshold" in err
    assert (results / "toytest/threshold/quick-s0.json").read_bytes() == before
    assert cli.main(["publish", str(later), "--results", str(results), "--replace"]) == 0
    assert json.loads((results / "toytest/threshold/quick-s0.json").read_text())["published"]["commit"] == "b" * 40


def test_publish_writes_the_entry_with_its_provenance(toy, tmp_path, capsys):
    run_dir = toy_run(tmp_path)
    results = tmp_path / "results"
    assert cli.main(["publish", str(run_dir), "--results", str(results)]) == 0
    entry = json.loads((results / "toytest/threshold/quick-s0.json").read_text())
    assert entry["published"]["commit"] == COMMIT and entry["published"]["threads"] >= 1
    assert entry["published"]["torch"] and entry["published"]["machine"] and entry["published"]["date"]
    assert entry["verdict"] == "fail" and entry["metrics"]["value"] == 0.5 and entry["budget"] == "quick"
    assert "_dir" not in entry
    assert "published" in capsys.readouterr().out
    [loaded] = load_ledger(results)
    assert loaded["id"] == "toytest/threshold" and loaded["_file"] == "toytest/threshold/quick-s0.json"


@pytest.mark.parametrize("budget, overrides, env, message", [
    ("smoke", (), {}, "a smoke run is a pipeline check"),
    ("quick", ("value=3",), {}, "the run has overrides (--set value=3)"),
    ("quick", (), {"commit": None}, "unknown provenance"),
    ("quick", (), {"dirty": True}, "uncommitted changes"),
    ("quick", (), {"dirty": None}, "unknown source state"),
])  # fmt: skip
def test_publish_refuses_what_is_not_evidence(toy, tmp_path, capsys, budget, overrides, env, message):
    run_dir = toy_run(tmp_path, budget, overrides=overrides, **env)
    capsys.readouterr()
    assert cli.main(["publish", str(run_dir), "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "results").exists()


def test_publish_allows_a_variant_under_its_own_name(toy, tmp_path):
    run_dir = toy_run(tmp_path, overrides=("value=3",))
    results = tmp_path / "results"
    assert cli.main(["publish", str(run_dir), "--results", str(results), "--allow-overrides"]) == 0
    [path] = list((results / "toytest/threshold").glob("*.json"))  # beside it: the folder of its figures and texts
    assert path.name == f"{run_dir.name}.json" and path.name != "quick-s0.json"
    assert verdicts(load_ledger(results)) == {}, "a variant never counts as the claim's verdict"


def test_publish_refuses_unknown_ids_missing_folders_and_bad_json(toy, tmp_path, capsys, monkeypatch):
    run_dir = toy_run(tmp_path)
    capsys.readouterr()
    monkeypatch.delitem(__import__("mlreads.core.run.registry").core.run.registry.REGISTRY, "toytest/threshold")
    assert cli.main(["publish", str(run_dir), "--results", str(tmp_path / "r")]) == 2
    assert "not a registered experiment" in capsys.readouterr().err
    assert cli.main(["publish", str(tmp_path / "nowhere"), "--results", str(tmp_path / "r")]) == 2
    assert "no result.json there" in capsys.readouterr().err
    monkeypatch.setitem(__import__("mlreads.core.run.registry").core.run.registry.REGISTRY, "toytest/threshold",
                        __import__("dataclasses").replace(toy, checks={**toy.checks, "quick": toy.checks["quick"][:1]}))
    assert cli.main(["publish", str(run_dir), "--results", str(tmp_path / "r")]) == 2
    assert "no longer matches the registered experiment (the quick checks changed" in capsys.readouterr().err
    (run_dir / "result.json").write_text("[1]")
    assert cli.main(["publish", str(run_dir), "--results", str(tmp_path / "r")]) == 2
    assert "must be a JSON object" in capsys.readouterr().err


def test_runs_record_their_provenance():
    env = environment(1)
    assert {"commit", "dirty", "date", "machine", "torch", "threads"} <= set(env)
    info = source_provenance()
    if info["commit"] is not None:  # a git checkout (the tests run from one; an installed copy has none)
        assert len(info["commit"]) == 40 and isinstance(info["dirty"], bool)


def test_ledger_loader_skips_misplaced_and_bad_entries(tmp_path, fake_publish):
    publish_fake = fake_publish
    results = tmp_path / "results"
    good = publish_fake(results, "toytest/threshold", "quick", 0, "pass", 2.0)
    moved = results / "toytest/threshold/quick-s7.json"
    moved.write_text(good.read_text())  # content says seed 0
    (results / "toytest/threshold/hand.json").write_text(json.dumps({**json.loads(good.read_text()), "published": None}))
    (results / "junk.json").write_text("{")
    warnings = []
    entries = load_ledger(results, warn=warnings.append)
    assert [e["_file"] for e in entries] == ["toytest/threshold/quick-s0.json"]
    assert len(warnings) == 3 and all("\n" not in w for w in warnings)
    assert any("quick-s7.json: does not match its content" in w for w in warnings)
    assert any("hand.json: has no 'published' block" in w for w in warnings)


def test_readme_table_from_the_ledger(toy, tmp_path, fake_publish):
    publish_fake = fake_publish
    results = tmp_path / "results"
    table = readme_table([toy], load_ledger(results))
    assert "| `toytest/threshold` | value reaches 1 | not yet measured | no full budget |" in table
    publish_fake(results, "toytest/threshold", "quick", 0, "fail", 0.5, elapsed=450.0)
    table = readme_table([toy], load_ledger(results))
    assert "| **not reproduced**: value = 0.5; seed 0; 7.5 min |" in table
    publish_fake(results, "toytest/threshold", "quick", 1, "pass", 1.5)
    assert "mixed: value = 1 (range 0.5–1.5, 2 seeds); seeds 0, 1: 1 of 2 pass" in readme_table([toy], load_ledger(results))
    block = readme_block([toy], load_ledger(results))
    assert readme_section(f"# x\n\n{block}\n\nmore") == block
    assert readme_section("# no markers") is None


def test_readme_table_cli_prints_the_block(toy, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("mlreads.core.run.registry.load_all", lambda: {toy.id: toy})
    assert cli.main(["readme-table", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<!-- results:start -->\n| id | claim | quick | full |") and "<!-- results:end -->" in out


def test_the_committed_ledger_speaks_for_the_registered_experiments():
    """Every entry in results/ is of a registered experiment, with today's config and checks and the verdict they
    give on its metrics; otherwise it must be re-run and re-published (mlreads publish)."""
    from mlreads.core.report.ledger import stale_reasons
    from mlreads.core.run.registry import load_all

    root = Path(__file__).resolve().parents[2] / "results"
    warnings = []
    entries = load_ledger(root, warn=warnings.append)
    assert warnings == [], warnings
    exps = load_all()
    problems = []
    for e in entries:
        if e["id"] not in exps:
            problems.append(f"{e['_file']}: {e['id']} is not registered")
            continue
        problems += [f"{e['_file']}: {r}; re-run and re-publish it" for r in stale_reasons(e, exps[e["id"]])]
    assert problems == [], "\n".join(problems)


def test_stale_entries_are_detected(toy, tmp_path, fake_publish):
    import dataclasses

    from mlreads.core.report.ledger import stale_reasons
    from mlreads.core.run.registry import at_least

    fake_publish(tmp_path, "toytest/threshold", "quick", 0, "fail", 0.5)
    [entry] = load_ledger(tmp_path)
    entry["config"] = {"value": 0.5, "steps": 3}
    entry["checks"] = [c.evaluate(entry["metrics"]) for c in toy.checks["quick"]]
    assert stale_reasons(entry, toy) == []
    looser = dataclasses.replace(toy, checks={**toy.checks, "quick": [at_least("value", 0.1)]})
    reasons = stale_reasons(entry, looser)
    assert any("checks changed" in r for r in reasons) and any("give 'pass'" in r for r in reasons)
    other = dataclasses.replace(toy, configs={**toy.configs, "quick": dataclasses.replace(toy.configs["quick"], steps=9)})
    assert stale_reasons(entry, other) == ["the quick config changed since it was published (steps)"]


def test_a_field_added_later_at_its_default_does_not_make_entries_stale(toy):
    """A data option added off by default keeps every earlier entry's config; set to anything else, it does not."""
    import dataclasses as dc

    from mlreads.core.report.ledger import _without_new_defaults

    @dc.dataclass(frozen=True)
    class Inner:
        a: int = 1
        added: bool = False

    @dc.dataclass(frozen=True)
    class Outer:
        steps: int = 3
        inner: Inner = dc.field(default_factory=Inner)

    old = {"steps": 3, "inner": {"a": 1}}
    assert _without_new_defaults(Outer(), {"steps": 3, "inner": {"a": 1, "added": False}}, old) == old
    turned_on = _without_new_defaults(Outer(inner=Inner(added=True)), {"steps": 3, "inner": {"a": 1, "added": True}},
                                      old)  # fmt: skip
    assert turned_on != old and turned_on["inner"]["added"] is True
    changed = _without_new_defaults(Outer(steps=4), {"steps": 4, "inner": {"a": 1, "added": False}}, old)
    assert changed == {"steps": 4, "inner": {"a": 1}}, "a changed field still differs"
