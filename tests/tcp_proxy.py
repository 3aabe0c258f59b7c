"""A TCP proxy on loopback that a test (or a benchmark) can stop and start again.

Point the portal at the proxy's port instead of Redis's or PostgreSQL's, then `stop()` it:
the port refuses new connections and every connection through it is cut, which is what the
portal sees when the server stops. `start()` listens on the same port again, as a server
that comes back. The real server never stops, so other tests sharing it run on undisturbed.

    with TcpProxy(6379) as proxy:        # forwards 127.0.0.1:<proxy.port> to 127.0.0.1:6379
        url = f"redis://127.0.0.1:{proxy.port}/0"
        ...
        proxy.stop()                     # "Redis is down"
        proxy.start()                    # "Redis is back"
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

CHUNK = 65536


class TcpProxy:
    """Forward 127.0.0.1:`port` (a free port, kept across restarts) to `target_port`."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self.connections = 0  # accepted since the proxy was made

    # Starting and stopping

    def start(self) -> TcpProxy:
        """Listen (on the same port as before, if it ran already) and forward."""
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Refuse new connections and cut every open one, as a stopped server does."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            listener.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            pairs, self._pairs = self._pairs, set()
        for pair in pairs:
            for side in pair:
                _close(side)

    @property
    def running(self) -> bool:
        return self._listener is not None

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Forwarding

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by stop()
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            for side in (client, server):
                side.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._listener is not listener:  # stopped meanwhile
                    _close(client)
                    _close(server)
                    return
                self._pairs.add((client, server))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        """Copy bytes both ways until either side closes (or stop() closes both)."""
        selector = selectors.DefaultSelector()
        try:
            selector.register(client, selectors.EVENT_READ, server)
            selector.register(server, selectors.EVENT_READ, client)
            while True:
                for key, _ in selector.select(timeout=1):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(CHUNK)
                    if not data:
                        return
                    key.data.sendall(data)
                with self._lock:
                    if (client, server) not in self._pairs:
                        return
        except (OSError, ValueError):  # closed under us by stop()
            return
        finally:
            selector.close()
            with self._lock:
                self._pairs.discard((client, server))
            _close(client)
            _close(server)


def _close(side: socket.socket) -> None:
    with contextlib.suppress(OSError):
        side.shutdown(socket.SHUT_RDWR)
    side.close()
