"""`--set key=value` overrides: typed parsing, nested keys, and clear errors on junk (hypothesis-driven)."""

from dataclasses import dataclass, field
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlreads.core.errors import ConfigError
from mlreads.core.run.config import apply_overrides, parse_overrides, parse_value


@dataclass(frozen=True)
class Inner:
    path: str | None = None
    frac: float = 0.1


@dataclass(frozen=True)
class Cfg:
    steps: int = 10
    lr: float = 1e-3
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    betas: tuple[float, float] = (0.9, 0.99)
    sizes: tuple[int, ...] = (1, 2)
    clip: float | None = 1.0
    data: Inner = field(default_factory=Inner)


def test_typed_overrides_and_nesting():
    cfg = apply_overrides(Cfg(), parse_overrides([
        "steps=42", "lr=3e-4", "flag=true", "mode=b", "betas=0.8,0.9", "sizes=4,5,6", "clip=none",
        "data.path=/tmp/x.txt", "data.frac=0.5",
    ]))  # fmt: skip
    assert cfg == Cfg(42, 3e-4, True, "b", (0.8, 0.9), (4, 5, 6), None, Inner("/tmp/x.txt", 0.5))
    assert Cfg().steps == 10, "the original config is untouched"


@pytest.mark.parametrize("item, message", [
    ("stepz=3", "unknown key 'stepz' (did you mean 'steps'?)"),
    ("steps=1.5", "expected an int"),
    ("lr=fast", "expected a float"),
    ("lr=nan", "expected a finite float"),
    ("flag=maybe", "expected a bool"),
    ("mode=c", "expected one of a, b"),
    ("betas=0.9", "expected 2 comma-separated values"),
    ("data=3", "is a group of settings"),
    ("data.nope=1", "unknown key 'nope'"),
    ("steps.x=1", "no such setting"),
    ("noequals", "expected key=value"),
])  # fmt: skip
def test_bad_overrides_name_the_problem(item, message):
    with pytest.raises(ConfigError) as err:
        apply_overrides(Cfg(), parse_overrides([item]))
    assert message in str(err.value)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(["steps", "lr", "flag", "mode", "betas", "sizes", "clip", "data.path", "data.frac"]),
       value=st.text(max_size=20))
def test_junk_values_either_parse_to_the_field_type_or_raise_config_error(key, value):
    try:
        cfg = apply_overrides(Cfg(), {key: value})
    except ConfigError as e:
        assert key in str(e)
        return
    got = cfg.data.path if key == "data.path" else cfg.data.frac if key == "data.frac" else getattr(cfg, key)
    expected_type = {"steps": int, "lr": float, "flag": bool, "mode": str, "betas": tuple, "sizes": tuple,
                     "clip": (float, type(None)), "data.path": (str, type(None)), "data.frac": float}[key]
    assert isinstance(got, expected_type)
    if key == "steps":
        assert got == int(value)


def test_parse_value_rejects_unsupported_types():
    with pytest.raises(ConfigError, match="cannot be set"):
        parse_value("1", dict, "x")
