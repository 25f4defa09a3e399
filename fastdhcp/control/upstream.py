"""One command to a worker's private Unix control socket, on the loop, bounded in time: how
the multi-worker control front asks its workers (:mod:`fastdhcp.service.control_front`)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastdhcp.control.protocol import Answer, Result

__all__ = ["WorkerUnavailable", "ask"]

_READ = 1 << 16


class WorkerUnavailable(Exception):
    """The worker did not answer: not listening, gone mid-answer, too slow or not JSON; the
    text says which."""


def _answer_of(body: bytes) -> Answer:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise WorkerUnavailable(f"its answer is not JSON: {body[:80]!r}") from None
    if not isinstance(value, dict):
        raise WorkerUnavailable("its answer is not a JSON object")
    result = value.get("result")
    if isinstance(result, bool) or not isinstance(result, int):
        raise WorkerUnavailable("its answer has no integer 'result'")
    try:
        code = Result(result)
    except ValueError:
        raise WorkerUnavailable(f"its answer has result {result}, not a Kea code") from None
    text = value.get("text")
    return Answer(code, text if isinstance(text, str) else None, value.get("arguments"))


async def ask(path: str, command: str, arguments: Any, timeout: float) -> Answer:
    """Send ``command`` (with ``arguments`` unless None) to the worker listening on ``path``
    and return its answer; :class:`WorkerUnavailable` when there is none within
    ``timeout`` seconds."""
    request: dict[str, Any] = {"command": command}
    if arguments is not None:
        request["arguments"] = arguments
    data = json.dumps(request).encode()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(data)
            await writer.drain()
            chunks: list[bytes] = []
            # the worker closes once its answer is out (one command per connection)
            while chunk := await reader.read(_READ):
                chunks.append(chunk)
    except TimeoutError:
        raise WorkerUnavailable(f"no answer within {timeout:g} s") from None
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise WorkerUnavailable(f"not running ({exc.strerror})") from None
    except OSError as exc:
        raise WorkerUnavailable(f"{exc.strerror or exc}") from None
    finally:
        if writer is not None:
            writer.close()
    body = b"".join(chunks)
    if not body:
        raise WorkerUnavailable("it closed the connection without an answer")
    return _answer_of(body)
