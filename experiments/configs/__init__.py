"""Study configs: one module per study, `get_config(arg)` returning a frozen dataclass.

As in big_vision's project configs, `arg` picks a variant: None (or "full") is the assignment's budget,
"quick" the smallest budget on the same code path (big_vision's `runlocal`). Every field is declared with
`setting(default, help, low=, high=, choices=)`: the help text and the allowed range are what the command
line shows and what `validate` enforces, before anything is loaded or compiled.

This module imports no JAX: `--help` and a refused flag answer at once.
"""
from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from typing import Any

from jaxgen.errors import ConfigError

VARIANTS = ("full", "quick")
NONE_WORDS = ("none", "all")  # how a user writes None for an optional count ("all": the whole split)


def setting(default, help: str, *, low=None, high=None, choices=None):
    """A config field with its help text and allowed range (inclusive bounds; `choices` for strings)."""
    return dataclasses.field(default=default, metadata={"help": help, "low": low, "high": high, "choices": choices})


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Fields every study has. A study's config subclasses this (also frozen)."""

    seed: int = setting(0, "seed of every random draw: initialisation, batch order, noise, subsets",
                        low=0, high=2**31 - 1)

    def replace(self, **changes) -> "StudyConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def check(self) -> None:
        """Checks across fields (a study overrides this); raise ConfigError naming the flags."""


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def parse_arg(arg: str | None) -> str:
    """The variant named by `get_config`'s argument."""
    variant = (arg or "full").strip().lower()
    if variant not in VARIANTS:
        raise ConfigError(f"unknown config variant {arg!r}: use 'quick' or leave it out")
    return variant


def load(study: str, arg: str | None = None) -> StudyConfig:
    """`experiments.configs.<study>.get_config(arg)`."""
    return importlib.import_module(f"experiments.configs.{study}").get_config(arg)


def flag(name: str) -> str:
    """The command-line flag of a field: batch_size -> --batch-size."""
    return "--" + name.replace("_", "-")


def field_types(config_class) -> dict[str, Any]:
    return typing.get_type_hints(config_class)


def _unwrap_optional(kind):
    """(inner type, allows None)."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return inner[0], True
    return kind, False


def describe_range(field: dataclasses.Field, kind) -> str:
    """'an integer in [1, 10000]', 'one of a, b', 'a number > 0' ... as the error messages and --help say it."""
    meta = field.metadata
    inner, optional = _unwrap_optional(kind)
    if meta.get("choices"):
        text = "one of " + ", ".join(map(str, meta["choices"]))
    else:
        noun = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(inner)
        if noun is None and typing.get_origin(inner) is tuple:
            element = typing.get_args(inner)[0]
            noun = f"comma-separated {'integers' if element is int else 'numbers'}"
        noun = noun or str(inner)
        low, high = _number(meta.get("low")), _number(meta.get("high"))
        if low is not None and high is not None:
            text = f"{noun} in [{low}, {high}]"
        elif low is not None:
            text = f"{noun} >= {low}"
        elif high is not None:
            text = f"{noun} <= {high}"
        else:
            text = noun
    if optional:
        text += " or 'all'" if inner is int else " or 'none'"
    return text


def _number(value) -> str | None:
    if value is None:
        return None
    return str(value) if isinstance(value, int) else f"{value:g}"


def metavar(config_class, name: str) -> str:
    """How --help names a field's value: N, X, TEXT, {a,b}, N,N,..."""
    field = {f.name: f for f in dataclasses.fields(config_class)}[name]
    if field.metadata.get("choices"):
        return "{" + ",".join(map(str, field.metadata["choices"])) + "}"
    inner, _ = _unwrap_optional(field_types(config_class)[name])
    if typing.get_origin(inner) is tuple:
        return "N,N,..."
    return {int: "N", float: "X", bool: "BOOL", str: "TEXT"}.get(inner, "VALUE")


def parse_value(config_class, name: str, text: str, source: str):
    """The typed value of field `name` written as `text` on the command line (`source`: the flag used)."""
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    kind = field_types(config_class)[name]
    inner, optional = _unwrap_optional(kind)
    word = text.strip()
    wrong = ConfigError(f"{source} {text}: must be {describe_range(fields[name], kind)}")
    if optional and word.lower() in NONE_WORDS:
        return None
    try:
        if inner is bool:
            lowered = word.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(word)
        if inner is int:
            return int(word)
        if inner is float:
            return float(word)
        if inner is str:
            return word
        if typing.get_origin(inner) is tuple:
            element = typing.get_args(inner)[0]
            return tuple(element(part) for part in word.split(",") if part.strip())
    except ValueError:
        raise wrong from None
    raise TypeError(f"config field {name}: unsupported type {kind}")


def validate(config: StudyConfig, sources: dict[str, str] | None = None) -> StudyConfig:
    """Refuse a value outside its field's range, in one line naming the flag; then the config's own checks."""
    sources = sources or {}
    kinds = field_types(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        inner, optional = _unwrap_optional(kinds[field.name])
        source = sources.get(field.name, flag(field.name))
        if value is None and optional:
            continue
        meta = field.metadata
        values = value if isinstance(value, tuple) else (value,)
        bad = meta.get("choices") is not None and value not in meta["choices"]
        for v in values:
            if isinstance(v, bool) and inner is not bool:
                bad = True
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                if v != v or (meta.get("low") is not None and v < meta["low"]) or \
                        (meta.get("high") is not None and v > meta["high"]):
                    bad = True
        if typing.get_origin(inner) is tuple and not values:
            bad = True
        if bad:
            shown = ",".join(map(str, values)) if isinstance(value, tuple) else value
            raise ConfigError(f"{source} {shown}: must be {describe_range(field, kinds[field.name])}")
    config.check()
    return config
