"""The TLS context of an HTTPS control socket, from Kea's keys: ``trust-anchor`` (a CA file or
directory), ``cert-file``, ``key-file`` and ``cert-required``.

One function builds it, so that ``check-config`` (which loads the files to refuse a config
whose certificates do not load) and the running transport cannot disagree.
"""

from __future__ import annotations

import os
import ssl

__all__ = ["TlsFileError", "server_context"]


class TlsFileError(OSError):
    """A TLS file that does not load: the config key at fault (``trust-anchor``,
    ``cert-file`` or ``key-file``), the file and why. An OSError, as any socket that cannot
    be opened."""

    def __init__(self, key: str, path: str, reason: str) -> None:
        super().__init__(f"{key} {path}: {reason}")
        self.key = key
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.key} {self.path}: {self.reason}"


def _why(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        # OpenSSL's reason code, e.g. KEY_VALUES_MISMATCH -> "key values mismatch"
        return exc.reason.replace("_", " ").lower() if exc.reason else str(exc)
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def server_context(trust_anchor: str, cert_file: str, key_file: str,
                   cert_required: bool) -> ssl.SSLContext:
    """A server-side context: TLS 1.2 or later, our certificate and key, client certificates
    verified against ``trust_anchor`` (required when ``cert_required``, as Kea's default;
    otherwise asked for and verified when given). Raises :class:`TlsFileError`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if os.path.isdir(trust_anchor):
            ctx.load_verify_locations(capath=trust_anchor)
        else:
            ctx.load_verify_locations(cafile=trust_anchor)
    except (OSError, ValueError) as exc:
        raise TlsFileError("trust-anchor", trust_anchor, _why(exc)) from None
    # The certificate parsed on its own first, so that a bad certificate is not blamed on the key.
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=cert_file)
    except (OSError, ValueError) as exc:
        raise TlsFileError("cert-file", cert_file, _why(exc)) from None
    try:
        with open(key_file, "rb"):
            pass
        ctx.load_cert_chain(cert_file, key_file)
    except (OSError, ValueError) as exc:
        raise TlsFileError("key-file", key_file, f"{_why(exc)} (does it load, and is it the "
                           "key of cert-file?)") from None
    ctx.verify_mode = ssl.CERT_REQUIRED if cert_required else ssl.CERT_OPTIONAL
    return ctx
