# The DHCP constants of every compiled module, defined once (asyncpg's ProtocolState style):
# message types, the wire layout, option and sub-option codes, lease states and the outcome of
# one request. fastdhcp/consts.py mirrors the closed sets as IntEnums for Python;
# tests/test_consts.py reads this file and checks that the two agree value for value.

# Message types (RFC 2132 9.6; 10-13 are RFC 4388 leasequery, 14-15 RFC 6926 bulk).
cdef enum:
    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8
    LEASEQUERY = 10
    LEASEUNASSIGNED = 11
    LEASEUNKNOWN = 12
    LEASEACTIVE = 13
    BULKLEASEQUERY = 14
    LEASEQUERYDONE = 15

# Wire layout (RFC 2131 section 2, figure 1) and option codes (RFC 2132 and later).
cdef enum:
    OFF_OP = 0
    OFF_HTYPE = 1
    OFF_HLEN = 2
    OFF_HOPS = 3
    OFF_XID = 4
    OFF_SECS = 8
    OFF_FLAGS = 10
    OFF_CIADDR = 12
    OFF_YIADDR = 16
    OFF_SIADDR = 20
    OFF_GIADDR = 24
    OFF_CHADDR = 28
    OFF_SNAME = 44
    OFF_FILE = 108
    OFF_COOKIE = 236
    OFF_OPTIONS = 240
    CHADDR_LEN = 16
    SNAME_LEN = 64
    FILE_LEN = 128
    HEADER_LEN = 236
    MIN_MESSAGE = 240            # header + magic cookie
    MAX_MESSAGE = 65507          # 65535 - 20 (IPv4) - 8 (UDP)
    BOOTP_MIN = 300              # RFC 1542 minimum BOOTP message
    MIN_MAX_SIZE = 576           # RFC 2132 9.10: no less than 576
    IP_UDP_HEADERS = 28
    BROADCAST_FLAG = 0x8000

    OPT_PAD = 0
    OPT_HOSTNAME = 12
    OPT_REQUESTED_IP = 50
    OPT_LEASE_TIME = 51
    OPT_OVERLOAD = 52
    OPT_MESSAGE_TYPE = 53
    OPT_SERVER_ID = 54
    OPT_PRL = 55
    OPT_MAX_SIZE = 57
    OPT_VENDOR_CLASS = 60
    OPT_CLIENT_ID = 61
    OPT_RAPID_COMMIT = 80        # RFC 4039, length 0
    OPT_CLIENT_FQDN = 81
    OPT_RELAY_AGENT = 82
    OPT_SUBNET_SELECTION = 118
    OPT_VIVCO = 124              # RFC 3925 vendor-identifying vendor class
    OPT_VIVSO = 125              # RFC 3925 vendor-identifying vendor-specific information
    OPT_END = 255

    SUB_CIRCUIT_ID = 1
    SUB_REMOTE_ID = 2
    SUB_LINK_SELECTION = 5
    SUB_SERVER_ID_OVERRIDE = 11

# Lease states (fastdhcp.leases.LeaseState, Kea's numbering for the first three).
cdef enum:
    ST_DEFAULT = 0
    ST_DECLINED = 1
    ST_EXPIRED = 2
    ST_RELEASED = 3
    ST_DELETED = 4

# What the engine made of one request (fastdhcp.consts.Outcome). SILENT is a request handled
# as the RFC says with no reply to send (RELEASE, DECLINE, RFC 2131 4.3.4/4.3.3): processed,
# never counted or logged as a drop. DROP is a request refused or ignored, with a reason.
cdef enum:
    OUT_OFFER = 0
    OUT_ACK = 1
    OUT_NAK = 2
    OUT_SILENT = 3
    OUT_DROP = 4
