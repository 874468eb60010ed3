"""Config keys declared once, as fields of the settings dataclasses.

A key is a dataclass field made by `setting(default, doc, ...)`: its type is the field's
annotation; its default, bounds, choices and one-line doc are the call's arguments.
Everything else is derived from that one declaration: `build` parses a TOML table into the
dataclass (the known keys, the dotted names errors carry, the parsing by type, the
defaults), and `reference` renders the README's Markdown table of keys. So adding a key
is adding a field, and the README cannot drift from the code (a test compares them).

A field whose type is itself a dataclass is a table of its own (``[storage.s3]``). Rules
that involve several keys (a preset's width must be on the width list) cannot be
declared per key: `build` runs them, per section class, after the section is built.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Colour = tuple[int, int, int]  # written "#rrggbb"
_KEY = "config-key"  # where `setting` puts its `Key` in the field's metadata


class ConfigError(ValueError):
    """A config value is missing, unknown or out of range; the message names the key."""


@dataclass(frozen=True)
class Key:
    """What a key's declaration says besides its type and default."""

    doc: str  # one line: the README table's "meaning"
    # Numbers (and each item of a list of numbers): None means positive (ints >= 1, floats > 0).
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()  # str, tuple[str, ...]: the values allowed (lowercased)
    min_length: int = 1  # tuple[str, ...] without choices: shortest item
    allow_empty: bool = False  # tuple[int, ...]: [] is allowed
    # A rule of this key alone, run on a written value after parsing: normalises or refuses it.
    check: Callable[[str, Any], Any] | None = None
    # For a type the built-in parsers do not cover: (dotted name, TOML value) -> value.
    parse: Callable[[str, Any], Any] | None = None

    @property
    def low(self) -> int:
        """The smallest integer allowed."""
        return 1 if self.minimum is None else self.minimum


# A rule spanning a section's keys: (built section, the table as written, its dotted name) -> section.
SectionCheck = Callable[[Any, Mapping[str, Any], str], Any]


