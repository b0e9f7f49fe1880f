"""The reflector's address as people and the center's ``/healthz`` give it: ``HOST:PORT``.

Shared by ``agent-kit --reflector`` and ``agent-center serve --advertise-reflector``, so both
sides accept exactly the same spellings.
"""

from __future__ import annotations


def parse_host_port(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) as a user types a reflector address; ValueError if not."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} must be HOST:PORT")
    return host.strip("[]"), int(port)
