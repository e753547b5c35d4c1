"""``python -m llm_oracle serve``: the oracle's files over HTTP on 127.0.0.1.

``/risk_profile.json``, ``/pairlist.json`` (freqtrade's RemotePairList) and
``/journal.jsonl`` (the strategy's feed), each with an ETag that changes with every write,
so a poller gets ``304 Not Modified`` until the oracle writes again.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from llm_oracle import store

logger = logging.getLogger("llm_oracle")

FILES = {"/risk_profile.json": store.PROFILE, "/pairlist.json": store.PAIRLIST,
         "/journal.jsonl": store.JOURNAL}


def make_handler(out: Path) -> type[BaseHTTPRequestHandler]:
    """A request handler serving ``FILES`` from the output directory ``out``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = FILES.get(self.path.split("?")[0])
            path = out / name if name else None
            if path is None or not path.exists():
                self.send_error(404, "no such oracle file yet")
                return
            st = path.stat()
            etag = f'"{st.st_mtime_ns}-{st.st_size}"'  # changes with every write
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", self.date_time_string(st.st_mtime))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug(format, *args)

    return Handler


def serve(out: Path, host: str, port: int) -> int:
    """Serve ``out`` on ``host:port`` (0: any free port) until SIGINT or SIGTERM."""
    server = ThreadingHTTPServer((host, port), make_handler(out))
    print(f"llm_oracle: serving {out} on http://{host}:{server.server_port}/",
          file=sys.stderr, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop.wait()
    server.shutdown()
    return 0
