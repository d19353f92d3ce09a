"""The report is a sandbox: hostile run folders cannot make it read, link or copy anything outside the runs folder,
cannot inject markup, and a malformed result.json costs only its own row (one warning line), never the report."""

import json
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mlreads import cli
from mlreads.core.report import write_report
from mlreads.core.run.results import BadResult, inside, load_result, validate

SECRET = b"\x89PNG\r\n\x1a\n" + b"TOPSECRET" * 10  # a valid PNG header, so only the path rules keep it out


def good(**changes) -> dict:
    r = {"id": "toytest/threshold", "paper": "Nobody", "claim": "c", "paper_value": "1", "budget": "smoke", "seed": 0,
         "config": {}, "checks": [{"name": "value >= 1", "passed": True, "measured": 2.0, "expected": "value >= 1"}],
         "verdict": "pass", "metrics": {"value": 2.0}, "figures": [], "texts": {}, "elapsed_s": 1.0, "env": {}}  # fmt: skip
    r.update(changes)
    return r


def make_run(runs: Path, name: str, content, raw: bytes | None = None) -> Path:
    d = runs / "hostile" / name
    d.mkdir(parents=True)
    (d / "result.json").write_bytes(raw if raw is not None else json.dumps(content).encode())
    return d


class _Attrs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.bad = [], []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "iframe", "object", "embed"):
            self.bad.append(tag)
        for k, v in attrs:
            if k.startswith("on") or (v or "").strip().lower().startswith("javascript:"):
                self.bad.append(f"{tag} {k}={v}")
            if k in ("src", "href"):
                self.refs.append(v)


@pytest.fixture
def hostile(tmp_path, toy, monkeypatch):
    monkeypatch.setattr("mlreads.core.run.registry.load_all", lambda: {toy.id: toy})
    runs = tmp_path / "runs"
    secret_png, secret_txt = tmp_path / "secret.png", tmp_path / "secret.txt"
    secret_png.write_bytes(SECRET)
    secret_txt.write_bytes(SECRET)
    assert cli.main(["run", "toytest/threshold", "--out", str(runs)]) == 0  # one honest run
    bad = {}
    # paths out of the run folder: absolute, relative, symlinks to a file and to a folder
    d = make_run(runs, "abs", good(figures=["/etc/passwd", str(secret_png)], texts={"a": "/etc/passwd", "b": str(secret_txt)}))
    d = make_run(runs, "rel", good(figures=["../../../secret.png"], texts={"t": "../../../secret.txt"}, seed=1))
    d = make_run(runs, "links", good(figures=["evil.png", "dir/x.png"], texts={"t": "evil.txt"}, seed=2))
    os.symlink(secret_png, d / "evil.png")
    os.symlink(secret_txt, d / "evil.txt")
    os.symlink(tmp_path, d / "dir")
    # markup in every text field; identifiers that would steer paths or attributes
    xss = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
    make_run(runs, "xss", good(claim=xss, paper=xss, paper_value=xss, notes=xss, headline=xss, seed=3,
                               metrics={xss: xss}, config={xss: xss}, overrides={xss: xss}, env={"torch": xss},
                               checks=[{"name": xss, "passed": True, "measured": xss, "expected": xss}]))  # fmt: skip
    bad["id-xss"] = make_run(runs, "idxss", good(id=xss))
    bad["verdict-xss"] = make_run(runs, "vxss", good(verdict=xss))
    bad["id-dots"] = make_run(runs, "iddots", good(id="../../../etc"))
    bad["budget-dots"] = make_run(runs, "bdots", good(budget="../../x"))
    bad["seed-dots"] = make_run(runs, "sdots", good(seed="../../x"))
    # malformed files
    bad["list"] = make_run(runs, "list", [1, 2, 3])
    bad["no-id"] = make_run(runs, "noid", {k: v for k, v in good().items() if k != "id"})
    bad["types"] = make_run(runs, "types", good(checks="all good", figures="x.png"))
    bad["metrics-type"] = make_run(runs, "mtype", good(metrics=[1, 2]))
    bad["deep"] = make_run(runs, "deep", None, raw=b"[" * 100_000 + b"]" * 100_000)
    bad["deep2"] = make_run(runs, "deep2", None, raw=json.dumps(good(metrics={"x": json.loads("[" * 200 + "]" * 200)})).encode())
    bad["latin1"] = make_run(runs, "latin1", None, raw=json.dumps(good(claim="caf\u00e9"), ensure_ascii=False).encode("latin-1"))
    bad["huge"] = make_run(runs, "huge", None, raw=b'{"id": "a/b", "pad": "' + b"x" * 5_000_000 + b'"}')
    bad["empty"] = make_run(runs, "empty", None, raw=b"")
    bad["pass-but-failed"] = make_run(runs, "lying", good(checks=[{"name": "x", "passed": False}]))
    bad["newline-name"] = make_run(runs, "two\nlines", [1])
    # a result.json that is a symlink to a file outside, and a run folder that is a symlink to a folder outside
    outside = tmp_path / "outside-run"
    outside.mkdir()
    (outside / "result.json").write_text(json.dumps(good(seed=9)))
    (outside / "leak.png").write_bytes(SECRET)
    d = runs / "hostile" / "linked-json"
    d.mkdir()
    os.symlink(outside / "result.json", d / "result.json")
    bad["linked-json"] = d
    os.symlink(outside, runs / "hostile" / "linked-dir")
    return runs, bad, tmp_path


