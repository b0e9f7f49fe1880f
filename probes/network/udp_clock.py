"""Receive times of UDP datagrams, from the kernel where it can stamp them.

On Linux, ``SO_TIMESTAMPNS`` makes the kernel stamp each datagram when it arrives (CLOCK_REALTIME,
ns), so a busy Python process that reads the packet a few ms later still gets its true arrival
time. Elsewhere the time is taken when the datagram is read. One time source for sending and
receiving: ``now_ns`` (CLOCK_REALTIME, like the kernel stamps).

The reflector also reads each datagram's IP TTL (IPv6: hop limit) where the kernel hands it
over (``IP_RECVTTL``, ``IPV6_RECVHOPLIMIT``): a STAMP Session-Reflector returns it (RFC 8762
section 4.3.1, Session-Sender TTL).
"""

from __future__ import annotations

import socket
import struct
import sys
import time

# Python's socket module lacks the constant; asm-generic/socket.h: SO_TIMESTAMPNS_OLD = 35,
# SCM_TIMESTAMPNS = SO_TIMESTAMPNS. The payload is a struct timespec (two native longs).
_SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@ll")
_ANCILLARY_BYTES = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
# linux/in.h: IP_RECVTTL = 12 (missing from Python's socket module); the message is IP_TTL, an
# int. IPv6: IPV6_RECVHOPLIMIT asks, IPV6_HOPLIMIT answers, an int too.
_IP_RECVTTL = 12
_INT = struct.Struct("@i")
_TTL_ANCILLARY_BYTES = 2 * socket.CMSG_SPACE(_INT.size) if hasattr(socket, "CMSG_SPACE") else 0


def now_ns() -> int:
    """The clock all path timestamps use (same clock as the kernel's receive stamps)."""
    return time.time_ns()


# Kernel receive stamps where the kernel gives them (Linux), chosen once.
if sys.platform.startswith("linux"):
    def enable_rx_timestamps(sock: socket.socket) -> bool:
        """Ask the kernel to stamp arriving datagrams; False where that is not available."""
        if not _ANCILLARY_BYTES:
            return False
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        except OSError:
            return False
        return True

    def enable_rx_ttl(sock: socket.socket) -> bool:
        """Ask the kernel for each datagram's TTL / hop limit; False where it cannot."""
        if not _TTL_ANCILLARY_BYTES:
            return False
        done = False
        # A dual-stack IPv6 socket receives IPv4 datagrams too: ask for both kinds.
        for level, option in ((socket.IPPROTO_IP, _IP_RECVTTL),
                              (socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT)):
            try:
                sock.setsockopt(level, option, 1)
                done = True
            except OSError:
                pass
        return done

else:
    def enable_rx_timestamps(sock: socket.socket) -> bool:
        """False: only Linux stamps datagrams this way; the time is taken when one is read."""
        return False

    def enable_rx_ttl(sock: socket.socket) -> bool:
        """False: the TTL of a datagram is read only on Linux."""
        return False


def recv_stamped(sock: socket.socket, bufsize: int,
                 kernel_stamps: bool) -> tuple[bytes, object, int]:
    """One datagram: (data, source address, receive time ns).

    Read with a ``bufsize`` one larger than the largest valid packet, so that an oversized
    datagram shows as too long (the kernel silently cuts it to ``bufsize``).
    """
    data, addr, rx_ns, _ttl = recv_stamped_ttl(sock, bufsize, kernel_stamps, False)
    return data, addr, rx_ns


def recv_stamped_ttl(sock: socket.socket, bufsize: int, kernel_stamps: bool,
                     ttl: bool) -> tuple[bytes, object, int, int | None]:
    """One datagram: (data, source address, receive time ns, TTL or None). ``ttl``: the socket
    has ``enable_rx_ttl``; without it (or where the kernel gave none) the TTL is None."""
    if not kernel_stamps and not ttl:
        data, addr = sock.recvfrom(bufsize)
        return data, addr, now_ns(), None
    space = (_ANCILLARY_BYTES if kernel_stamps else 0) + (_TTL_ANCILLARY_BYTES if ttl else 0)
    data, ancdata, _flags, addr = sock.recvmsg(bufsize, space)
    stamp = None
    hops = None
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS \
                and len(payload) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(payload)
            stamp = sec * 1_000_000_000 + nsec
        elif ((level == socket.IPPROTO_IP and kind == socket.IP_TTL)
              or (level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT)) \
                and len(payload) >= _INT.size:
            hops = int(_INT.unpack_from(payload)[0])
    return data, addr, stamp if stamp else now_ns(), hops
