"""A real chat-completions endpoint on 127.0.0.1 for the LLM-label tests, scripted per test.

``ChatServer`` speaks ``POST /v1/chat/completions`` over HTTP on a free loopback port. A test
gives it a handler ``(request, attempt) -> Reply``; ``attempt`` counts earlier requests with the
same prompt, so "500 twice, then an answer" is ``lambda r, n: status(500) if n < 2 else answer(...)``.
It records every request (prompt, Authorization header, time) and how many were in flight at
once. Hanging replies wait at most their delay (or until the server stops), so nothing outlives
a test. Other tests (the app's) can import it: ``from tests.test_llm_server import ChatServer``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a dict is sent as JSON, bytes as they are
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering: longer than the client's timeout = a hang


@dataclass
class Seen:
    """One request as the server saw it."""

    path: str
    authorization: str
    body: Any
    at: float

    @property
    def prompt(self) -> str:
        """The last user message (the cluster's keywords and texts, or the ask-again line)."""
        messages = self.body.get("messages", []) if isinstance(self.body, dict) else []
        users = [m.get("content", "") for m in messages if m.get("role") == "user"]
        return users[-1] if users else ""

    @property
    def first_prompt(self) -> str:
        messages = self.body.get("messages", []) if isinstance(self.body, dict) else []
        users = [m.get("content", "") for m in messages if m.get("role") == "user"]
        return users[0] if users else ""

    @property
    def keywords(self) -> list[str]:
        found = re.search(r"Most distinctive keywords: (.*)", self.first_prompt)
        return found.group(1).split(", ") if found else []

    @property
    def is_ask_again(self) -> bool:
        return isinstance(self.body, dict) and len(self.body.get("messages", [])) > 2

    def mentions(self, word: str) -> bool:
        return word in self.first_prompt


def answer(label: str, description: str = "", content: str | None = None) -> Reply:
    """A chat completion whose message is the JSON the prompt asks for (or ``content``)."""
    if content is None:
        content = json.dumps({"label": label, "description": description or f"Texts about {label.lower()}."})
    return Reply(
        body={
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": "test",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
        }
    )


def status(code: int, headers: dict[str, str] | None = None, message: str = "") -> Reply:
    return Reply(
        status=code, body={"error": {"message": message or HTTPStatus(code).phrase}}, headers=headers or {}
    )


def topic_answer(request: Seen, attempt: int) -> Reply:
    """The default: a label made from the cluster's first keyword, different for each cluster."""
    first = request.keywords[0] if request.keywords else "misc"
    return answer(f"Topic {first}")


class ChatServer:
    """``with ChatServer() as server: ... server.url ...``"""

    def __init__(self, handler: Callable[[Seen, int], Reply] = topic_answer):
        self.handler = handler
        self.requests: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def attempts(self) -> int:
        return len(self.requests)

    def attempts_for(self, word: str) -> int:
        return sum(r.mentions(word) for r in self.requests)

    def __enter__(self) -> ChatServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet: the tests read server.requests
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                seen = Seen(self.path, self.headers.get("Authorization", ""), body, time.monotonic())
                with server._lock:
                    attempt = sum(
                        r.first_prompt == seen.first_prompt and r.prompt == seen.prompt
                        for r in server.requests
                    )
                    server.requests.append(seen)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if self.path.rstrip("/") != "/v1/chat/completions":
                        reply = status(404, message=f"no route {self.path}")
                    else:
                        reply = server.handler(seen, attempt)
                    if reply.delay:
                        server._stopping.wait(reply.delay)
                    self._send(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): that is the point of a hang
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _send(self, reply: Reply) -> None:
                body = reply.body
                if isinstance(body, (dict, list)):
                    data = json.dumps(body).encode()
                else:
                    data = body if isinstance(body, bytes) else str(body or "").encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.headers.get("Content-Type", "application/json"))
                for name, value in reply.headers.items():
                    if name != "Content-Type":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="chat-server", daemon=True
        ).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping.set()
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()


# --- the server itself speaks the protocol the SDK expects ---------------------------------


def _client(server: ChatServer, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-server-test", base_url=server.url, **kwargs)


def test_server_answers_a_chat_completion():
    with ChatServer(lambda r, n: answer("Billing questions")) as server:
        reply = _client(server, max_retries=0).chat.completions.create(
            model="test", messages=[{"role": "user", "content": "Most distinctive keywords: refund"}]
        )
    assert json.loads(reply.choices[0].message.content)["label"] == "Billing questions"
    assert server.attempts == 1
    assert server.requests[0].authorization == "Bearer sk-server-test"
    assert server.requests[0].keywords == ["refund"]


def test_server_counts_attempts_per_prompt():
    with ChatServer(lambda r, n: status(500) if n < 1 else answer(f"try {n}")) as server:
        client = _client(server, max_retries=0)
        messages = [{"role": "user", "content": "hello"}]
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="test", messages=messages)
        reply = client.chat.completions.create(model="test", messages=messages)
    assert json.loads(reply.choices[0].message.content)["label"] == "try 1"
    assert server.attempts == 2
