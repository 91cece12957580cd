"""A built folder served on localhost, and a Chromium page kept off the network.

The one piece the PDF printer (``tools/pdf.py``) and the browser tests (``tests/browser/conftest.py``)
share: both open the book (or a page they wrote) as an offline reader would, every request that
leaves localhost aborted and recorded.
"""
from __future__ import annotations

import functools
import http.server
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

#: Debian's Chromium, headless, with nothing that reaches for the network on its own.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without a log line per request (keeps test and build output readable)."""

    def log_message(self, *args):
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server that ignores a client closing the connection mid-file."""

    def handle_error(self, request, client_address):
        """A page closed while a file was still being sent: not an error of what is served."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def serve(folder: Path):
    """Serve ``folder`` on a free localhost port in a daemon thread.

    Returns:
        ``(server, base URL)``, e.g. ``"http://127.0.0.1:41234"``; call ``server.shutdown()`` when done.
    """
    server = QuietServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def block_offsite(page) -> list:
    """Abort every request of the Playwright ``page`` that leaves localhost (``data:`` URLs pass).

    Returns:
        The list the aborted URLs are appended to, as they happen.
    """
    blocked = []

    def route(route):
        host = urlparse(route.request.url).hostname
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith("data:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    return blocked
