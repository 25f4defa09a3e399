# fastdhcp._engine, part: the exchange. Included by _engine.pyx.
#
# One request on its way through the message steps, as Kea's Dhcpv4Exchange: what it is
# (message, link, time, client key, chaddr, client id) and what the parts found for it on the
# way (the record _claim read, the subscriber an offer counts against, the API reservation
# _reservation found), instead of positional argument lists and out-parameter fields of the
# Engine. Its fields are declared in _engine.pxd.


@cython.final
cdef class Exchange:
    """One request being decided (internal). The Engine owns a single one and refills it in
    ``handle`` for every packet (no object made per packet: the engine is not reentrant,
    one request is decided at a time); the steps read it, and the parts they call leave what
    they found in it. It keeps the last request's references until the next one."""
