"""Issue 12, class 1: every config value is validated (the rules declared on its field), before anything runs.

The fuzz test feeds junk to every field of every registered experiment's config through the CLI's `main`, in
process, and asserts exit 2 with one line and no traceback; a second test sets every field to its own value and
asserts the run is reached (the rules refuse junk, not valid values)."""

from __future__ import annotations

import dataclasses
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlreads.core.errors import ConfigError
from mlreads.core.fields import (
    SEED_MAX,
    filepath,
    in_range,
    nonempty,
    nonnegative,
    positive,
    spec,
)
from mlreads.core.run import registry, runner
from mlreads.core.run.config import apply_overrides, problems, shipped_values, validate

sys.path.insert(0, str(Path(__file__).parent))
from cli_capture import run_cli

# --------------------------------------------------------------------------- declared rules and conventions


@dataclass(frozen=True)
class Declared:
    width: int = field(default=4, metadata={"ge": 2, "le": 64})
    rate: float = positive(0.5)
    keep: float = in_range(0.5, 0.0, 1.0)
    names: tuple[str, ...] = nonempty(("a",))
    pool: int = spec(2, check=lambda v: None if 28 % v == 0 else "must divide 28")
    anything: float = spec(-3.0)  # declared without bounds: the conventions do not apply


@dataclass(frozen=True)
class Conventional:  # the rules the name conventions gave before issue 21, now declared on each field
    steps: int = positive(10)
    batch_size: int = positive(4)
    eval_every: int = nonnegative(0)  # 0 allowed: 0 means "off"
    log_every: int = positive(10)
    n_heads: int = positive(4)
    d_model: int = positive(32)
    lr: float = positive(1e-3)
    min_lr: float = nonnegative(0.0)
    dropout: float = in_range(0.0, 0.0, 1.0)
    val_frac: float = in_range(0.1, 0.0, 1.0, lo_open=True)
    random_frac: float = in_range(0.5, 0.0, 1.0, hi_open=False)
    betas: tuple[float, float] = in_range((0.9, 0.99), 0.0, 1.0)
    densities: tuple[float, ...] = in_range((1.0, 0.1), 0.0, 1.0, lo_open=True, hi_open=False)
    curriculum: tuple[int, ...] = positive((), nonempty=False)
    path: str | None = filepath(None)
    mode: Literal["a", "b"] = "a"
    seed: int = nonnegative(0, le=SEED_MAX)
    grad_clip: float | None = positive(1.0)
    weight_decay: float = nonnegative(0.0)


@dataclass(frozen=True)
class CrossField:
    a_min: int = 1
    a_max: int = 5

    def __post_init__(self):
        if self.a_max - self.a_min > 100:
            raise ValueError("a_max - a_min must be at most 100\n(a second line that must not reach the user)")


