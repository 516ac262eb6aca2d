"""Exit 1 with a clear message when `make dev` could not serve its UI on HOST:PORT.

`dagster dev` only finds out that the port is taken after it has started the daemon and the
code server, and then says so in one uvicorn line among its start-up logs; checking first lets
`make dev` stop at once and say what to do. Run with any Python 3, before `.venv` exists:

    python3 deploy/check_port.py 127.0.0.1 3000
"""

from __future__ import annotations

import errno
import socket
import sys


def why_not_free(host: str, port: int) -> str | None:
    """What to tell the user when a server could not listen on ``host:port`` now, or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        # create_server sets SO_REUSEADDR as uvicorn does: a port in TIME_WAIT counts as free.
        with socket.create_server((host, port), family=family):
            return None
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            return f"cannot listen on {host}:{port}: {exc}. Check HOST= and PORT="
        return (
            f"port {port} on {host} is already in use (another `make dev`, or another program).\n"
            f"  Choose another port:  make dev PORT={port + 1}\n"
            f"  See what holds it:    ss -ltnp 'sport = :{port}'"
        )


def main(argv: list[str]) -> int:
    host, port = argv[0], int(argv[1])
    reason = why_not_free(host, port)
    if reason is not None:
        print(f"make dev: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
