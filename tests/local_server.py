"""A threaded HTTP file server on 127.0.0.1 (a free port) for download tests: it counts requests and can
misbehave on purpose. Tests never send traffic to any other address."""
from __future__ import annotations

import http.server
import re
import socket
import threading
from pathlib import Path

MODES = ("normal", "drop_halfway", "wrong_bytes")


class FileServer:
    """Serves the files of `root` at `url`/<name>, with HTTP Range support.

    Modes: "normal"; "drop_halfway" (the first request for each file sends its full Content-Length, then
    half the bytes, then closes the connection; later requests behave); "wrong_bytes" (every byte flipped).
    `requests` lists (path, Range header or None) of every GET.
    """

    def __init__(self, root: Path, mode: str = "normal"):
        assert mode in MODES, mode
        self.root, self.mode = Path(root), mode
        self.requests: list[tuple[str, str | None]] = []
        self._dropped: set[str] = set()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                path = server.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                content = path.read_bytes()
                if server.mode == "wrong_bytes":
                    content = bytes(b ^ 0xFF for b in content)
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match:
                    start = int(match.group(1))
                    if start >= len(content):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(content)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(content) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                body = content[start:]
                if server.mode == "drop_halfway" and self.path not in server._dropped:
                    server._dropped.add(self.path)
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> "FileServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def gets(self, name: str) -> list[str | None]:
        """The Range headers of the GETs for `name` (None for a plain GET)."""
        return [r for path, r in self.requests if path == f"/{name}"]


def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
