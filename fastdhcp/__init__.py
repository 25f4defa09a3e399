"""fastdhcp: a DHCPv4 server for ISP-scale lease serving.

The packet path is compiled (``fastdhcp._codec``, ``fastdhcp._bitmap``), the event loop is
uvloop, and every binding is committed to LMDB before its DHCPACK leaves (RFC 2131 3.1 step 4).
"""

__version__ = "0.1.0"