def test_hostile_runs_are_skipped_or_defused_and_nothing_outside_is_referenced(hostile, capsys):
    runs, bad, tmp_path = hostile
    out = tmp_path / "report"
    warnings = []
    index = write_report(runs, out, results=None, warn=warnings.append)
    assert index.exists()
    # every malformed folder is named in exactly one one-line warning; the honest run is in the report
    for name, folder in bad.items():
        hits = [w for w in warnings if f"hostile/{folder.name.replace(chr(10), '?')}:" in w]
        assert len(hits) == 1, (name, warnings)
        assert "\n" not in hits[0]
    assert "toytest/threshold" in index.read_text()
    # no file in the report holds the secret, no page references anything outside the report
    for path in out.rglob("*"):
        if path.is_file():
            assert b"TOPSECRET" not in path.read_bytes(), path
            assert not path.is_symlink()
            if path.suffix == ".html":
                p = _Attrs()
                p.feed(path.read_text())
                assert p.bad == [], (path, p.bad)
                for ref in p.refs:
                    if ref.startswith("https://"):
                        continue
                    target = (path.parent / (ref.split("#", 1)[0] or path.name)).resolve()  # "#x": this page's anchor
                    assert target.is_relative_to(out.resolve()) and target.exists(), (path, ref)
    # the warnings about figures/texts pointing outside were given, and those figures are absent
    assert any("/etc/passwd" in w for w in warnings) and any("evil.png" in w for w in warnings)
    text = "".join(p.read_text() for p in out.rglob("*.html"))
    assert "&lt;script&gt;" in text and "<script" not in text
    assert "TOPSECRET" not in text and "root:" not in text


def test_cli_report_survives_hostile_runs_with_one_line_warnings(hostile, capsys):
    runs, bad, tmp_path = hostile
    assert cli.main(["report", "--runs", str(runs), "--out", str(tmp_path / "r"), "--results", str(tmp_path / "no")]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("mlreads: warning: skipped")]
    assert len(lines) == len(bad)


@pytest.mark.parametrize("data, message", [
    ([], "must be a JSON object"),
    ({"budget": "smoke"}, "has no 'id'"),
    (good(id="Upper/Case"), "'id' must look like"),
    (good(id="a/b/c"), "'id' must look like"),
    (good(seed=-1), "'seed' must be an integer"),
    (good(seed=True), "'seed' must be an integer"),
    (good(seed=2**64), "'seed' must be an integer"),
    (good(elapsed_s="1"), "'elapsed_s'"),
    (good(texts={"a": 1}), "'texts' must be an object of strings"),
    (good(checks=[]), "'checks' must be a non-empty list"),
    (good(checks=[{"name": "x", "passed": "yes"}]), "boolean 'passed'"),
    (good(checks=[{"name": "x", "passed": True, "relation": {"op": "<script>", "lhs": "a"}}]), "malformed 'relation'"),
])  # fmt: skip
def test_schema_refuses(data, message):
    with pytest.raises(BadResult, match=message):
        validate(data)


def test_inside_resolves_symlinks_before_deciding(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "ok.png").write_bytes(b"x")
    (tmp_path / "secret").write_bytes(b"s")
    os.symlink(tmp_path / "secret", run / "link")
    os.symlink(run / "ok.png", run / "inner-link")
    os.symlink("loop", run / "loop")
    assert inside(run, "ok.png") == (run / "ok.png").resolve()
    assert inside(run, "inner-link") == (run / "ok.png").resolve()
    for name in ["link", "../secret", str(tmp_path / "secret"), "loop", "missing", "", ".", "a\x00b", None, 3]:
        assert inside(run, name) is None, name


def test_load_result_refuses_a_run_folder_outside_the_root(tmp_path):
    root, other = tmp_path / "runs", tmp_path / "other"
    root.mkdir()
    other.mkdir()
    (other / "result.json").write_text(json.dumps(good()))
    os.symlink(other, root / "escape")
    with pytest.raises(BadResult, match="outside the runs folder"):
        load_result(root / "escape" / "result.json", root)


def test_one_figure_listed_many_times_is_copied_once(tmp_path, toy, monkeypatch):
    monkeypatch.setattr("mlreads.core.run.registry.load_all", lambda: {toy.id: toy})
    runs = tmp_path / "runs"
    d = make_run(runs, "many", good(figures=["f.png"] * 5000 + [f"g{i}.png" for i in range(200)]))
    (d / "f.png").write_bytes(SECRET[:8] + b"img")
    warnings = []
    write_report(runs, tmp_path / "report", warn=warnings.append)
    copied = list((tmp_path / "report").rglob("*.png"))
    assert len(copied) == 1 and any("showing the first 100" in w for w in warnings)


def test_a_symlink_planted_in_the_report_folder_is_not_written_through(tmp_path, toy, monkeypatch):
    monkeypatch.setattr("mlreads.core.run.registry.load_all", lambda: {toy.id: toy})
    runs, out, victim = tmp_path / "runs", tmp_path / "report", tmp_path / "victim"
    make_run(runs, "ok", good())
    victim.mkdir()
    (out / "runs" / "toytest__threshold").mkdir(parents=True)
    os.symlink(victim, out / "runs" / "toytest__threshold" / "ok")
    (victim / "keep.txt").write_text("x")
    os.symlink(victim / "keep.txt", out / "index.html")
    write_report(runs, out, warn=lambda m: None)
    assert sorted(p.name for p in victim.iterdir()) == ["keep.txt"] and (victim / "keep.txt").read_text() == "x"
    assert (out / "index.html").is_file() and not (out / "index.html").is_symlink()
