"""Checking a ``--ray-address`` before any work: an unreachable cluster fails in seconds, not after Ray's
own connection retries (25 s and a traceback)."""

from __future__ import annotations

import socket

from pvq.errors import PvqInputError

__all__ = ["check_ray_address", "CONNECT_TIMEOUT_S"]

CONNECT_TIMEOUT_S = 3.0


def check_ray_address(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """PvqInputError unless Ray is installed and ``address`` is ``local``, ``auto`` or a ``[ray://]host:port``
    that accepts a TCP connection within ``timeout_s`` seconds. Only the port is probed; Ray itself
    then connects (and its own errors are turned into PvqInputError by the executor)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise PvqInputError("--ray-address: Ray is not installed (pip install 'pvq[ray]')") from None
    if address in ("local", "auto"):
        return
    hostport = address.removeprefix("ray://")
    host, sep, port_text = hostport.rpartition(":")
    host = host.strip("[]")  # [::1]:6379
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise PvqInputError(
            f"--ray-address: '{address}' is not 'local', 'auto', host:port or ray://host:port"
        )
    try:
        with socket.create_connection((host, int(port_text)), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise PvqInputError(
            f"--ray-address: cannot reach {host}:{port_text} ({reason} within {timeout_s:g} s); is the cluster up?"
        ) from None
