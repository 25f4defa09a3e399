"""Typed readers of a command's ``arguments`` map, each failing with a Kea-style text.

Kea's texts differ from command to command; the defaults here are lease_cmds' (``missing
parameter 'x'``, ``invalid type specified for parameter 'x'``) and each reader takes the
command's own text where Kea words it otherwise (reference: kea-control-api.md).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from fastdhcp.control.protocol import CommandError

__all__ = ["Args", "NOT_A_MAP"]

#: Kea's text when a command needs a map and got none (or something else).
NOT_A_MAP = "Parameters missing or are not a map."

_MISSING = object()


class Args:
    """The ``arguments`` of one command. ``Args.of(value)`` checks that it is a map (absent
    counts as an empty map unless ``required``)."""

    __slots__ = ("_d",)

    def __init__(self, d: dict[str, Any]) -> None:
        self._d = d

    @classmethod
    def of(cls, value: object, *, required: bool = False,
           missing_text: str = NOT_A_MAP) -> Args:
        """Wrap ``value``; raise ``CommandError`` if it is not a map (or absent and required)."""
        if value is None and not required:
            return cls({})
        if not isinstance(value, dict):
            raise CommandError(missing_text)
        return cls(value)

    def __contains__(self, key: str) -> bool:
        return key in self._d

    def keys(self) -> Iterable[str]:
        """The keys given."""
        return self._d.keys()

    def raw(self, key: str, default: Any = None) -> Any:
        """The value as given, or ``default``."""
        return self._d.get(key, default)

    def as_dict(self) -> dict[str, Any]:
        """The whole map (not a copy)."""
        return self._d

    def only(self, allowed: Iterable[str]) -> None:
        """Refuse any key outside ``allowed``, naming it."""
        allowed = set(allowed)
        for key in self._d:
            if key not in allowed:
                raise CommandError(f"unknown parameter '{key}' (expected one of "
                                   f"{', '.join(sorted(allowed))})")

    def _get(self, key: str, missing: str | None) -> Any:
        value = self._d.get(key, _MISSING)
        if value is _MISSING:
            raise CommandError(missing or f"missing parameter '{key}'")
        return value

    def get_str(self, key: str, default: Any = _MISSING, *, missing: str | None = None,
            bad_type: str | None = None) -> Any:
        """A string parameter (``default`` when absent, else missing is an error)."""
        if key not in self._d and default is not _MISSING:
            return default
        value = self._get(key, missing)
        if not isinstance(value, str):
            raise CommandError(bad_type or f"invalid type specified for parameter '{key}'")
        return value

    def get_int(self, key: str, default: Any = _MISSING, *, lo: int | None = None,
            hi: int | None = None, missing: str | None = None,
            bad_type: str | None = None) -> Any:
        """An integer parameter (JSON true/false are not integers), within ``lo``..``hi``."""
        if key not in self._d and default is not _MISSING:
            return default
        value = self._get(key, missing)
        if isinstance(value, bool) or not isinstance(value, int):
            raise CommandError(bad_type or f"invalid type specified for parameter '{key}'")
        if lo is not None and value < lo or hi is not None and value > hi:
            bounds = f"{lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}"
            raise CommandError(f"parameter '{key}' out of range: {value} (expected {bounds})")
        return value

    def get_bool(self, key: str, default: Any = _MISSING, *, missing: str | None = None,
             bad_type: str | None = None) -> Any:
        """A boolean parameter."""
        if key not in self._d and default is not _MISSING:
            return default
        value = self._get(key, missing)
        if not isinstance(value, bool):
            raise CommandError(bad_type or f"invalid type specified for parameter '{key}'")
        return value

    def get_map(self, key: str, default: Any = _MISSING, *, missing: str | None = None,
            bad_type: str | None = None) -> Any:
        """A map parameter."""
        if key not in self._d and default is not _MISSING:
            return default
        value = self._get(key, missing)
        if not isinstance(value, dict):
            raise CommandError(bad_type or f"invalid type specified for parameter '{key}'")
        return value

    def get_list(self, key: str, default: Any = _MISSING, *, missing: str | None = None,
             bad_type: str | None = None) -> Any:
        """A list parameter."""
        if key not in self._d and default is not _MISSING:
            return default
        value = self._get(key, missing)
        if not isinstance(value, list):
            raise CommandError(bad_type or f"invalid type specified for parameter '{key}'")
        return value

    def get_ipv4(self, key: str, default: Any = _MISSING, *, missing: str | None = None,
             bad_type: str | None = None) -> Any:
        """An IPv4 address parameter, as a host-order int."""
        if key not in self._d and default is not _MISSING:
            return default
        text = self.get_str(key, missing=missing, bad_type=bad_type)
        return parse_ipv4(text)


def parse_ipv4(text: str) -> int:
    """Dotted IPv4 text -> host-order int, with Kea's text when it is not one."""
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        raise CommandError(f"Failed to convert string to address '{text}': Invalid argument"
                           ) from None
