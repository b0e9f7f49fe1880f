"""Receive times of UDP datagrams, from the kernel where it can stamp them.

On Linux, ``SO_TIMESTAMPNS`` makes the kernel stamp each datagram when it arrives (CLOCK_REALTIME,
ns), so a busy Python process that reads the packet a few ms later still gets its true arrival
time. Elsewhere the time is taken when the datagram is read. One time source for sending and
receiving: ``now_ns`` (CLOCK_REALTIME, like the kernel stamps).
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

else:
    def enable_rx_timestamps(sock: socket.socket) -> bool:
        """False: only Linux stamps datagrams this way; the time is taken when one is read."""
        return False


def recv_stamped(sock: socket.socket, bufsize: int,
                 kernel_stamps: bool) -> tuple[bytes, object, int]:
    """One datagram: (data, source address, receive time ns).

    Read with a ``bufsize`` one larger than the largest valid packet, so that an oversized
    datagram shows as too long (the kernel silently cuts it to ``bufsize``).
    """
    if not kernel_stamps:
        data, addr = sock.recvfrom(bufsize)
        return data, addr, now_ns()
    data, ancdata, _flags, addr = sock.recvmsg(bufsize, _ANCILLARY_BYTES)
    stamp = None
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS \
                and len(payload) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(payload)
            stamp = sec * 1_000_000_000 + nsec
    return data, addr, stamp if stamp else now_ns()
