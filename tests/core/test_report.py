"""The static report: the HTML parses, links resolve, and every image it references exists."""

from html.parser import HTMLParser
from pathlib import Path

from mlreads import cli
from mlreads.core import registry


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.images, self.links = [], [], []

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


def _parse(path: Path) -> _Collector:
    c = _Collector()
    c.feed(path.read_text())
    c.close()
    assert c.stack == [], f"unclosed tags in {path}: {c.stack}"
    return c


def test_report_parses_and_references_only_existing_files(toy, tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "report"
    assert cli.main(["run", "toytest/threshold", "--out", str(runs)]) == 0
    assert cli.main(["run", "toytest/threshold", "--out", str(runs), "--budget", "quick"]) == 1
    assert cli.main(["report", "--runs", str(runs), "--out", str(out)]) == 0
    index = _parse(out / "index.html")
    text = (out / "index.html").read_text()
    assert "value = 2" in text and "value = 0.5" in text and 'class="fail"' in text and 'class="pass"' in text
    assert len(index.links) == 2
    for link in index.links:
        page = out / link
        assert page.exists(), link
        collected = _parse(page)
        assert collected.images == ["curve.png"]
        for img in collected.images:
            assert (page.parent / img).stat().st_size > 0
        assert "hello" in page.read_text(), "text artifacts are shown"
    assert "http://" not in text and "https://" not in text, "the report works offline"
    assert registry.REGISTRY["toytest/threshold"] is toy
