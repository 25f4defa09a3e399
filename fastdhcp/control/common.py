"""What every transport does with a command once it has its bytes: the size limit, decoding
the envelope and the one dispatch (so the answer never depends on how a command arrived)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastdhcp.control.protocol import (
    Answer,
    Caller,
    CommandError,
    Request,
    Result,
    decode_request,
)

if TYPE_CHECKING:
    from fastdhcp.control.target import ControlTarget

__all__ = ["MAX_REQUEST", "Dispatch", "run_bytes", "target_dispatch", "too_large"]

#: What a transport hands each parsed command to: a server's command table
#: (:func:`target_dispatch`) or the multi-worker control front. It never raises.
Dispatch = Callable[[Request, Caller], Awaitable[Answer]]

#: Largest command accepted (bytes): a config-set of a large config fits; more is refused.
MAX_REQUEST = 1 << 20


def too_large() -> Answer:
    """The answer to a command over :data:`MAX_REQUEST` bytes."""
    return Answer(Result.ERROR, f"command too large: over {MAX_REQUEST} bytes")


def target_dispatch(target: ControlTarget) -> Dispatch:
    """The dispatch of ``target``'s own command table."""
    async def dispatch(request: Request, caller: Caller) -> Answer:
        return await target.commands.dispatch(target, request, caller)
    return dispatch


async def run_bytes(dispatch: Dispatch, data: bytes, caller: Caller) -> Answer:
    """Decode one command from the bytes of a JSON document and answer it."""
    try:
        request = decode_request(data)
    except CommandError as exc:
        return exc.answer()
    return await dispatch(request, caller)
