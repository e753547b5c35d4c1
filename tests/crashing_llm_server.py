"""An OpenAI-compatible server that lists its model and then dies of SIGSEGV on its first
chat request: what llama.cpp's AMX kernels do on Sapphire Rapids-class CPUs (llama.cpp
#20824). ``python tests/crashing_llm_server.py PORT``."""

from __future__ import annotations

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"object": "list", "data": [{"id": "crashy", "object": "model"}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def do_POST(self) -> None:
        os.kill(os.getpid(), signal.SIGSEGV)

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    signal.signal(signal.SIGSEGV, signal.SIG_DFL)
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
