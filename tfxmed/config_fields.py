"""Typed dataclass fields read from nested dicts: the machinery behind `tfxmed.config`.

`field` declares what a value may be (choices, an interval, a list length); `from_dict` builds a
dataclass from a dict, converting only where it is lossless and naming the key, the value received and
what is allowed in every error; `apply_overrides` applies `a.b=value` strings. No tfxmed section is
named here: the sections and the rules that tie them together live in `tfxmed.config`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Sequence
from typing import Any, NamedTuple

import yaml

__all__ = ["ConfigError", "field", "from_dict", "deep_merge", "apply_overrides"]


class ConfigError(ValueError):
    """A configuration key or value is not allowed."""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


class _Interval(NamedTuple):
    """An allowed range written as in mathematics: "[0, 1)", "(0, inf)", "[1, inf)"."""

    low: float
    high: float
    low_closed: bool
    high_closed: bool

    @classmethod
    def parse(cls, text: str) -> _Interval:
        low, high = (float(bound) for bound in text[1:-1].split(","))
        if text[0] not in "[(" or text[-1] not in "])" or low > high:
            raise ValueError(f"not an interval: {text!r}")
        return cls(low, high, text[0] == "[", text[-1] == "]")

    def __contains__(self, value: object) -> bool:
        value = float(value)  # type: ignore[arg-type]
        above = value >= self.low if self.low_closed else value > self.low
        below = value <= self.high if self.high_closed else value < self.high
        return above and below

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"{'>=' if self.low_closed else '>'} {_number(self.low)}"
        left, right = "[" if self.low_closed else "(", "]" if self.high_closed else ")"
        return f"in {left}{_number(self.low)}, {_number(self.high)}{right}"


def field(default: Any, *, choices: Sequence = (), within: str = "", length: str = "") -> Any:
    """A dataclass field with the values it allows: `choices`, an interval `within` (for a list: each
    item's) and, for a list, its `length` interval. Checked by `from_dict`."""
    metadata = {"choices": tuple(choices), "within": _Interval.parse(within) if within else None,
                "length": _Interval.parse(length) if length else None}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", str(annotation))


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Checks `value` against the field type, converting only where it is lossless and obvious."""
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of {annotation.__name__} fields, got {value!r}")
        return from_dict(annotation, value, key)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list of {_type_name(item_type)}, got {value!r}")
        return [_coerce(item, item_type, f"{key}[{i}]") for i, item in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _coerce(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {annotation}, got {value!r}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def _yaml_name(value: Any) -> str:
    """How a choice is written in YAML (true, not True)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _check_allowed(field: dataclasses.Field, value: Any, key: str) -> None:
    """Raises a ConfigError naming `key`, `value` and what is allowed when `value` is outside `field`'s metadata."""
    choices, within, length = (field.metadata.get(name) for name in ("choices", "within", "length"))
    if choices and not any(type(value) is type(choice) and value == choice for choice in choices):  # 1 is not true
        raise ConfigError(f"{key}: {value!r} is not allowed; choose one of {', '.join(map(_yaml_name, choices))}")
    if length is not None and len(value) not in length:
        count = _number(length.low) if length.low == length.high else str(length).removeprefix("in ")
        raise ConfigError(f"{key}: expected a list of {count} items, got {value!r}")
    for index, item in enumerate(value) if isinstance(value, list) else [(None, value)]:
        if within is not None and item not in within:
            raise ConfigError(f"{key if index is None else f'{key}[{index}]'}: must be {within}, got {item!r}")


def _moved_hint(cls: type, name: str, prefix: str) -> str:
    """' (did you mean model.small_cnn.width?)' for a key that lives one section deeper."""
    deeper = [f"{prefix}.{section}.{name}".lstrip(".") for section, hint in typing.get_type_hints(cls).items()
              if dataclasses.is_dataclass(hint) and name in {f.name for f in dataclasses.fields(hint)}]
    return f" (did you mean {' or '.join(deeper)}?)" if deeper else ""


def from_dict(cls: type, values: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if name not in fields:
            raise ConfigError(f"unknown config key '{key}'; allowed keys here: {', '.join(fields)}"
                              f"{_moved_hint(cls, name, prefix)}")
        try:
            kwargs[name] = _coerce(value, hints[name], key)
        except ConfigError:
            if not fields[name].metadata.get("choices"):
                raise
            kwargs[name] = value  # e.g. `true | false | auto`: say which values are allowed, not which types
        _check_allowed(fields[name], kwargs[name], key)
    return cls(**kwargs)


def deep_merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for name, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = deep_merge(merged[name], value)
        else:
            merged[name] = value
    return merged


def apply_overrides(values: dict, overrides: Sequence[str]) -> dict:
    """Applies `a.b=value` strings (values parsed as YAML) to a nested dict, in order."""
    result = values
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"override '{override}' must look like section.key=value")
        dotted, raw = override.split("=", 1)
        try:
            parsed = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as error:
            raise ConfigError(f"override '{override}': the value is not valid YAML ({type(error).__name__})") from None
        update: dict = {}
        cursor = update
        parts = dotted.strip().split(".")
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = parsed
        result = deep_merge(result, update)
    return result
