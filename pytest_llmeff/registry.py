"""The one registry type: named entries, loaded lazily, extensible, with did-you-mean errors."""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


_CALL = re.compile(r"^\s*([A-Za-z0-9_:.-]+)\s*(?:\((.*)\))?\s*$")


def _literal(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip().strip("'\"")


def parse_call(text: str, what: str) -> tuple[str, dict[str, Any]]:
    """``"name"`` or ``"name(key=value, …)"`` → (name, settings); values become bool/int/float/str.

    Raises:
        ValueError: malformed text (``what`` names the kind of thing in the message).
    """
    match = _CALL.match(text)
    if not match:
        raise ValueError(f"malformed {what} {text!r}: expected 'name' or 'name(key=value, …)'")
    kwargs: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in (match.group(2) or "").split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"{what} {text!r}: setting {part!r} needs the form key=value")
        kwargs[key.strip()] = _literal(value)
    return match.group(1), kwargs


def split_top_level(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses: ``"a(x=1,y=2),b"`` → ``["a(x=1,y=2)", "b"]``."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def call_with_settings(factory: Callable[..., T], name: str, kwargs: dict[str, Any], what: str) -> T:
    """Call ``factory(**kwargs)``, refusing settings it does not take with the list of those it does."""
    params = inspect.signature(factory).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ValueError(f"{what} {name!r} has no setting {', '.join(unknown)} "
                         f"(settings: {', '.join(params) or 'none'})")
    return factory(**kwargs)


class UnknownNameError(KeyError, ValueError):
    """An unknown registry name; the message lists close matches and the known names."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0])


def did_you_mean(name: str, choices: list[str]) -> str:
    """`` — did you mean 'x'?`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" — did you mean {close[0]!r}?" if close else ""


class Registry(Generic[T]):
    """Name → entry, where an entry is an object or a lazy ``"module:attr"`` string.

    Lazy strings keep heavy imports (torch, transformers, bitsandbytes…) out of plugin start-up:
    the module is imported the first time the name is looked up.

    Args:
        kind: what the entries are, for error messages ("compressor", "metric", …).
        entry_point_group: a ``importlib.metadata`` entry-point group third parties can register in.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        self._group = entry_point_group
        self._entry_points_loaded = entry_point_group is None

    def copy(self) -> Registry[T]:
        """A registry with the same entries; additions to it do not reach this one (one per run)."""
        self._load_entry_points()
        other: Registry[T] = Registry(self.kind)
        other._entries = dict(self._entries)
        return other

    def register(self, name: str, entry: T | str, *, replace: bool = False) -> None:
        """Add ``name``; refusing to shadow an existing entry unless ``replace`` is set."""
        if not name or name != name.strip():
            raise ValueError(f"invalid {self.kind} name {name!r}")
        if name in self._entries and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered (pass replace=True to override)")
        self._entries[name] = entry

    def decorator(self, name: str) -> Callable[[T], T]:
        """``@registry.decorator("name")`` registers the decorated object."""
        def wrap(obj: T) -> T:
            self.register(name, obj)
            return obj
        return wrap

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self._group or ""):
            if ep.name not in self._entries:
                self._entries[ep.name] = ep.value

    def names(self) -> list[str]:
        """All registered names, sorted."""
        self._load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def create(self, text: str) -> Any:
        """``name`` or ``name(key=value, …)`` → the (factory) entry called with those settings.

        Raises:
            UnknownNameError: unknown name; ValueError / TypeError: malformed text or settings.
        """
        name, kwargs = parse_call(text, self.kind)
        return call_with_settings(self.get(name), name, kwargs, self.kind)  # type: ignore[arg-type]

    def get(self, name: str) -> T:
        """The entry for ``name``, importing it on first use.

        Raises:
            UnknownNameError: ``name`` is not registered (with the closest match, if any).
        """
        self._load_entry_points()
        if name not in self._entries:
            known = self.names()
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{did_you_mean(name, known)} (known: {', '.join(known)})"
            )
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            obj = importlib.import_module(module)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
            self._entries[name] = obj  # type: ignore[assignment]
            entry = obj  # type: ignore[assignment]
        return entry  # type: ignore[return-value]
