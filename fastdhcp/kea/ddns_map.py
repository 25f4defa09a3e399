"""Kea 2.2's DDNS keys and fastdhcp's ``[ddns]`` (docs/migrating-from-kea.md, "DDNS"): which
carry one to one, and Kea's defaults, for import-kea and export-kea.

Kea splits DDNS between kea-dhcp4 (the global ``ddns-*`` / ``hostname-char-*`` name rules and
``dhcp-ddns``, its link to the kea-dhcp-ddns daemon) and kea-dhcp-ddns (zones, DNS servers,
TSIG keys). fastdhcp sends its updates itself, so the name rules, ``enable-updates`` and
``max-queue-size`` map one to one; the link to the daemon has no equivalent.
"""

from __future__ import annotations

from typing import Any

from fastdhcp.ddns.config import DdnsConfig

__all__ = ["D2_CLIENT_KEYS", "D2_LINK_KEYS", "KEA_CONFLICT_BOOL", "NAME_KEYS", "kea_defaults"]

_D = DdnsConfig()

#: Dhcp4 parameters carried into ``[ddns]`` under the same name, with Kea 2.2's default
#: (fastdhcp's [ddns] defaults are Kea's: fastdhcp.ddns.config).
NAME_KEYS: dict[str, Any] = {
    "ddns-send-updates": _D.send_updates,
    "ddns-override-client-update": _D.override_client_update,
    "ddns-override-no-update": _D.override_no_update,
    "ddns-replace-client-name": _D.replace_client_name.value,
    "ddns-generated-prefix": _D.generated_prefix,
    "ddns-qualifying-suffix": _D.qualifying_suffix,
    "ddns-update-on-renew": _D.update_on_renew,
    "ddns-use-conflict-resolution": True,
    "ddns-conflict-resolution-mode": _D.conflict_mode.value,
    "hostname-char-set": _D.hostname_char_set,
    "hostname-char-replacement": _D.hostname_char_replacement,
}
#: ``Dhcp4.dhcp-ddns`` entries carried into ``[ddns]`` under the same name, with Kea's
#: default (Kea's ``enable-updates`` is off by default, fastdhcp's on inside a [ddns] table).
D2_CLIENT_KEYS: dict[str, Any] = {"enable-updates": False, "max-queue-size": _D.max_queue_size}
#: ``Dhcp4.dhcp-ddns`` entries that address the kea-dhcp-ddns daemon: no fastdhcp equivalent
#: (the updates leave from fastdhcp itself).
D2_LINK_KEYS = ("server-ip", "server-port", "sender-ip", "sender-port", "ncr-protocol",
                "ncr-format")
#: ``ddns-conflict-resolution-mode`` values Kea 2.2's boolean can say.
KEA_CONFLICT_BOOL: dict[str, bool] = {"check-with-dhcid": True, "no-check-with-dhcid": False}


def kea_defaults() -> dict[str, Any]:
    """Every carried key with Kea 2.2's default."""
    return {**NAME_KEYS, **D2_CLIENT_KEYS}
