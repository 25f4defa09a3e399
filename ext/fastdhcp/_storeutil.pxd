# Typed boundary of fastdhcp._storeutil: the compiled start-up scan of the lease table.

cdef enum:
    # First byte of every record this schema writes (msgpack fixarray of 8 elements), and the
    # largest positive fixint: the state is the record's second byte when it is one.
    REC_FIXARRAY8 = 0x98
    REC_FIXINT_MAX = 0x7F
    # LeaseState values that mark an address used (ACTIVE_STATES).
    REC_STATE_DEFAULT = 0
    REC_STATE_DECLINED = 1

cpdef tuple scan_active(object items, object out, Py_ssize_t limit)
