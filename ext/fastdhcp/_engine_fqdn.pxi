# fastdhcp._engine, part: client names (option 81, RFC 4702; option 12, RFC 2132 3.14).
# Included by _engine.pyx (one C module; functions take the Engine first).
#
# The rule is fastdhcp.ddns.names.decide (pure Python, Kea's ddns-* behaviour); the engine asks
# it only with [ddns] configured and only for a request that carries option 81 or 12 (or for
# every OFFER/ACK when names are generated: ddns-replace-client-name always/when-not-present).
# Any other request pays a C flag test and two in-place option lookups: no Python call, no
# object made. A decision is pure (options and address in, an immutable NameDecision out), so
# it is cached by its inputs: the ACK repeats the OFFER's question, a renewal the ACK's.
# Measured (bench/bench_ddns.py, CPU time per DORA, two runs each): 2.45-2.51 us without
# [ddns], 2.54-2.56 us with it for clients without names; with option 81 from every client
# 27.8 us uncached (decide: ~12 us per reply), 15.3-15.5 us cached (one decide per DORA).
#
# Without [ddns] names are answered as Kea 2.2 answers them with updates off (it processes
# names whatever dhcp-ddns says): a reservation's hostname goes to its client in option 12,
# a client's own option 12 comes back (lower-cased, sanitised by Kea's default char set), an
# option 81 is answered with N=1 (names.decide_without_ddns, in Kea's bytes). A request
# without option 12 / 81 and without a reserved name pays what it paid before: a flag test
# and two in-place lookups.
# A plain option 12 (only a-z 0-9 '-' and inner dots: the default char set and lower-casing
# leave it as it is) is echoed here in C; anything else asks names.decide_without_ddns, cached.
#
# What the service owes DNS after a commit is left in ``Engine.ddns_pending``: address ->
# ``(lease, previous)``, the staged binding whose published name changed and the binding
# whose name it replaces (or None). The service takes an entry when that very lease object
# commits (fastdhcp.ddns.feed); a removal (release, expiry, decline) needs no entry: the
# ended record keeps the name and the flags.


cdef object _fqdn_decision(Engine self, Message msg, uint32_t ip):
    """The name decision for a reply to ``msg`` binding ``ip``, or None (no [ddns], or no
    name in play)."""
    cdef const unsigned char *p
    if self._ddns is None:
        return None
    if (not self._ddns_gen and msg._view(OPT_CLIENT_FQDN, &p) < 0
            and msg._view(OPT_HOSTNAME, &p) <= 0):
        return None  # no name in play: looked up in place, no bytes made
    fqdn = msg._opt_bytes(OPT_CLIENT_FQDN)
    host = msg._opt_bytes(OPT_HOSTNAME)
    key = (fqdn, host, ip)
    nd = self._ddns_cache.get(key)
    if nd is None:
        nd = self._ddns(fqdn, host, ip)
        if len(self._ddns_cache) >= CACHE_MAX:
            self._ddns_cache.clear()  # a DORA's two questions are moments apart: few are lost
        self._ddns_cache[key] = nd
    return nd


cdef list _fqdn_options(list opts, object nd):
    """``opts`` with the decision's option 81 or 12 (a configured 12 gives way to it)."""
    if nd is None:
        return opts
    if nd.reply_fqdn is not None:
        opts.append((81, nd.reply_fqdn))
    elif nd.reply_hostname is not None:
        opts = [o for o in opts if o[0] != 12]
        opts.append((12, nd.reply_hostname))
    return opts