@pytest.mark.parametrize("key, value, message", [
    ("width", "1", "width=1: must be >= 2 and <= 64"),
    ("width", "65", "<= 64"),
    ("rate", "0", "rate=0.0: must be > 0"),
    ("keep", "1.0", "must be >= 0 and < 1"),
    ("names", "", "names=(): must not be empty"),
    ("pool", "5", "pool=5: must divide 28"),
])  # fmt: skip
def test_declared_rules(key, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply_overrides(Declared(), {key: value})
    assert apply_overrides(Declared(), {"anything": "-7"}).anything == -7.0


@pytest.mark.parametrize("key, value", [
    ("steps", "0"), ("steps", "-3"), ("steps", str(2**40)), ("batch_size", "0"), ("log_every", "0"),
    ("eval_every", "-1"), ("n_heads", "0"), ("d_model", "0"), ("lr", "0"), ("lr", "-1e-3"), ("min_lr", "-1"),
    ("dropout", "1.0"), ("dropout", "2.0"), ("dropout", "-0.1"), ("val_frac", "1.0"), ("val_frac", "0"),
    ("random_frac", "1.5"), ("betas", "0.9,1.0"), ("betas", "-0.1,0.9"), ("densities", ""), ("densities", "0,0.5"),
    ("densities", "1.5"), ("curriculum", "0,4"), ("path", ""), ("path", "  "), ("seed", "-1"), ("seed", str(2**64)),
    ("grad_clip", "0"), ("grad_clip", "-1"), ("weight_decay", "-0.1"), ("n_heads", "3"),
])  # fmt: skip
def test_conventions_refuse_junk(key, value):
    with pytest.raises(ConfigError) as err:
        apply_overrides(Conventional(), {key: value})
    assert key in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("key, value", [
    ("eval_every", "0"), ("curriculum", ""), ("path", "none"), ("grad_clip", "none"), ("random_frac", "1.0"),
    ("min_lr", "0"), ("steps", str(2**31 - 1)), ("seed", str(2**63 - 1)), ("n_heads", "8"), ("mode", "b"),
])  # fmt: skip
def test_conventions_accept_valid_edges(key, value):
    apply_overrides(Conventional(), {key: value})


def test_cross_field_rules_are_one_line():
    with pytest.raises(ConfigError, match=r"n_heads=3 must divide d_model=32"):
        apply_overrides(Conventional(), {"n_heads": "3"})
    with pytest.raises(ConfigError, match="min_lr=0.5 must be <= lr=0.001"):
        apply_overrides(Conventional(), {"min_lr": "0.5"})
    with pytest.raises(ConfigError, match="a_min=9 must be <= a_max=5"):
        apply_overrides(CrossField(), {"a_min": "9"})
    with pytest.raises(ConfigError) as err:  # a __post_init__ ValueError, squeezed to one line
        apply_overrides(CrossField(), {"a_max": "500"})
    assert "at most 100" in str(err.value) and "\n" not in str(err.value)


def test_programmatic_configs_are_checked_for_types_too():
    bad = dataclasses.replace(Conventional(), steps="10")  # type: ignore[arg-type]
    assert problems(bad) == ["steps='10': expected int"]
    with pytest.raises(ConfigError):
        validate(dataclasses.replace(Conventional(), lr=float("nan")))


def test_every_registered_config_passes_its_own_rules():
    """No config this project ships is refused (every experiment, every budget): types, declared rules, cross-field
    rules, and the conventions except where the experiment itself ships the value (0 as "off", say)."""
    for exp in registry.load_all().values():
        for budget, cfg in exp.configs.items():
            assert problems(cfg, shipped=shipped_values(exp.configs.values())) == [], (exp.id, budget)


def test_a_value_the_experiment_ships_is_valid_for_it():
    @dataclass(frozen=True)
    class Gan:
        n_test: int = positive(10_000)  # a count: >= 1...

    with pytest.raises(ConfigError, match="n_test=0"):
        validate(Gan(n_test=0))
    validate(Gan(n_test=0), examples=[Gan(), Gan(n_test=0)])  # ...but a budget of this experiment uses 0 ("off")
    with pytest.raises(ConfigError, match="n_test=-1"):
        validate(Gan(n_test=-1), examples=[Gan(), Gan(n_test=0)])


# --------------------------------------------------------------------------- through the CLI, nothing runs


@pytest.fixture
def no_run(monkeypatch):
    """runner.run_planned (one planned run, as `mlreads run` executes it) replaced by a stub that records the call: a
    refused value never reaches it."""
    calls = []

    def fake(request, run):
        calls.append(run.exp.id)
        return {"id": run.exp.id, "budget": request.budget, "seed": request.seed, "elapsed_s": 0.0, "verdict": "pass",
                "checks": []}  # fmt: skip

    monkeypatch.setattr(runner, "run_planned", fake)
    return calls


def _assert_bad_input(code: int, err: str, argv) -> None:
    assert code == 2, (argv, code, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (argv, err)
    assert err.startswith("mlreads: error: "), err


@pytest.mark.parametrize("argv", [
    ["--set", "train.steps=0"], ["--set", "train.steps=-3"], ["--set", "batch_size=0"], ["--set", "n_ctx=0"],
    ["--set", "n_heads=3"], ["--set", "dropout=2.0"], ["--set", "data.val_frac=1.0"], ["--set", "train.log_every=0"],
    ["--set", "data.path="], ["--set", "train.betas="], ["--seed", str(2**64)], ["--seed", "-1"],
    ["--threads", str(10**11)], ["--threads", "0"], ["--set", "train.lr=nan"], ["--set", "train.min_lr=1"],
    ["--out", "bad\x00dir"],
])  # fmt: skip
def test_issue_examples_exit_2_before_anything_runs(argv, no_run, tmp_path):
    full = ["run", "gpt/char-lm", "--out", str(tmp_path), *argv]
    code, _, err = run_cli(full)
    _assert_bad_input(code, err, full)
    assert no_run == []


def _fields(cfg, prefix=""):
    """(dotted key, annotation, value, declared default) of every leaf field of a nested config."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            yield from _fields(value, f"{prefix}{f.name}.")
        else:
            yield prefix + f.name, hints[f.name], value


def _all_fields():
    out = []
    for exp in sorted(registry.load_all().values(), key=lambda e: e.id):
        budget = exp.budgets[0]
        for key, tp, value in _fields(exp.configs[budget]):
            out.append((exp.id, budget, key, tp, value))
    return out


FIELDS = _all_fields()
_PATH = re.compile(r"(^|_)(path|dir|file|folder|root)$")  # a field so named must refuse a blank path


def _text(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(_text(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def _junk(tp, value, name: str) -> st.SearchStrategy[str]:
    """Text that no field of type `tp` (default `value`) may accept, whatever its rule."""
    base = tp
    if typing.get_origin(tp) in (typing.Union, __import__("types").UnionType):
        base = next(a for a in typing.get_args(tp) if a is not type(None))
    words = st.sampled_from(["abc", "", " ", "1.5e", "--", "[]", "{}", "0x", "\x00", "é", "1,2,3x", "None!"])
    origin = typing.get_origin(base)
    if origin is Literal:
        return st.text(max_size=8).filter(lambda t: t not in map(str, typing.get_args(base)))
    if origin in (tuple, list):
        args = typing.get_args(base)
        variadic = len(args) == 2 and args[1] is Ellipsis
        elem = args[0] if args else str
        options = [st.sampled_from(["abc,def", "1,,x"])] if elem is not str else []
        if not variadic:
            options.append(st.just(",".join(["1"] * (len(args) + 1))))
        elif value:
            options.append(st.just(""))
        if elem in (int, float):
            options.append(st.integers(-(10**30), -1).map(lambda i: f"{i},{i}"))
        return st.one_of(*options) if options else st.nothing()
    if base is bool:
        return st.one_of(words, st.sampled_from(["2", "-1", "maybe", "tru"]))
    if base is int:
        return st.one_of(words, st.integers(-(10**30), -1).map(str), st.integers(2**63, 10**40).map(str),
                         st.sampled_from(["1.5", "nan", "inf", "1e3", "٣x"]))  # fmt: skip
    if base is float:
        out = [words, st.sampled_from(["nan", "inf", "-inf", "1e400", "-1e400"])]
        if not (isinstance(value, (int, float)) and value < 0):
            out.append(st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False).map(repr))
        return st.one_of(*out)
    if base is str:
        if value or _PATH.search(name.rsplit(".", 1)[-1]):
            return st.sampled_from(["", "  ", "a\x00b"])
        return st.just("a\x00b")
    return st.nothing()


def _junk_cases():
    cases = []
    for exp_id, budget, key, tp, value in FIELDS:
        strat = _junk(tp, value, key)
        if not strat.is_empty:
            cases.append((exp_id, budget, key, strat))
    return cases


JUNK = _junk_cases()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_junk_in_every_field_of_every_experiment_exits_2_with_one_line(data, no_run, tmp_path):
    exp_id, budget, key, strat = data.draw(st.sampled_from(JUNK), label="field")
    value = data.draw(strat, label="value")
    argv = ["run", exp_id, "--budget", budget, "--out", str(tmp_path), "--set", f"{key}={value}"]
    code, _, err = run_cli(argv)
    _assert_bad_input(code, err, argv)
    assert no_run == []


def test_fuzz_covers_every_field_of_every_experiment():
    assert {(c[0], c[2]) for c in JUNK} == {(f[0], f[2]) for f in FIELDS}
    assert len({c[0] for c in JUNK}) == len(registry.load_all())


@pytest.mark.parametrize("exp_id, budget, key, value", [(f[0], f[1], f[2], f[4]) for f in FIELDS],
                         ids=[f"{f[0]}:{f[2]}" for f in FIELDS])  # fmt: skip
def test_every_field_accepts_its_own_value(exp_id, budget, key, value, no_run, tmp_path):
    code, _, err = run_cli(["run", exp_id, "--budget", budget, "--out", str(tmp_path), "--set", f"{key}={_text(value)}"])
    assert code == 0 and no_run == [exp_id], err
