# fastdhcp._engine, part: client names (option 81, RFC 4702; option 12, RFC 2132 3.14).
# Included by _engine.pyx (one C module; functions take the Engine first).
#
# The rule is fastdhcp.ddns.names.decide (pure Python, Kea's ddns-* behaviour); the engine asks
# it only with [ddns] configured and only for a request that carries option 81 or 12 (or for
# every OFFER/ACK when names are generated: ddns-replace-client-name always/when-not-present).
# Any other request pays one test of a C flag: no Python call, no object made. Measured
# (bench/bench_ddns.py, CPU time per DORA, one run): 2.53 us without [ddns], 2.53 us with it
# for clients without names, 27.8 us when each sends option 81 (decide: ~12 us per reply).
#
# What the service owes DNS after a commit is left in ``Engine.ddns_pending``: address ->
# ``(lease, previous)``, the staged binding whose published name changed and the binding
# whose name it replaces (or None). The service takes an entry when that very lease object
# commits (fastdhcp.ddns.feed); a removal (release, expiry, decline) needs no entry: the
# ended record keeps the name and the flags.


cdef object _fqdn_decision(Engine self, Message msg, uint32_t ip):
    """The name decision for a reply to ``msg`` binding ``ip``, or None (no [ddns], or no
    name in play)."""
    if self._ddns is None:
        return None
    fqdn = msg._opt_bytes(OPT_CLIENT_FQDN)
    host = msg._opt_bytes(OPT_HOSTNAME)
    if fqdn is None and not host and not self._ddns_gen:
        return None
    return self._ddns(fqdn, host, ip)


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