cdef object _fqdn_note(Engine self, object lease, object prev, uint32_t ip, bytes key):
    """Record in ``ddns_pending`` what the commit of ``lease`` owes DNS, if anything: a new
    or renamed binding, or a binding that lost its name (``prev`` carried one)."""
    cdef Lease new = <Lease>lease
    if self._ddns is None:
        return None
    if prev is None:
        prev = self._sget(ip)  # the offer shortcut read nothing: a renewal's own record
    if prev is not None and (prev.client_key != key or prev.ip != ip
                             or prev.state != ST_DEFAULT):
        prev = None  # not this client's binding here: nothing of it to withdraw
    had = prev is not None and (prev.fqdn_fwd or prev.fqdn_rev) and prev.hostname
    has = (new.fqdn_fwd or new.fqdn_rev) and new.hostname
    if not had and not has:
        return None
    if (had and has and not self._ddns_renew and prev.hostname == new.hostname
            and prev.fqdn_fwd == new.fqdn_fwd and prev.fqdn_rev == new.fqdn_rev):
        return None  # a renewal under the same name (ddns-update-on-renew off)
    if had and has and prev.hostname == new.hostname:
        prev = None  # same name: the add replaces it (RFC 4703 DHCID check), no removal
    self.ddns_pending[new.ip] = (lease, prev if had else None)
    return None


cdef bint _plain_hostname(const unsigned char *p, Py_ssize_t n):
    """True when option 12's ``n`` octets at ``p`` are a name Kea would answer unchanged
    without [ddns]: labels of a-z, 0-9 and '-', 1 to 63 octets (RFC 1035 2.3.4), no
    leading, trailing or doubled dot."""
    cdef Py_ssize_t i, run = 0
    cdef unsigned char c
    if n > 253:
        return False
    for i in range(n):
        c = p[i]
        if c == 46:  # '.'
            if run == 0:
                return False
            run = 0
        elif (97 <= c <= 122) or (48 <= c <= 57) or c == 45:
            run += 1
            if run > 63:
                return False
        else:
            return False
    return run > 0


cdef list _plain_names(Engine self, list opts, Message msg, uint32_t ip, object res):
    """``opts`` with the option 12 or 81 Kea 2.2 answers without [ddns] (``res``: the
    reservation that applies to this reply, or None)."""
    cdef const unsigned char *p
    cdef Py_ssize_t n
    name = res.hostname if res is not None else None
    if msg._view(OPT_CLIENT_FQDN, &p) >= 0:
        # option 81 wins over 12 (RFC 4702 3.1): answered with N=1 and the reserved name if
        # any, as Kea 2.2 does
        return _fqdn_options(opts, _plain_decision(self, msg, ip, name or ""))
    if res is not None:
        if name:
            value = self._res_names.get(name)
            if value is None:
                # Kea: the reserved name wins over the client's, lower-cased, no final dot
                value = (<str>name).rstrip(".").lower().encode("utf-8", "replace")
                if len(self._res_names) >= CACHE_MAX:
                    self._res_names.clear()
                self._res_names[name] = value
            if value:
                opts = [o for o in opts if o[0] != 12]
                opts.append((12, value))
                return opts
    n = msg._view(OPT_HOSTNAME, &p)
    if n <= 0:
        return opts  # no name in play: looked up in place, no bytes made
    if _plain_hostname(p, n):
        opts = [o for o in opts if o[0] != 12]  # the client's name gives way to no option-data
        opts.append((12, msg._opt_bytes(OPT_HOSTNAME)))
        return opts
    return _fqdn_options(opts, _plain_decision(self, msg, ip, ""))


cdef object _plain_decision(Engine self, Message msg, uint32_t ip, str reserved):
    """names.decide_without_ddns for ``msg`` (``reserved``: the reservation's hostname or
    ""), cached like _fqdn_decision."""
    fqdn = msg._opt_bytes(OPT_CLIENT_FQDN)
    host = msg._opt_bytes(OPT_HOSTNAME)
    key = (fqdn, host, ip, reserved)
    nd = self._ddns_cache.get(key)
    if nd is None:
        nd = self._names(fqdn, host, ip, reserved)
        if len(self._ddns_cache) >= CACHE_MAX:
            self._ddns_cache.clear()
        self._ddns_cache[key] = nd
    return nd
