# Part of fastdhcp._engine (included by ext/fastdhcp/_engine.pyx; declarations in
# _engine.pxd). The engine's per-packet caches, each a shortcut in front of a computation
# from the configuration; they must all go when the configuration or the host table changes,
# so they are forgotten in one place (Engine._apply and Engine.attach_hosts call it):
#   _opt_cache                 (options, lease time, PRL) -> option list     (replies.pxi)
#   _host_cache                raw host record -> Reservation              (hosts.pxi)
#   _sid_cache, _sid_last(_opt) server id -> option 54 tuple, one entry in front (replies.pxi)
#   _sel_giaddr, _sel_info     the last relayed request's subnet           (select.pxi)
# (Each _SubnetInfo's opt_prl/opt_lt/opt_list entry and SubnetSelector._link_cache are made
# afresh with their owners on every reload.)


cdef _forget_caches(Engine self):
    self._opt_cache = {}
    self._host_cache = {}
    self._sid_cache = {}
    self._sid_last = 0
    self._sid_last_opt = None
    self._sel_giaddr = 0
    self._sel_info = None
