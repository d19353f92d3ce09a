"""Frozen dataclass configs and `--set key=value` overrides checked against the field types, then every value against
the rule its field declares (`positive`, `in_range`, `choices`, `filepath`, ... below).

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
from mlreads.core.fields import Rule, declared_rule

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


def apply_overrides(cfg: Any, overrides: dict[str, str], check: bool = True) -> Any:
    """Return a copy of `cfg` with dotted-key overrides applied, each checked against its field's type; then (with
    `check`) every value of the result against its field's rule (`validate`)."""
    for key, text in overrides.items():
        cfg = _set(cfg, key.split("."), text, key)
    return validate(cfg, "--set " if overrides else "") if check else cfg


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
        return _replace(cfg, name, _set(current, path[1:], text, full_key), f"--set {full_key}={text!r}")
    if dataclasses.is_dataclass(current):
        raise ConfigError(f"--set {full_key}: is a group of settings; set one of its fields, e.g. {full_key}.<field>")
    hints = typing.get_type_hints(type(cfg))
    return _replace(cfg, name, parse_value(text, hints[name], full_key), f"--set {full_key}={text!r}")


def _replace(cfg: Any, name: str, value: Any, what: str) -> Any:
    """dataclasses.replace, with a `__post_init__` ValueError (a cross-field rule) turned into one ConfigError line."""
    try:
        return dataclasses.replace(cfg, **{name: value})
    except ConfigError:
        raise
    except (ValueError, TypeError, AssertionError) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        raise ConfigError(f"{what}: {msg}") from None


# ---------------------------------------------------------------------------------------------- value validation
#
# Every config value is checked, not only its type. A field declares its rule on itself, in the dataclass, with the
# helpers of `mlreads.core.fields` (a leaf that every room may import):
#
#     steps: int = positive(100)                  # ints: 1..INT_MAX; floats: > 0
#     warmup: int = nonnegative(0)                # ints: 0..INT_MAX; floats: >= 0
#     dropout: float = in_range(0.0, 0.0, 1.0)    # [0, 1)
#     sizes: tuple[int, ...] = positive((4, 8))   # a tuple: the rule holds for each item, and it is non-empty
#     kind: str = choices("lin", ("lin", "inv"))  # a string switch; a tuple of str: each item one of them
#     path: str | None = filepath(None)           # a path: not blank (None: the default source)
#     prompt: str = nonempty("ROMEO:")
#     pool: int = spec(1, ge=1, check=lambda v: None if 28 % v == 0 else "must divide 28")
#     scale: float = unchecked(-1.0)              # explicitly any finite value of its type
#
# `validate` reads these rules and the annotations, nothing else: a field with no declared rule is checked for its
# type only (and for a finite number or a string without NUL). tests/core/test_config_rules.py fails when a field of
# a registered experiment's config declares nothing, so a new field cannot go unchecked by accident. Cross-field rules
# live in `__post_init__` (raise ValueError or ConfigError) and in `cross_field_problems`. `validate(cfg)` raises
# ConfigError, one line.

_TYPE_ONLY = Rule()  # what a field without a declared rule is held to beyond its type: finite, no NUL


def _type_ok(value: Any, tp: Any) -> bool:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in args)
    if tp is type(None):
        return value is None
    if origin is Literal:
        return value in args
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_type_ok(v, args[0]) for v in value)
        return not args or (len(value) == len(args) and all(_type_ok(v, a) for v, a in zip(value, args)))
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True  # an annotation we do not model (Callable, a Protocol, ...)


def shipped_values(configs: Any) -> dict[str, list[Any]]:
    """{dotted key: the values the given (registered) configs use}: a value an experiment ships is valid for it, even
    where a field's rule (shared with other experiments) says otherwise. Every registered config passes its declared
    rules without this exemption (tests/core/test_config_rules.py); it keeps a budget's own value runnable should a
    shared rule and a budget ever disagree."""
    out: dict[str, list[Any]] = {}

    def walk(cfg: Any, prefix: str) -> None:
        for f in dataclasses.fields(cfg):
            value = getattr(cfg, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, prefix + f.name + ".")
            else:
                out.setdefault(prefix + f.name, []).append(value)

    for cfg in configs:
        if dataclasses.is_dataclass(cfg):
            walk(cfg, "")
    return out


def problems(cfg: Any, prefix: str = "", shipped: dict[str, list[Any]] | None = None) -> list[str]:
    """Every invalid value of a (nested) config, each as 'key=value: what is wrong'. [] when all are valid.

    A value is checked against its annotation, then against the rule its field declares (`declared_rule`); a field
    without one is checked for its type only. `shipped` (from `shipped_values`): values the experiment's own configs
    use, valid whatever the rules say."""
    if not dataclasses.is_dataclass(cfg):
        return []
    shipped = shipped or {}
    out: list[str] = []
    try:
        hints = typing.get_type_hints(type(cfg))
    except Exception:  # an annotation that does not resolve: nothing to check against
        hints = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        key = prefix + f.name
        if dataclasses.is_dataclass(value):
            out += problems(value, key + ".", {k[len(f.name) + 1 :]: v for k, v in shipped.items()
                                              if k.startswith(f.name + ".")})  # fmt: skip
            continue
        tp = hints.get(f.name)
        if tp is None:
            continue
        if not _type_ok(value, tp):
            out.append(f"{key}={_show(value)}: expected {_type_name(tp)}")
            continue
        if value is None or any(_same(value, v) for v in shipped.get(f.name, ())):
            continue
        rule = declared_rule(f) or _TYPE_ONLY
        if (p := rule.problem(value)) is not None:
            out.append(f"{key}={_show(value)}: {p}")
    if not out:
        out += [prefix + p for p in cross_field_problems(cfg)]
    return out


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def cross_field_problems(cfg: Any) -> list[str]:
    """Conventions across fields of one config: heads divide d_model (when there is no d_head), X_min <= X_max,
    min_X <= X."""
    names = {f.name for f in dataclasses.fields(cfg)}
    get = lambda n: getattr(cfg, n)  # noqa: E731
    out = []
    if "d_model" in names and "d_head" not in names and isinstance(get("d_model"), int):
        for n in sorted(names):
            if (n == "n_heads" or n.endswith("_heads")) and isinstance(get(n), int) and get(n) > 0:
                if get("d_model") % get(n):
                    out.append(f"{n}={get(n)} must divide d_model={get('d_model')}")
    for n in sorted(names):
        pairs = []
        if n.endswith("_min") and n[:-4] + "_max" in names:
            pairs.append((n, n[:-4] + "_max"))
        if n.startswith("min_") and "max_" + n[4:] in names:
            pairs.append((n, "max_" + n[4:]))
        if n.startswith("min_") and n[4:] in names:
            pairs.append((n, n[4:]))
        for lo, hi in pairs:
            a, b = get(lo), get(hi)
            if _number(a) and _number(b) and a > b:
                out.append(f"{lo}={a} must be <= {hi}={b}")
    return out


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def validate(cfg: Any, where: str = "", examples: Any = ()) -> Any:
    """Return `cfg` when every value is valid, else raise ConfigError naming the first problem (one line).

    `examples`: the experiment's registered configs, whose values are valid for it (see `shipped_values`)."""
    found = problems(cfg, shipped=shipped_values(examples))
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ConfigError(f"{where}{found[0]}{more}")
    return cfg
