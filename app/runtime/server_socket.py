"""Send each HTTP response and WebSocket message at once: TCP_NODELAY on the server's listening socket.

Streamlit 1.67 binds its server socket as ``socket.socket(family)``, whose protocol number is 0. asyncio turns
Nagle's algorithm off only for sockets whose protocol is ``IPPROTO_TCP``, so every connection the server
accepts keeps it. uvicorn writes a response's headers and its body separately; on a kept-alive connection
the body then waits for the browser to acknowledge the headers, which it delays by 40 ms on Linux. The first
page fetches over 100 frontend files on six connections, so that was most of a second per page load, and
each image of a detail view waited too (116 frontend files: 0.82 s on six connections, 0.18 s without the
wait).

Linux copies TCP_NODELAY from a listening socket to the sockets it accepts, so setting it once on the
listening socket, before the first connection, covers every request and WebSocket. The socket is found
through ``/proc/self/fd``: Streamlit does not hand it to the app. Elsewhere this does nothing.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

FDS = Path("/proc/self/fd")


def _listening_tcp(fd: int) -> socket.socket | None:
    """A duplicate of ``fd`` if it is a listening TCP socket (the caller closes it), else None."""
    try:
        if not os.readlink(FDS / str(fd)).startswith("socket:"):
            return None
        sock = socket.socket(fileno=os.dup(fd))  # family and type are read from the socket
    except OSError:  # closed meanwhile, or not a socket Python can wrap
        return None
    try:
        if (sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM
                and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)):
            return sock
    except OSError:
        pass
    sock.close()
    return None


def disable_nagle() -> int:
    """Set TCP_NODELAY on this process's listening TCP sockets; the number of sockets set (0 off Linux)."""
    if not FDS.is_dir():
        return 0
    done = 0
    for name in os.listdir(FDS):
        sock = _listening_tcp(int(name))
        if sock is None:
            continue
        with sock:  # closes the duplicate only; the server keeps its own descriptor
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            done += 1
    return done
