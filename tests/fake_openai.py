"""A loopback OpenAI-compatible chat-completions server for tests (a real HTTP process side).

Scripted: each request pops the next ``Reply`` (status, content or raw body, delay); when the
script is empty the default reply repeats. Every request body is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from llm_oracle import store
from llm_oracle.context import MarketView, load_news
from llm_oracle.oracle import Oracle
from llm_oracle.schema import OracleDecision
from llm_oracle.settings import OracleSettings


def format_name(request: dict) -> str | None:
    """What a request asked for: ``json_schema``, ``json_object+schema`` (llama.cpp's
    grammar mode), ``json_object`` or None (plain text)."""
    fmt = request.get("response_format") or {}
    if fmt.get("type") == "json_object" and "schema" in fmt:
        return "json_object+schema"
    return fmt.get("type")


def formats(fake) -> list[str | None]:
    """The format of every request the fake server received, in order."""
    return [format_name(r) for r in fake.requests]

@dataclass
class Reply:
    status: int = 200
    content: str | None = None  # the assistant message (OpenAI response built around it)
    raw: str | None = None  # a whole body instead (errors)
    delay: float = 0.0
    # Refuse when the request's format (``format_name``) or its response_format.type is one
    # of these.
    refuse_formats: tuple[str, ...] = ()
    refuse_status: int = 400  # ... with this status (llama.cpp's server answers 500)
    refuse_message: str | None = None  # ... and this message (default: OpenAI-like)
    error: str = "scripted error"  # the error message of a non-200 reply
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    finish_reason: str = "stop"
    model: str | None = None  # the model name the server reports (default: the one asked)
    usage: bool = True  # include a usage block
    message: dict[str, Any] | None = None  # the whole assistant message instead of content
    choices: list[Any] | None = None  # the whole choices list instead
    # The content computed from the request body instead (a model that answers from what
    # the prompt shows, e.g. "the first two pairs listed").
    respond: Callable[[dict[str, Any]], str] | None = None
    content_type: str = "application/json"  # of a ``raw`` body (an SSE proxy: text/event-stream)


@dataclass
class FakeOpenAI:
    default: Reply
    script: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # monotonic arrival of each request
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                fake.times.append(time.monotonic())
                reply = fake.script.pop(0) if fake.script else fake.default
                time.sleep(reply.delay)
                fmt = (body.get("response_format") or {}).get("type")
                if fmt in reply.refuse_formats or format_name(body) in reply.refuse_formats:
                    self._send(reply.refuse_status, json.dumps({"error": {
                        "message": reply.refuse_message
                        or f"response_format {fmt} is not supported",
                        "type": "invalid_request_error"}}), reply.headers)
                    return
                if reply.raw is not None or reply.status != 200:
                    self._send(reply.status, reply.raw or json.dumps(
                        {"error": {"message": reply.error, "type": "server_error"}}),
                        reply.headers, reply.content_type)
                    return
                content = reply.respond(body) if reply.respond else reply.content
                message = reply.message or {"role": "assistant", "content": content}
                completion = {
                    "id": "chatcmpl-test", "object": "chat.completion", "created": 0,
                    "model": reply.model or body["model"],
                    "choices": reply.choices if reply.choices is not None else [
                        {"index": 0, "finish_reason": reply.finish_reason,
                         "message": message}],
                }
                if reply.usage:
                    completion["usage"] = {"prompt_tokens": 1200, "completion_tokens": 150,
                                           "total_tokens": 1350}
                self._send(200, json.dumps(completion))

            def _send(self, status: int, text: str, headers: dict[str, str] | None = None,
                      content_type: str = "application/json") -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


def answer(**overrides: Any) -> str:
    base = {"focus_pairs": ["BTC/USDT", "ETH/USDT"], "risk_level": "moderate",
            "max_exposure": 0.6, "max_position": 0.2, "overnight_target": 0.3,
            "pair_bias": [{"pair": "BTC/USDT", "bias": 0.5}], "reasoning": "test"}
    base.update(overrides)
    return json.dumps(base)


# --- an oracle pointed at a fake (tests of the oracle and of real-server faults) ------------
UNIVERSE = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]
AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def make_oracle(market: Path, out: Path, fake: FakeOpenAI | None, news: Path | None = None,
                **overrides: Any) -> Oracle:
    """An ``Oracle`` over ``market`` (synthetic candles) asking ``fake`` (None: the
    heuristic), writing to ``out``; ``overrides`` are ``llm_oracle`` config keys."""
    options = {"provider": "openai" if fake else "heuristic",
               "base_url": fake.base_url if fake else None, "model": "gpt-4o-mini",
               "output_dir": out, "timeout_s": 2.0, "max_retries": 1, "news_file": news,
               **overrides}
    settings = OracleSettings(**options)
    return Oracle(settings, UNIVERSE, MarketView(market, UNIVERSE), load_news(news),
                  cache_dir=out / "cache")


def profile(out: Path) -> OracleDecision:
    return OracleDecision.model_validate_json((out / store.PROFILE).read_text())
