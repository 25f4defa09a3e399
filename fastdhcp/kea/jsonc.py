"""Kea's JSON dialect: JSON plus ``//``, ``#`` and ``/* */`` comments and ``<?include "file"?>``.

Kea's parser (``src/lib/cc/data.cc`` and the bison grammars) accepts these in every config file;
plain :mod:`json` rejects them. :func:`load` turns the dialect into plain JSON text and parses
that, keeping a map from each line of the plain text back to its file and line, so that a
syntax error is reported where the operator wrote it (``kea.conf:41: ...``).

Comments are replaced by spaces (newlines kept), never removed, so line numbers stay true.
An include is replaced by the included file's text on lines of its own; the include's path is
taken as Kea takes it: absolute, or relative to the working directory of the process (Kea
opens it with the path as written). Includes nest; a cycle is an error.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from fastdhcp.errors import ConfigError

__all__ = ["KeaJsonError", "load", "loads"]

_INCLUDE_OPEN = "<?include"
_INCLUDE_CLOSE = "?>"
#: Deeper nesting than this is a cycle Kea would also refuse (it stops at 10 as well).
_MAX_DEPTH = 10


class KeaJsonError(ConfigError):
    """A Kea config file that cannot be read; the one problem line names ``file:line``."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where one line of the expanded text came from."""

    file: str  #: the file as named (the top file's path, or an include's path)
    line: int  #: 1-based line in that file


@dataclass(slots=True)
class _Expanded:
    """Plain JSON text being built, and the origin of each of its lines."""

    parts: list[str] = field(default_factory=list)
    origins: list[Origin] = field(default_factory=list)

    def newline(self, origin: Origin) -> None:
        """End the current output line; the next one comes from ``origin``."""
        self.parts.append("\n")
        self.origins.append(origin)


def _fail(origin: Origin, reason: str) -> KeaJsonError:
    return KeaJsonError(f"{origin.file}:{origin.line}: {reason}")


def _expand(text: str, name: str, out: _Expanded, stack: tuple[str, ...]) -> None:
    """Append ``text`` (the contents of file ``name``) to ``out`` as plain JSON."""
    line = 1
    i = 0
    n = len(text)
    start = 0  # first character not yet copied to out
    while i < n:
        c = text[i]
        if c == "\n":
            out.parts.append(text[start:i])
            line += 1
            out.newline(Origin(name, line))
            i += 1
            start = i
        elif c == '"':
            # A string: copy it whole; comment and include markers inside are data.
            j = i + 1
            while j < n and text[j] != '"':
                if text[j] == "\\":
                    j += 1
                elif text[j] == "\n":
                    break
                j += 1
            if j >= n or text[j] != '"':
                raise _fail(Origin(name, line), "string not closed on its line")
            i = j + 1
        elif c == "#" or text.startswith("//", i):
            out.parts.append(text[start:i])
            j = text.find("\n", i)
            i = n if j < 0 else j
            start = i
        elif text.startswith("/*", i):
            out.parts.append(text[start:i])
            j = text.find("*/", i + 2)
            if j < 0:
                raise _fail(Origin(name, line), "comment '/*' is never closed with '*/'")
            # Keep the comment's newlines so that later lines keep their numbers.
            for _ in range(text.count("\n", i, j)):
                line += 1
                out.newline(Origin(name, line))
            i = j + 2
            start = i
        elif text.startswith(_INCLUDE_OPEN, i):
            out.parts.append(text[start:i])
            here = Origin(name, line)
            end = text.find(_INCLUDE_CLOSE, i)
            if end < 0 or "\n" in text[i:end]:
                raise _fail(here, "'<?include' without '?>' on the same line")
            target = _include_target(text[i + len(_INCLUDE_OPEN):end], here)
            _include(target, here, out, stack)
            out.newline(here)  # back to the includer's line
            i = end + len(_INCLUDE_CLOSE)
            start = i
        else:
            i += 1
    out.parts.append(text[start:])


def _include_target(inner: str, here: Origin) -> str:
    inner = inner.strip()
    if len(inner) < 2 or inner[0] != '"' or inner[-1] != '"' or '"' in inner[1:-1]:
        raise _fail(here, f'include {inner!r}: expected <?include "file"?>')
    return inner[1:-1]


def _include(target: str, here: Origin, out: _Expanded, stack: tuple[str, ...]) -> None:
    real = os.path.realpath(target)
    if real in stack:
        raise _fail(here, f"include {target!r}: includes itself (cycle)")
    if len(stack) >= _MAX_DEPTH:
        raise _fail(here, f"include {target!r}: more than {_MAX_DEPTH} levels of includes")
    try:
        with open(target, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise _fail(here, f"include {target!r}: cannot read "
                          f"(relative to {os.getcwd()}, as Kea reads it): "
                          f"{exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise _fail(here, f"include {target!r}: not UTF-8 text: {exc.reason}") from exc
    out.newline(Origin(target, 1))
    _expand(text, target, out, (*stack, real))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            # Kea's parser refuses a repeated key in a map: guessing which one wins is wrong.
            raise ValueError(f"key {key!r} appears twice in one map")
        out[key] = value
    return out


def loads(text: str, name: str = "<string>", *, _stack: tuple[str, ...] = ()) -> Any:
    """Parse Kea-dialect JSON ``text`` (from file ``name``); raise :class:`KeaJsonError`."""
    out = _Expanded(origins=[Origin(name, 1)])
    _expand(text, name, out, _stack)
    plain = "".join(out.parts)
    try:
        return json.loads(plain, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        origin = out.origins[min(exc.lineno, len(out.origins)) - 1]
        raise _fail(origin, f"invalid JSON: {exc.msg}") from exc
    except ValueError as exc:
        raise KeaJsonError(f"{name}: {exc}") from exc


def load(path: str | os.PathLike[str]) -> Any:
    """Read and parse the Kea config file ``path`` (includes and all)."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise KeaJsonError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise KeaJsonError(f"{name}: not UTF-8 text: {exc.reason}") from exc
    return loads(text, name, _stack=(os.path.realpath(name),))
