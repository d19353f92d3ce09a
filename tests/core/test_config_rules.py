"""Issue 21 item 3: config rules are declared on the fields and read by one validator; nothing is guessed from names.

Every field of every registered experiment's config tree declares its rule (or is a bool or a `Literal`, whose type is
the whole rule), every registered config passes its own rules at every budget, and string switches refuse an unknown
value in one line instead of reading it as "the other option"."""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from mlreads.core.errors import ConfigError
from mlreads.core.fields import (
    choices,
    declared_rule,
    filepath,
    nonnegative,
    positive,
    unchecked,
)
from mlreads.core.run import registry
from mlreads.core.run.config import apply_overrides, problems, validate

sys.path.insert(0, str(Path(__file__).parent))
from cli_capture import assert_one_line_exit_2, run_cli

# ------------------------------------------------------------------------------ every field declares its rule


def _needs_rule(tp) -> bool:
    """Whether a field of annotation `tp` can take a bad value its type lets through: numbers, strings (paths and
    switches) and tuples of them. A bool or a Literal (or a tuple of Literals) is fully checked by its type."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return any(_needs_rule(a) for a in typing.get_args(tp) if a is not type(None))
    if typing.get_origin(tp) in (tuple, list):
        return any(_needs_rule(a) for a in typing.get_args(tp) if a is not Ellipsis)
    return tp in (int, float, str)


def undeclared(cfg, prefix: str = "") -> list[str]:
    """Dotted keys of the leaf fields of a (nested) config that need a rule and declare none."""
    hints = typing.get_type_hints(type(cfg))
    out = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out += undeclared(value, f"{prefix}{f.name}.")
        elif _needs_rule(hints[f.name]) and declared_rule(f) is None:
            out.append(f"{type(cfg).__name__}.{f.name} ({prefix}{f.name})")
    return out


def test_every_field_of_every_registered_config_declares_its_rule():
    """A new numeric, string or path field without `positive(...)`, `choices(...)`, `filepath(...)`, ... (or an
    explicit `unchecked(...)`) fails here: it would otherwise be checked for its type only."""
    missing = set()
    for exp in registry.load_all().values():
        for cfg in exp.configs.values():
            missing.update(undeclared(cfg))
    assert not missing, f"declare a rule on these config fields: {sorted(missing)}"


@dataclass(frozen=True)
class Inner:
    path: str | None = None
    sizes: tuple[int, ...] = (1, 2)


@dataclass(frozen=True)
class Outer:
    steps: int = positive(3)
    flag: bool = True
    mode: Literal["a", "b"] = "a"
    modes: tuple[Literal["a", "b"], ...] = ("a",)
    scale: float = unchecked(2.0)
    inner: Inner = dataclasses.field(default_factory=Inner)


def test_the_walk_finds_an_undeclared_field_and_accepts_declared_bool_and_literal_ones():
    assert undeclared(Outer()) == ["Inner.path (inner.path)", "Inner.sizes (inner.sizes)"]


def test_every_registered_config_passes_its_declared_rules_at_every_budget():
    """The registry's own values are valid under the declared rules alone (no exemption for shipped values)."""
    for exp in registry.load_all().values():
        for budget, cfg in exp.configs.items():
            assert problems(cfg) == [], (exp.id, budget)


# --------------------------------------------------------------------------------------------- the rule API


@dataclass(frozen=True)
class Switches:
    kind: str = choices("lin", ("lin", "inv"))
    kinds: tuple[str, ...] = choices(("lin",), ("lin", "inv"))
    sizes: tuple[int, ...] = positive((4, 8))
    stages: tuple[int, ...] = positive((), nonempty=False)
    path: str | None = filepath(None)
    every: int = nonnegative(0, what="0 means off")
    free: float = unchecked(1.0)
    undeclared_count: int = 3  # no rule: its type only


