"""The ledger keeps the evidence and the design history: `mlreads publish` copies a run's figures (shrunk) and texts
beside its entry and the report shows them; `mlreads supersede` moves a redesigned claim's entries into
`results/<id>/superseded/design-<n>/` with one line of why, byte for byte, and the claim's page shows the history."""

import io
import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlreads import cli
from mlreads.core.report.evidence import MAX_FIGURE_BYTES, shrink_png
from mlreads.core.report.history import load_history, supersede
from mlreads.core.report.ledger import load_ledger
from mlreads.core.run import registry
from mlreads.core.run.registry import at_least

sys.path.insert(0, str(Path(__file__).parent))
from test_ledger import COMMIT, toy_run  # noqa: E402  (a real toy run with faked provenance)

ROOT = Path(__file__).resolve().parents[2]
WHY = "the bound 1 was out of reach of the toy at quick"


def _noise_png(side: int) -> bytes:
    """A PNG that does not compress: random pixels."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (side, side, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_shrink_png_keeps_small_figures_and_shrinks_big_ones():
    small = _noise_png(40)
    assert shrink_png(small) is small
    big = _noise_png(900)
    assert len(big) > 2 * MAX_FIGURE_BYTES
    out = shrink_png(big)
    assert len(out) <= MAX_FIGURE_BYTES
    img = Image.open(io.BytesIO(out))
    assert img.width == img.height and img.width >= 100, "scaled down, not cropped, and still readable"


def test_publish_copies_the_evidence_and_the_report_shows_it(toy, tmp_path, capsys):
    run_dir = toy_run(tmp_path)
    (run_dir / "big.png").write_bytes(_noise_png(900))
    (run_dir / "table.json").write_text("[[1, 2], [3, 4]]")  # a .json text artifact is not a ledger entry
    result = json.loads((run_dir / "result.json").read_text())
    result["figures"].append("big.png")
    result["captions"]["big.png"] = "paper: noise; this run: noise"
    result["texts"]["table"] = "table.json"
    (run_dir / "result.json").write_text(json.dumps(result))
    results = tmp_path / "results"
    assert cli.main(["publish", str(run_dir), "--results", str(results)]) == 0
    assert "+ 4 figures and texts" in capsys.readouterr().out
    kept = results / "toytest/threshold/quick-s0"
    assert sorted(p.name for p in kept.iterdir()) == ["big.png", "curve.png", "sample.txt", "table.json"]
    assert len((kept / "big.png").read_bytes()) <= MAX_FIGURE_BYTES
    assert (kept / "curve.png").read_bytes() == (run_dir / "curve.png").read_bytes(), "small figures are kept as made"
    warnings = []
    [entry] = load_ledger(results, warn=warnings.append)
    assert warnings == [] and entry["figures"] == ["curve.png", "big.png"] and entry["texts"]["table"] == "table.json"
    out = tmp_path / "report"
    assert cli.main(["report", "--runs", "none", "--results", str(results), "--out", str(out)]) == 0
    page = (out / "ledger/toytest__threshold/quick-s0/index.html").read_text()
    assert '<img src="curve.png"' in page and '<img src="big.png"' in page and "the toy curve rises" in page
    assert "paper: noise; this run: noise" in page and "hello" in page and "<td>3</td>" in page
    assert "published beside it" in page
    assert (out / "ledger/toytest__threshold/quick-s0/big.png").read_bytes() == (kept / "big.png").read_bytes()


def test_supersede_keeps_the_old_design_and_the_claim_page_shows_the_history(toy, tmp_path, capsys, monkeypatch):
    results, out = tmp_path / "results", tmp_path / "report"
    assert cli.main(["publish", str(toy_run(tmp_path)), "--results", str(results)]) == 0
    old_bytes = (results / "toytest/threshold/quick-s0.json").read_bytes()
    sup = ["supersede", "toytest/threshold", "--why", WHY, "--commit", COMMIT, "--results", str(results)]
    capsys.readouterr()
    assert cli.main(sup) == 2 and "still match the registered experiment" in capsys.readouterr().err

    redesign = replace(toy, checks={**toy.checks, "quick": [at_least("value", 0.25)]})
    monkeypatch.setitem(registry.REGISTRY, toy.id, redesign)
    new_run = toy_run(tmp_path)  # the redesign's run, same budget and seed
    assert cli.main(["publish", str(new_run), "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert "holds a result of an earlier design" in err and "mlreads supersede toytest/threshold" in err
    assert cli.main(sup) == 0
    design = results / "toytest/threshold/superseded/design-1"
    assert (design / "quick-s0.json").read_bytes() == old_bytes, "moved byte for byte, never edited"
    assert (design / "quick-s0/curve.png").is_file() and not (results / "toytest/threshold/quick-s0").exists()
    record = json.loads((design / "superseded.json").read_text())
    assert record["why"] == WHY and record["commit"] == COMMIT and record["entries"] == ["quick-s0.json"]
    assert load_ledger(results) == []
    assert cli.main(["publish", str(new_run), "--results", str(results)]) == 0
    [current] = load_ledger(results)
    assert current["verdict"] == "pass"

    capsys.readouterr()
    assert cli.main(["show", "toytest/threshold", "--results", str(results)]) == 0
    shown = capsys.readouterr().out
    assert f"design 1 (superseded by {COMMIT[:12]}): {WHY}; quick s0 not reproduced" in shown
    assert "    quick: reproduced" in shown

    monkeypatch.setattr("mlreads.core.run.registry.load_all", lambda: {toy.id: redesign})
    assert cli.main(["report", "--runs", "none", "--results", str(results), "--out", str(out)]) == 0
    claim = (out / "claims/toytest__threshold/index.html").read_text()
    assert "1 earlier design superseded" in (out / "index.html").read_text()
    assert "Design history" in claim and "design 1: not reproduced at quick" in claim
    assert f"superseded by commit <code>{COMMIT[:12]}</code>" in claim and WHY in claim
    assert "design 2 (current): reproduced at quick (seed 0)" in claim
    assert "every seed passes" in claim, "the seed rule is shown"
    old_page = out / "ledger/toytest__threshold/design-1/quick-s0/index.html"
    assert "Superseded: this is design 1" in old_page.read_text()
    assert 'href="../../ledger/toytest__threshold/design-1/quick-s0/index.html"' in claim
    for page in out.rglob("*.html"):  # every link of every page resolves inside the report
        for ref in re.findall(r'href="([^"#]+)', page.read_text()):
            if not ref.startswith("https://"):
                assert (page.parent / ref).resolve().is_relative_to(out.resolve()), (page, ref)
                assert (page.parent / ref).exists(), (page, ref)

    # a second redesign gets design 2; nothing is overwritten
    again = supersede(results, toy.id, "second flaw", COMMIT, force=True)
    assert again.number == 2 and (results / "toytest/threshold/superseded/design-2/quick-s0.json").is_file()
    designs = load_history(results, warn=pytest.fail)[toy.id]
    assert [d.number for d in designs] == [1, 2] and designs[1].why == "second flaw"


@pytest.mark.parametrize("argv, message", [
    (["toytest/threshold", "--why", " "], "--why is empty"),
    (["toytest/threshold", "--why", "x" * 400], "say it in one line"),
    (["toytest/threshold", "--why", "flaw", "--commit", "no-such-rev"], "is not a commit git knows"),
    (["toytest/", "--why", "flaw"], "one experiment id, not the prefix"),
    (["no/such-thing", "--why", "flaw"], "unknown experiment"),
    (["toytest/threshold", "--why", "flaw", "--commit", COMMIT], "nothing published for toytest/threshold"),
])  # fmt: skip
def test_supersede_refuses_bad_input_in_one_line(toy, tmp_path, capsys, argv, message):
    assert cli.main(["supersede", *argv, "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_malformed_design_folder_costs_only_itself(tmp_path, fake_publish):
    path = fake_publish(tmp_path, "toytest/threshold", "quick", 0, "fail", 0.5)
    supersede(tmp_path, "toytest/threshold", "flaw", COMMIT)
    (path.parent / "superseded/design-2").mkdir()
    (path.parent / "superseded/design-2/superseded.json").write_text("{")
    warnings = []
    [design] = load_history(tmp_path, warn=warnings.append)["toytest/threshold"]
    assert design.number == 1 and len(design.entries) == 1
    assert len(warnings) == 1 and "design-2" in warnings[0]


def test_the_committed_ledger_images_stay_small():
    """Each published figure is at most ~300 KB, and all of them together under 15 MB in git."""
    sizes = {p: p.stat().st_size for p in (ROOT / "results").rglob("*.png")}
    assert all(s <= MAX_FIGURE_BYTES for s in sizes.values()), [str(p) for p, s in sizes.items() if s > MAX_FIGURE_BYTES]
    assert sum(sizes.values()) < 15_000_000
