"""Paper, code and walkthrough are linked: each claim's page in the report and `mlreads show ID` give the experiment
file, the files that implement the paper, the paper with the claim's section or figure where its texts name one, and
the paper's walkthrough notebook (core/papers.py, core/report/claim.py, core/report/show.py)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from mlreads import cli
from mlreads.core.papers import READING_LIST, SOURCE_CODE, WHERE, code_files, paper_of
from mlreads.core.report.claim import claim_folder
from mlreads.core.run.registry import load_all

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
PACKAGE = ROOT / "src" / "mlreads"


def test_every_paper_names_files_that_exist_and_every_claim_has_some():
    for paper in READING_LIST:
        assert paper.code, f"{paper.prefix}: no code files in core/papers.py"
        assert paper.walkthrough == f"notebooks/{paper.prefix}.ipynb"
    for files in [p.code for p in READING_LIST] + list(SOURCE_CODE.values()):
        for rel in files:
            assert (PACKAGE / rel).is_file(), f"core/papers.py names src/mlreads/{rel}, which does not exist"
    for exp in load_all().values():
        assert code_files(exp.id, exp.source), exp.id
    assert set(WHERE) <= set(load_all()), set(WHERE) - set(load_all())


def test_where_names_what_the_claims_own_texts_name():
    # a WHERE entry is taken from the claim's own texts (claim, paper value, notes, its experiment file's docstrings):
    # each figure, table or section number it gives is there
    for exp_id, where in WHERE.items():
        exp = load_all()[exp_id]
        module = sys.modules[exp.run.__module__].__doc__ or ""
        text = " ".join((exp.claim, exp.paper_value, exp.notes, exp.run.__doc__ or "", module, exp.paper))
        for number in re.findall(r"\d+(?:\.\d+)*[a-z]?", where):
            assert number in text, f"{exp_id}: WHERE says {where!r}, but {number} is not in its texts"


def test_show_prints_the_paper_section_the_code_and_the_walkthrough(capsys):
    assert cli.main(["show", "transformer/scaled-dot-product", "dl-review/separability"]) == 0
    out = capsys.readouterr().out
    assert "https://arxiv.org/abs/1706.03762 (Section 3.2.1, footnote 4)" in out
    assert "src/mlreads/transformer/exp_scaled_dot_product.py (experiment); src/mlreads/transformer/model.py" in out
    assert "walkthrough:  notebooks/transformer.ipynb" in out
    assert "src/mlreads/dl_review/model.py" in out and "(Fig 1a)" in out
    assert cli.main(["show", "gpt/char-lm", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)[0]
    assert shown["code"] == "src/mlreads/gpt/exp_char_lm.py" and shown["models"][0] == "src/mlreads/gpt/model.py"
    assert shown["walkthrough"] == "notebooks/gpt.ipynb"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    from mlreads.core.report import write_report

    out = tmp_path_factory.mktemp("report")
    write_report(None, out, results=ROOT / "results", warn=lambda m: None)
    return out


def _read_it(report: Path, exp_id: str) -> tuple[str, dict[str, Path]]:
    """The claim page's "Read it" list, and each of its links (label -> the file it resolves to)."""
    page = report.joinpath(*claim_folder(exp_id), "index.html")
    html = page.read_text()
    block = html[html.index("<h2>Read it</h2>") : html.index("</ul>", html.index("<h2>Read it</h2>"))]
    links = {label: (page.parent / href).resolve() for href, label in
             re.findall(r'<a href="([^"]+)"><code>([^<]+)</code></a>', block)}  # fmt: skip
    return block, links


@pytest.mark.parametrize("exp_id", sorted(load_all()))
def test_each_claim_page_links_its_paper_section_and_code(report, exp_id):
    block, links = _read_it(report, exp_id)
    exp = load_all()[exp_id]
    assert all(f'href="{url}"' in block for _, url in paper_of(exp_id).links)
    if exp_id in WHERE:
        assert WHERE[exp_id].replace("'", "&#x27;") in block
    implementation = [f"mlreads/{rel}" for rel in code_files(exp_id, exp.source)]
    expected = [exp.run.__module__.replace(".", "/") + ".py", *implementation]
    assert [label.removeprefix("src/") for label in links if label.startswith("src/")] == expected
    for label, target in links.items():
        assert target.is_file() and target == (ROOT / label).resolve(), (label, target)


@pytest.mark.skipif(not NOTEBOOKS.is_dir(), reason="notebooks/ is not written yet: once it exists, every paper's "
                    "walkthrough must be there and every claim page must link it")  # fmt: skip
def test_every_paper_has_its_walkthrough_and_each_claim_page_links_it(report):
    missing = [p.walkthrough for p in READING_LIST if not (ROOT / p.walkthrough).is_file()]
    assert not missing, f"walkthroughs missing: {missing}"
    for exp_id in load_all():
        _, links = _read_it(report, exp_id)
        want = paper_of(exp_id).walkthrough
        assert links.get(want) == (ROOT / want).resolve(), f"{exp_id}'s page does not link {want}"


def test_without_notebooks_the_page_names_the_walkthrough_to_come(report):
    block, links = _read_it(report, "gpt/char-lm")
    assert "notebooks/gpt.ipynb" in block
    assert ("notebooks/gpt.ipynb" in links) == NOTEBOOKS.is_dir()


def test_a_claim_whose_quick_and_full_verdicts_differ_says_which_to_believe():
    from types import SimpleNamespace as V

    from mlreads.core.report.claim import disagreement

    q, f = V(word="not reproduced", why=""), V(word="reproduced", why="")
    text = disagreement({"quick": q, "full": f})
    assert "disagree" in text and "Believe the full verdict" in text
    assert disagreement({"quick": q, "full": V(word="not reproduced", why="")}) == ""  # they agree
    assert disagreement({"quick": q}) == ""  # full not measured
    inc = disagreement({"quick": q, "full": V(word="inconclusive", why="<baseline> did not learn")})
    assert "neither confirms nor overturns" in inc and "&lt;baseline&gt;" in inc
