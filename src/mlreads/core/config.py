"""Frozen dataclass configs and `--set key=value` overrides checked against the field types.

A config is a `@dataclass(frozen=True)`; nested configs are dataclass fields and are addressed with dots
(`--set train.lr=3e-4`, `--set data.path=my.txt`). A value is parsed by the field's annotation: int, float, bool, str,
`X | None`, `Literal[...]` and `tuple[X, ...]`. Anything else is refused with a `ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal

from mlreads.core.errors import ConfigError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def to_dict(cfg: Any) -> dict:
    """A JSON-ready dict of a (nested) config."""
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg or {})


def parse_value(text: str, tp: Any, key: str = "value") -> Any:
    """Parse `text` as type `tp`, or raise ConfigError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.strip().lower() in ("none", "null"):
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return parse_value(text, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"--set {key}={text!r}: expected {_type_name(tp)}")
    if origin is Literal:
        for choice in args:
            if str(choice) == text:
                return choice
        raise ConfigError(f"--set {key}={text!r}: expected one of {', '.join(map(str, args))}")
    if origin in (tuple, list):
        items = [t for t in text.strip("()[] ").split(",") if t.strip()]
        if len(args) == 2 and args[1] is Ellipsis:
            elem_types = [args[0]] * len(items)
        elif args:
            elem_types = list(args)
            if len(items) != len(elem_types):
                raise ConfigError(f"--set {key}={text!r}: expected {len(elem_types)} comma-separated values")
        else:
            elem_types = [str] * len(items)
        return origin(parse_value(t.strip(), et, key) for t, et in zip(items, elem_types))
    if tp is bool:
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"--set {key}={text!r}: expected a bool (true/false)")
    if tp is int:
        try:
            return int(text.strip().replace("_", ""), 0) if text.strip().lower().startswith("0x") else int(text)
        except ValueError:
            raise ConfigError(f"--set {key}={text!r}: expected an int") from None
    if tp is float:
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"--set {key}={text!r}: expected a float") from None
        if not math.isfinite(value):
            raise ConfigError(f"--set {key}={text!r}: expected a finite float")
        return value
    if tp is str:
        return text
    raise ConfigError(f"--set {key}: fields of type {_type_name(tp)} cannot be set from the command line")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def parse_overrides(items: list[str]) -> dict[str, str]:
    """`["a.b=1", "c=x"]` -> `{"a.b": "1", "c": "x"}`; a malformed item raises ConfigError."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value")
        out[key.strip()] = value
    return out


def apply_overrides(cfg: Any, overrides: dict[str, str]) -> Any:
    """Return a copy of `cfg` with dotted-key overrides applied, each checked against its field's type."""
    for key, text in overrides.items():
        cfg = _set(cfg, key.split("."), text, key)
    return cfg


def _set(cfg: Any, path: list[str], text: str, full_key: str) -> Any:
    if not dataclasses.is_dataclass(cfg):
        raise ConfigError(f"--set {full_key}: this experiment has no such setting")
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    name = path[0]
    if name not in fields:
        import difflib

        near = difflib.get_close_matches(name, fields, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        valid = ", ".join(sorted(fields))
        raise ConfigError(f"--set {full_key}: unknown key {name!r}{hint}; valid keys: {valid}")
    current = getattr(cfg, name)
    if len(path) > 1:
        return dataclasses.replace(cfg, **{name: _set(current, path[1:], text, full_key)})
    if dataclasses.is_dataclass(current):
        raise ConfigError(f"--set {full_key}: is a group of settings; set one of its fields, e.g. {full_key}.<field>")
    hints = typing.get_type_hints(type(cfg))
    return dataclasses.replace(cfg, **{name: parse_value(text, hints[name], full_key)})