@pytest.mark.parametrize("key, value, message", [
    ("kind", "legs", "kind='legs': must be one of lin, inv"),
    ("kind", "", "must be one of lin, inv"),
    ("kinds", "lin,foo", "kinds=('lin', 'foo'): item 1 ('foo') must be one of lin, inv"),
    ("kinds", "", "kinds=(): must not be empty"),
    ("sizes", "4,0", "item 1 (0) must be >= 1 and <= 2147483647"),
    ("sizes", "", "must not be empty"),
    ("path", " ", "path=' ': must not be empty"),
    ("every", "-1", "every=-1: must be >= 0 and <= 2147483647 (0 means off)"),
    ("every", str(2**31), "<= 2147483647"),
])  # fmt: skip
def test_declared_rules_refuse_in_one_line(key, value, message):
    with pytest.raises(ConfigError) as err:
        apply_overrides(Switches(), {key: value})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_declared_rules_accept_their_values_and_undeclared_fields_are_checked_for_type_only():
    cfg = apply_overrides(Switches(), {"kind": "inv", "kinds": "inv,lin", "stages": "", "path": "none",
                                       "every": "0", "free": "-5", "undeclared_count": "-7"})  # fmt: skip
    assert (cfg.kind, cfg.kinds, cfg.stages, cfg.path, cfg.free, cfg.undeclared_count) == (
        "inv", ("inv", "lin"), (), None, -5.0, -7)
    assert problems(dataclasses.replace(Switches(), undeclared_count="3")) == [  # type: ignore[arg-type]
        "undeclared_count='3': expected int"]
    with pytest.raises(ConfigError, match="must be a finite number"):
        validate(dataclasses.replace(Switches(), free=float("nan")))


@dataclass(frozen=True)
class Named:
    steps: int = 10
    data_path: str = "x"


def test_no_name_conventions_are_left():
    """A field named like a count (`steps`) or a path (`data_path`) with no declared rule is not guessed at."""
    from mlreads.core.run import config

    assert not hasattr(config, "convention")

    assert apply_overrides(Named(), {"steps": "0", "data_path": ""}) == Named(steps=0, data_path="")


# --------------------------------------------------------------------- string switches refused before a run


@pytest.mark.parametrize("exp_id, setting, message", [
    ("s4/mnist-init", "tasks=foo", "tasks=('foo',): item 0 ('foo') must be one of permuted, sequential"),
    ("ddpm/mnist", "sigma2_kinds=beta,beta_tild", "item 1 ('beta_tild') must be one of beta, beta_tilde"),
    ("ddpm/objective-ablation", "objectives=eps", "must be one of eps_simple, eps_vlb, mu_vlb, mu_mse"),
    ("gan/mnist", "g_loss=minimax", "g_loss='minimax': must be one of non_saturating, saturating"),
    ("circuits/induction-heads", "positional=rotary", "must be one of residual, shortformer, none"),
    ("alexnet/relu-vs-tanh", "dataset=cifar10", "dataset='cifar10': must be one of mnist, fashion"),
    ("resnet/degradation", "dataset=Fashion", "must be one of mnist, fashion"),
    ("transformer/ablations", "variants=base,h2", "item 1 ('h2') must be one of base, ls0, learned_pe, h1"),
    ("adam/mlp-mnist", "lrs=adam:1e-3,sgd:0.1", "unknown optimiser 'sgd'"),
    ("adam/logreg-mnist", "lrs=adam:fast", "write optimiser:lr/lr/..."),
])  # fmt: skip
def test_an_unknown_switch_value_exits_2_with_one_line_before_anything_runs(exp_id, setting, message, tmp_path):
    code, out, err = run_cli(["run", exp_id, "--budget", "smoke", "--out", str(tmp_path), "--set", setting,
                              "--dry-run"])  # fmt: skip
    assert_one_line_exit_2(code, err)
    assert message in err and "would run" not in out, err


@pytest.mark.parametrize("exp_id, setting", [
    ("s4/mnist-init", "tasks=sequential,permuted"), ("ddpm/mnist", "sigma2_kinds=beta_tilde"),
    ("gan/mnist", "g_loss=saturating"), ("circuits/induction-heads", "positional=residual"),
    ("alexnet/relu-vs-tanh", "dataset=fashion"), ("transformer/ablations", "variants=h1"),
    ("adam/mlp-mnist", "lrs=rmsprop:1e-3/3e-3,sgd-nesterov:0.1"),
])  # fmt: skip
def test_every_known_switch_value_is_accepted(exp_id, setting, tmp_path):
    code, out, err = run_cli(["run", exp_id, "--budget", "smoke", "--out", str(tmp_path), "--set", setting,
                              "--dry-run"])  # fmt: skip
    assert code == 0 and "would run" in out, err


def test_the_optimiser_names_the_lrs_rule_accepts_are_the_ones_optimizer_builds():
    import torch

    from mlreads.optim.exp_common import OPTIMIZERS, optimizer

    params = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.1}]
    for name in OPTIMIZERS:
        assert isinstance(optimizer(name)(params), torch.optim.Optimizer), name
    with pytest.raises(ValueError, match="unknown optimizer"):
        optimizer("sgd")
