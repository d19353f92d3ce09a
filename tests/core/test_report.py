"""The static report: the HTML parses, links resolve, images exist; smoke runs read as pipeline checks, reproduction
verdicts come from the ledger; a run page shows both sides of each check, captions, overrides and text tables."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mlreads import cli
from mlreads.core.report.page import render_text
from mlreads.core.run import registry


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.images, self.links, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "a":
            self.links.append(attrs["href"])
        if tag not in ("img", "meta", "br", "link"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}> after {self.stack[-3:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(path: Path) -> _Collector:
    c = _Collector()
    c.feed(path.read_text())
    c.close()
    assert c.stack == [], f"unclosed tags in {path}: {c.stack}"
    return c


def local_links(c: _Collector) -> list[str]:
    return [h for h in c.links if not h.startswith("https://")]


@pytest.fixture
def toy_only(toy, monkeypatch):
    """The report of the toy experiment alone (without every registered paper's rows)."""
    monkeypatch.setattr("mlreads.core.run.registry.load_all", lambda: {toy.id: toy})
    return toy


def test_report_parses_and_references_only_existing_files(toy_only, tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "report"
    assert cli.main(["run", "toytest/threshold", "--out", str(runs)]) == 0
    assert cli.main(["run", "toytest/threshold", "--out", str(runs), "--budget", "quick"]) == 1
    assert cli.main(["report", "--runs", str(runs), "--out", str(out), "--results", str(tmp_path / "none")]) == 0
    index = parse(out / "index.html")
    text = (out / "index.html").read_text()
    runs_pages = [h for h in local_links(index) if h.startswith("runs/")]
    assert len(runs_pages) == 2
    for link in local_links(index):  # the claim's page, anchors of the table of contents
        assert (f'id="{link[1:]}"' in text) if link.startswith("#") else (out / link).exists(), link
    for link in runs_pages:
        page = out / link
        assert page.exists(), link
        collected = parse(page)
        assert collected.images == ["curve.png"]
        for img in collected.images:
            assert (page.parent / img).read_bytes().startswith(b"\x89PNG")
        page_text = page.read_text()
        assert "hello" in page_text, "text artifacts are shown"
        assert "the toy curve rises" in page_text, "figures carry their captions"
        for back in collected.links:
            if not back.startswith("https://"):
                assert (page.parent / back).resolve().exists(), back
    assert not re.search(r'(src|href)="http://', text) and "<script" not in text, "the report works offline"
    assert registry.REGISTRY["toytest/threshold"] is toy_only


def test_smoke_is_a_pipeline_check_never_a_reproduction(toy_only, tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "report"
    assert cli.main(["run", "toytest/threshold", "--out", str(runs)]) == 0
    (tmp_path / "results").mkdir()  # an empty ledger (a missing one is said to be missing: test_cli_errors.py)
    write = cli.main(["report", "--runs", str(runs), "--out", str(out), "--results", str(tmp_path / "results")])
    assert write == 0
    text = " ".join(parse(out / "index.html").text)
    assert "pipeline ok" in text and "not yet measured" in text
    assert "at quick, 0 claims reproduced" in text, "the summary cannot be read as 'all claims reproduced'"
    html_text = (out / "index.html").read_text()
    assert 'class="pass"' not in html_text, "no green verdict from a smoke run"
    page = next(out.glob("runs/*/*/index.html")).read_text()
    assert "pipeline check" in page and 'class="pass"' not in page


def test_ledger_verdicts_with_seeds_grouped_and_budget_shown(toy_only, tmp_path, fake_publish):
    publish = fake_publish
    results, out = tmp_path / "results", tmp_path / "report"
    for seed, value in [(0, 2.0), (1, 3.0), (2, 4.0)]:
        publish(results, "toytest/threshold", "quick", seed, "pass", value)
    assert cli.main(["report", "--runs", "none", "--results", str(results), "--out", str(out)]) == 0
    index = parse(out / "index.html")
    text = " ".join(index.text)
    assert "value = 3 (range 2–4, 3 seeds)" in text and "seeds 0, 1, 2: 3 of 3 pass" in text
    assert "quick (ledger)" in text and "full (ledger)" in text and "no full budget" in text
    assert "at quick, 1 claim reproduced, 0 not reproduced" in text
    assert '<span class="pass">reproduced</span>' in (out / "index.html").read_text()
    publish(results, "toytest/threshold", "quick", 3, "fail", 0.5)
    assert cli.main(["report", "--runs", "none", "--results", str(results), "--out", str(out)]) == 0
    index = parse(out / "index.html")
    text = " ".join(index.text)
    assert "seeds 0, 1, 2, 3: 3 of 4 pass" in text and "1 mixed across seeds" in text
    assert '<span class="mixed">mixed</span>' in (out / "index.html").read_text()
    pages = [h for h in local_links(index) if h.startswith("ledger/")]  # besides: the claim's page, the contents
    assert len(pages) == 4 and all((out / p).exists() for p in pages)
    assert "Published in the results ledger as" in (out / pages[0]).read_text()


def test_index_in_reading_list_order_with_paper_links(tmp_path):
    out = tmp_path / "report"
    assert cli.main(["report", "--runs", "none", "--results", str(tmp_path / "none"), "--out", str(out)]) == 0
    text = (out / "index.html").read_text()
    exps = registry.load_all()
    positions = {i: text.index(f"<b>{i}</b>") for i in exps}
    prefixes = []
    for i in sorted(positions, key=positions.get):
        if i.split("/")[0] not in prefixes:
            prefixes.append(i.split("/")[0])
    main = [p for p in ("gpt", "circuits", "superposition", "s4", "mamba", "dl-review", "dropout", "adam", "sophia",
                        "alexnet", "resnet", "gan", "ddpm", "attention", "transformer") if p in prefixes]  # fmt: skip
    assert prefixes[: len(main)] == main
    assert 'href="https://arxiv.org/abs/2312.00752"' in text and 'href="https://arxiv.org/abs/1706.03762"' in text
    assert text.count("not yet measured") >= len(exps)


def test_run_page_shows_both_sides_of_each_check_and_the_overrides(toy_only, tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "report"
    assert cli.main(["run", "toytest/threshold", "--out", str(runs), "--budget", "quick", "--set", "value=1.5"]) == 0
    assert cli.main(["report", "--runs", str(runs), "--out", str(out), "--results", str(tmp_path / "none")]) == 0
    page = next(out.glob("runs/toytest__threshold/quick-s0-*/index.html")).read_text()
    assert "value 1.5 &gt;= 1" in page, "the check shows the measured left side and the right side"
    assert "changed the registered config" in page and "value=1.5" in page
    assert "mlreads run toytest/threshold --budget quick --seed 0 --set value=1.5" in page
    assert "commit" in page and "threads" in page


def test_check_evidence_records_metric_on_the_right_side():
    from mlreads.core.fmt import evidence
    from mlreads.core.run.registry import at_least, at_most

    c = at_least("acc_hippo", "acc_random", margin=10).evaluate({"acc_hippo": 53.123, "acc_random": 41.0})
    assert c["passed"] is True and evidence(c) == "acc_hippo 53.12 >= acc_random 41 + 10"
    c = at_most("loss", 2.0, margin=0.5).evaluate({"loss": 1.75})
    assert c["passed"] is False and evidence(c) == "loss 1.75 <= 2 - 0.5"


@pytest.mark.parametrize("x, text", [(1.86712, "1.867"), (0.056234, "0.05623"), (516.23, "516.2"), (1.2e-08, "1.2e-08"),
                                     (98.15, "98.15"), (104213.0, "104,213"), (3, "3"), (0.0, "0")])  # fmt: skip
def test_numbers_print_with_sensible_precision(x, text):
    from mlreads.core.fmt import num

    assert num(x) == text


def test_text_artifacts_render_tables():
    md = render_text("intro\n| a | b |\n|---|---|\n| 1 | 2 |\nafter")
    assert "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>" in md
    assert "<pre>intro</pre>" in md and "<pre>after</pre>" in md
    lit = render_text("[{'S': 0.9, 'geometry': 'pentagon'}, {'S': 0.5, 'geometry': 'digon'}]")
    assert "<th>S</th><th>geometry</th>" in lit and "<td>pentagon</td>" in lit
    assert render_text("just <b>text</b>") == "<pre>just &lt;b&gt;text&lt;/b&gt;</pre>"
    assert "<pre>" in render_text("[" * 5000), "a hostile literal stays text"
    grid = render_text("rows: dense to sparse\n0 0 1\n2 2 1\nend 3")
    assert grid == ("<pre>rows: dense to sparse</pre><div class=\"scroll\"><table><tr><td>0</td><td>0</td><td>1</td></tr>"
                    "<tr><td>2</td><td>2</td><td>1</td></tr></table></div><pre>end 3</pre>")  # fmt: skip
