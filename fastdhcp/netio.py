"""Socket set-up for the server: the Linux-specific parts, kept out of the event-loop code.

- ``open_interface_socket(ifname, port)``: a UDP socket bound to ``0.0.0.0:port`` and to one
  interface (``SO_BINDTODEVICE``), so that a broadcast DISCOVER from a client with no address
  arrives on it and a broadcast reply leaves through that interface only.
- ``open_address_socket(addr, port)``: a UDP socket bound to one local address (relayed traffic).
- ``interface_ipv4(ifname)``: the interface's primary IPv4 address (``SIOCGIFADDR``), used as the
  link address and server identifier (RFC 2131 4.1: option 54 is an address of the server that
  the client can reach).
- ``inject_arp(sock, ifname, ip, mac)``: adds a kernel ARP entry (``SIOCSARP``) so that a reply to
  a client that has no address yet can be sent as IP unicast (RFC 2131 4.1, last paragraph; what
  dnsmasq does). Needs ``CAP_NET_ADMIN``; on failure the caller broadcasts instead.

Every function raises ``OSError`` (with the interface or address in the message) on failure.
"""

from __future__ import annotations

import ctypes
import fcntl
import socket
import struct

# linux/sockios.h
SIOCGIFADDR = 0x8915
SIOCSARP = 0x8955
# linux/if_arp.h
ARPHRD_ETHER = 1
ATF_COM = 0x02  # completed entry (the hardware address is valid); not ATF_PERM: it ages out

IFNAMSIZ = 16
# asm-generic/socket.h: a classic BPF program choosing the socket of a reuseport group
SO_ATTACH_REUSEPORT_CBPF = 51
# asm-generic/socket.h (not exported by every Python build)
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)

#: Receive buffer asked for on each socket: a burst of a few thousand requests while the loop
#: is busy (a commit callback, a reclaim pass) must not overflow the default ~200 KiB.
RCVBUF = 8 * 1024 * 1024
SNDBUF = 4 * 1024 * 1024


def ip_to_str(ip: int) -> str:
    """Host-order IPv4 int -> dotted quad."""
    return socket.inet_ntoa(struct.pack("!I", ip))


def str_to_ip(text: str) -> int:
    """Dotted quad -> host-order IPv4 int."""
    return int(struct.unpack("!I", socket.inet_aton(text))[0])


def _tune(sock: socket.socket, reuseport: bool = False) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    for force, opt, size in ((SO_RCVBUFFORCE, socket.SO_RCVBUF, RCVBUF),
                             (SO_SNDBUFFORCE, socket.SO_SNDBUF, SNDBUF)):
        try:  # past net.core.{r,w}mem_max: needs CAP_NET_ADMIN
            sock.setsockopt(socket.SOL_SOCKET, force, size)
        except OSError:
            try:  # capped by net.core.{r,w}mem_max; the kernel default still works
                sock.setsockopt(socket.SOL_SOCKET, opt, size)
            except OSError:
                pass
    sock.setblocking(False)


def open_interface_socket(ifname: str, port: int, reuseport: bool = False) -> socket.socket:
    """UDP socket on ``0.0.0.0:port`` bound to interface ``ifname`` (needs CAP_NET_RAW).

    Several interface sockets share the port (``SO_REUSEADDR``): the kernel delivers a datagram
    only to the socket bound to the device it arrived on. ``reuseport``: a member of an
    SO_REUSEPORT group (the workers' sockets of one interface, :func:`attach_steering`).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        _tune(sock, reuseport)
        try:
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode() + b"\0"
            )
        except OSError as exc:
            why = f"interface {ifname!r}: SO_BINDTODEVICE: {exc.strerror}"
            raise OSError(exc.errno, why) from None
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as exc:
            why = f"interface {ifname!r}: bind 0.0.0.0:{port}: {exc.strerror}"
            raise OSError(exc.errno, why) from None
    except BaseException:
        sock.close()
        raise
    return sock


def open_address_socket(address: str, port: int, reuseport: bool = False) -> socket.socket:
    """UDP socket bound to ``address:port`` (unicast/relayed traffic only); ``reuseport`` as
    for :func:`open_interface_socket`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        _tune(sock, reuseport)
        try:
            sock.bind((address, port))
        except OSError as exc:
            raise OSError(exc.errno, f"listen address {address}:{port}: {exc.strerror}") from None
    except BaseException:
        sock.close()
        raise
    return sock


def interface_ipv4(ifname: str) -> int:
    """The primary IPv4 address of ``ifname`` as a host-order int.

    Raises ``OSError`` if the interface does not exist or has no IPv4 address.
    """
    if len(ifname.encode()) >= IFNAMSIZ:
        raise OSError(f"interface {ifname!r}: name longer than {IFNAMSIZ - 1} bytes")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        req = struct.pack("16s16s", ifname.encode(), b"")
        try:
            res = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, req)
        except OSError as exc:
            why = f"interface {ifname!r}: no IPv4 address ({exc.strerror})"
            raise OSError(exc.errno, why) from None
    # struct ifreq: name[16], then struct sockaddr_in: family(2) port(2) addr(4)
    return int(struct.unpack_from("!I", res, 16 + 4)[0])


def _arpreq(ifname: str, ip: int, mac: bytes) -> bytes:
    # struct arpreq { sockaddr arp_pa; sockaddr arp_ha; int arp_flags; sockaddr arp_netmask;
    #                 char arp_dev[16]; }  -- each sockaddr 16 bytes, native byte order for
    # the families and flags, network order for the address.
    pa = struct.pack("=H2s4s8s", socket.AF_INET, b"", struct.pack("!I", ip), b"")
    ha = struct.pack("=H14s", ARPHRD_ETHER, mac)
    netmask = b"\0" * 16
    return pa + ha + struct.pack("=i", ATF_COM) + netmask + struct.pack("16s", ifname.encode())


def inject_arp(sock: socket.socket, ifname: str, ip: int, mac: bytes) -> None:
    """Tell the kernel that ``ip`` is at ``mac`` on ``ifname`` (SIOCSARP, needs CAP_NET_ADMIN).

    After this, a plain ``sendto(ip)`` reaches a client that has no address yet (RFC 2131 4.1:
    "the server unicasts DHCPOFFER and DHCPACK messages to the client's hardware address and
    'yiaddr' address"). Raises ``OSError`` on failure.
    """
    fcntl.ioctl(sock.fileno(), SIOCSARP, _arpreq(ifname, ip, mac))


def attach_steering(sock: socket.socket, program: bytes) -> None:
    """Attach ``program`` (``struct sock_filter`` array, as :func:`fastdhcp.slices.
    steering_program` makes it) to the SO_REUSEPORT group of ``sock``
    (``SO_ATTACH_REUSEPORT_CBPF``): its return value is the index, in binding order, of the
    group's socket that gets each datagram. Raises ``OSError``."""
    if not program or len(program) % 8:
        raise ValueError("a classic BPF program is a non-empty array of 8-byte instructions")
    buf = ctypes.create_string_buffer(program, len(program))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; } (native layout)
    fprog = struct.pack("HP", len(program) // 8, ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
