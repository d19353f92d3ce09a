"""benchmarks/mamba_long_eval.py reads a run folder and writes its rows to --out, never into the run folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlreads.core.run.saved import save_model
from mlreads.mamba.exp_common import build_mamba

ROOT = Path(__file__).resolve().parents[2]


def test_long_eval_writes_to_out_and_leaves_the_run_folder_alone(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    cfg = {"d_model": 8, "n_layers": 1, "d_state": 4, "vocab": 8}
    (run / "result.json").write_text(json.dumps({"config": cfg}))
    save_model(run, "mamba", build_mamba(cfg["d_model"], cfg["n_layers"], cfg["d_state"], cfg["vocab"], seed=0))
    def files() -> dict[str, bytes]:
        return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}

    before = files()
    out = tmp_path / "eval" / "rows.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "MLREADS_NO_EXT": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "mamba_long_eval.py"), str(run), "--log2", "5",
                           "--n", "2", "--segment", "16", "--out", str(out)], capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = json.loads(out.read_text())
    assert row["L"] == 32 and row["n"] == 2
    assert files() == before, "the run folder is only read"