def setting(default: Any, doc: str, **rules: Any) -> Any:
    """Declare a key: ``port: int = setting(8000, "bind port", minimum=0, maximum=65535)``."""
    metadata = {_KEY: Key(doc, **rules)}
    if isinstance(default, dict):  # mutable: each instance gets its own copy
        return dataclasses.field(default_factory=lambda: dict(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


# ---------------------------------------------------------------------------
# Value parsers: each takes the dotted name so its error can name the key.


def integer(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"{name}: must be {bound}, got {value}")
    return value


def number(name: str, value: Any, minimum: int | None = None) -> float:
    """A finite number: > 0, or >= `minimum` when one is given."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}: must be a number, got {value!r}")
    if not math.isfinite(value) or (value <= 0 if minimum is None else value < minimum):
        raise ConfigError(f"{name}: must be {'> 0.0' if minimum is None else f'>= {minimum}'}, got {value}")
    return float(value)


def text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name}: must be a string, got {value!r}")
    return value


def choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    word = text(name, value).lower()
    if word not in choices:
        raise ConfigError(f"{name}: must be one of {', '.join(choices)}, got {word!r}")
    return word


def refuse_unknown(name: str, table: Mapping[str, Any], known: Iterable[str]) -> None:
    """A key not declared is a typo: refuse it, listing the keys that exist."""
    known = sorted(known)
    for key in table:
        if key not in known:
            what = f"{name}.{key}: unknown key" if name else f"{key}: unknown section"
            raise ConfigError(f"{what} (known: {', '.join(known)})")


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name}: must be true or false, got {value!r}")
    return value


def _colour(name: str, value: Any) -> Colour:
    digits = text(name, value).lstrip("#")
    try:
        if len(digits) == 6:
            return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))
    except ValueError:
        pass
    raise ConfigError(f"{name}: must be a colour like '#ffffff', got {value!r}")


def _items(name: str, value: Any, allow_empty: bool = False) -> list[Any]:
    if allow_empty and value == []:
        return []
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{name}: must be a non-empty list, got {value!r}")
    return value


def _strings(name: str, value: Any, min_length: int) -> tuple[str, ...]:
    """A list of free strings; a bare string is a list of one (handy in env overrides), "" of none."""
    if isinstance(value, str):
        value = [value] if value else []
    if not isinstance(value, list):
        raise ConfigError(f"{name}: must be a list of strings")
    items = tuple(text(f"{name}[{i}]", v) for i, v in enumerate(value))
    for i, item in enumerate(items):
        if len(item) < min_length:
            raise ConfigError(f"{name}[{i}]: must be at least {min_length} characters")
    return items


def _parse(key: Key, kind: Any, name: str, value: Any) -> Any:
    """A written value as the declared type. Lists of numbers come back sorted and unique (they
    are allow-lists); lists of choices unique, in the written order."""
    if key.parse is not None:
        return key.parse(name, value)
    if kind is bool:
        return _flag(name, value)
    if kind is int:
        return integer(name, value, key.low, key.maximum)
    if kind is float:
        return number(name, value, key.minimum)
    if kind is str:
        return choice(name, value, key.choices) if key.choices else text(name, value)
    if kind is Path:
        return Path(text(name, value)).expanduser()
    if kind == Colour:
        return _colour(name, value)
    if kind == tuple[int, ...]:
        items = _items(name, value, key.allow_empty)
        return tuple(sorted({integer(f"{name}[{i}]", v, key.low, key.maximum) for i, v in enumerate(items)}))
    if kind == tuple[float, ...]:
        return tuple(sorted({number(f"{name}[{i}]", v) for i, v in enumerate(_items(name, value))}))
    if kind == tuple[str, ...] and key.choices:
        return tuple(dict.fromkeys(choice(f"{name}[{i}]", v, key.choices) for i, v in enumerate(_items(name, value))))
    if kind == tuple[str, ...]:
        return _strings(name, value, key.min_length)
    raise TypeError(f"{name}: no parser for {kind!r}; declare one with parse=")


# ---------------------------------------------------------------------------
# Rules a declaration may name as its check=.


def trimmed(name: str, value: str) -> str:
    """Without a trailing "/": paths are appended to it, so it would double."""
    return value.rstrip("/")


def http_url(name: str, value: str) -> str:
    """Empty, or an http(s) URL (trimmed)."""
    url = trimmed(name, value)
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(f"{name}: must start with http:// or https://, got {url!r}")
    return url


def includes(item: Any, why: str) -> Callable[[str, tuple[Any, ...]], tuple[Any, ...]]:
    """A list that must hold `item`; `why` completes "must include ..."."""

    def check(name: str, values: tuple[Any, ...]) -> tuple[Any, ...]:
        if item not in values:
            raise ConfigError(f"{name}: must include {why}")
        return values

    return check


# ---------------------------------------------------------------------------
# Walking the declarations.


def _fields(cls: type) -> Iterator[tuple[dataclasses.Field[Any], Any]]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        yield f, hints[f.name]


def _is_table(kind: Any) -> bool:
    return isinstance(kind, type) and dataclasses.is_dataclass(kind)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise TypeError(f"{f.name}: declared without a default; every key needs one")


def build(cls: type[T], table: Any, name: str, base_dir: Path, checks: Mapping[type, SectionCheck]) -> T:
    """Parse the TOML `table` (dotted `name`, "" for the whole file) into `cls`, key by key as
    declared; a key not written takes its declared default. Relative paths resolve against
    `base_dir` (the config file's folder)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{name}: must be a table")
    fields = list(_fields(cls))
    refuse_unknown(name, table, (f.name for f, _ in fields))
    values: dict[str, Any] = {}
    for f, kind in fields:
        dotted = f"{name}.{f.name}" if name else f.name
        if _is_table(kind):
            values[f.name] = build(kind, table.get(f.name, {}), dotted, base_dir, checks)
            continue
        if f.name in table:
            key: Key = f.metadata[_KEY]
            value = _parse(key, kind, dotted, table[f.name])
            values[f.name] = key.check(dotted, value) if key.check else value
        else:
            values[f.name] = _default(f)
        if isinstance(values[f.name], Path):
            values[f.name] = base_dir / values[f.name]  # an absolute path stays as it is
    section = cls(**values)
    check = checks.get(cls)
    return check(section, table, name) if check else section


def overlay_env(cls: type, raw: dict[str, Any], environ: Mapping[str, str], prefix: str) -> None:
    """Overlay ``<prefix><SECTION>__<KEY>`` variables onto the parsed TOML `raw`, in place. The
    value is parsed as a TOML value when it is one, otherwise taken as a string."""
    sections = [f.name for f in dataclasses.fields(cls)]
    for name, value_text in environ.items():
        if not name.startswith(prefix) or "__" not in name:
            continue
        section, _, key = name[len(prefix) :].lower().partition("__")
        if section not in sections:
            raise ConfigError(f"{name}: unknown section {section!r} (known: {', '.join(sections)})")
        try:
            value: Any = tomllib.loads(f"v = {value_text}")["v"]
        except tomllib.TOMLDecodeError:
            value = value_text
        table = raw.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: must be a table")
        table[key] = value


@dataclass(frozen=True)
class Declared:
    """One declared key, as the reference table and the tests see it."""

    table: str  # "server", "storage.s3"
    name: str
    kind: Any
    key: Key
    default: Any

    @property
    def dotted(self) -> str:
        return f"{self.table}.{self.name}"

    @property
    def shown(self) -> str:
        """The default as it is written in config.toml."""
        if self.kind == Colour:
            return '"#{:02x}{:02x}{:02x}"'.format(*self.default)
        return _toml(self.default)

    @property
    def meaning(self) -> str:
        k = self.key
        if k.choices:
            allowed = "choices: " + ", ".join(k.choices)
        elif k.maximum is not None:
            allowed = f"{k.low} … {k.maximum}"
        elif k.minimum is not None:
            allowed = f"≥ {k.minimum}"
        elif k.min_length > 1:
            allowed = f"≥ {k.min_length} characters"
        else:
            return k.doc
        return f"{k.doc}; {allowed}"


def declared(cls: type, table: str = "") -> Iterator[Declared]:
    """Every key declared under `cls`, nested tables included, in declaration order."""
    for f, kind in _fields(cls):
        if _is_table(kind):
            yield from declared(kind, f"{table}.{f.name}" if table else f.name)
        else:
            yield Declared(table, f.name, kind, f.metadata[_KEY], _default(f))


def nested_tables(cls: type) -> list[str]:
    """The tables inside sections ("storage.s3"): each has its own reference table."""
    return list(dict.fromkeys(d.table for d in declared(cls) if "." in d.table))


def reference(cls: type, table: str | None = None) -> str:
    """The Markdown table (header and rows) of the keys in the nested `table`, or, with None,
    of the keys directly in the sections. README.md carries each between markers."""
    rows = [
        f"| `{d.dotted}` | `{d.shown}` | {d.meaning} |"
        for d in declared(cls)
        if (d.table == table if table else "." not in d.table)
    ]
    return "\n".join(["| key | default | meaning |", "|---|---|---|", *rows]) + "\n"


def _toml(value: Any) -> str:
    if value is None:  # an optional key left unset is written as its empty string
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, Path)):
        return json.dumps(str(value))
    if isinstance(value, tuple):
        return "[" + ", ".join(map(_toml, value)) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if dataclasses.is_dataclass(value):  # an inline table of the fields that differ from their default
        return _toml(
            {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if getattr(value, f.name) != f.default}
        )
    return repr(value)
