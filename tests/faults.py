"""A small fault-injecting HTTP proxy on 127.0.0.1, put between the worker and the moto server.

Every request is forwarded unchanged unless ``rule(request)`` returns a :class:`Fault`, which is answered
instead (an AWS-shaped error) without reaching the emulator, :data:`CONNECTION_DROP`, which closes the
connection without an answer, or :data:`MID_RESPONSE_DROP`, which forwards it and drops the connection
halfway through the emulator's answer. Requests are classified by the service named in
their SigV4 credential scope (``s3``, ``sqs``, ``sts``), so one endpoint serves the whole worker.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from worker.demo.emulator import LoopbackServer

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "expect", "upgrade"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    service: str
    headers: dict[str, str]
    body: bytes

    @property
    def action(self) -> str:
        """Query-protocol action (STS) or JSON-protocol target (SQS), else ''."""
        target = self.headers.get("x-amz-target", "")
        if target:
            return target.rsplit(".", 1)[-1]
        match = re.search(rb"(?:^|&)Action=([A-Za-z]+)", self.body)
        return match.group(1).decode() if match else ""


@dataclass(frozen=True)
class Fault:
    status: int
    code: str
    message: str = "injected by the test proxy"
    xml_root: str = "Error"  # S3 style; STS uses ErrorResponse

    def body(self) -> bytes:
        inner = f"<Code>{self.code}</Code><Message>{self.message}</Message>"
        if self.xml_root == "ErrorResponse":
            return f"<ErrorResponse><Error><Type>Receiver</Type>{inner}</Error></ErrorResponse>".encode()
        return f'<?xml version="1.0" encoding="UTF-8"?><Error>{inner}</Error>'.encode()


@dataclass(frozen=True)
class Drop:
    """Close the client's connection without an answer (a dropped connection, an LB resetting)."""


CONNECTION_DROP = Drop()


@dataclass(frozen=True)
class Truncate:
    """Forward the request, then answer with the emulator's status and headers but only half the body,
    and close the connection (a connection dropped mid-response)."""


MID_RESPONSE_DROP = Truncate()

SLOW_DOWN = Fault(503, "SlowDown", "Please reduce your request rate.")
INTERNAL_ERROR = Fault(500, "InternalError", "We encountered an internal error. Please try again.")
STS_UNAVAILABLE = Fault(503, "ServiceUnavailable", "STS is unavailable", xml_root="ErrorResponse")

Rule = Callable[[Request], Fault | Drop | Truncate | None]


@dataclass
class Log:
    forwarded: list[tuple[str, str, str]] = field(default_factory=list)
    injected: list[tuple[str, str, str, str]] = field(default_factory=list)


class FaultProxy(LoopbackServer):
    """``with FaultProxy(upstream, rule) as proxy:`` then point the worker at ``proxy.url``."""

    def __init__(
        self, upstream: str, rule: Rule | None = None, *, unread: Callable[[Request], bool] | None = None
    ) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rule: Rule = rule or (lambda _request: None)
        # Asked before the request body is read (the Request's body is b""): True drops the connection
        # with the body unread, so a client still writing it sees a reset.
        self.unread: Callable[[Request], bool] = unread or (lambda _request: False)
        self.log = Log()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def injected(self, service: str | None = None) -> int:
        with self._lock:
            return sum(1 for s, *_ in self.log.injected if service is None or s == service)

    def start(self) -> str:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _relay(self) -> None:
                proxy._relay(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _relay

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- one request ----------------------------------------------------------------------------------------

    def _relay(self, handler: BaseHTTPRequestHandler) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        scope = _SCOPE.search(headers.get("authorization", ""))
        service = scope.group(1) if scope else ""
        if self.unread(Request(handler.command, handler.path, service, headers, b"")):
            with self._lock:
                self.log.injected.append((service, handler.command, handler.path, "drop-unread"))
            _drop(handler)
            return
        body = _read_body(handler, headers)
        request = Request(handler.command, handler.path, service, headers, body)
        fault = self.rule(request)
        if isinstance(fault, Drop):
            with self._lock:
                self.log.injected.append((request.service, request.method, request.path, "drop"))
            _drop(handler)
            return
        if isinstance(fault, Fault):
            with self._lock:
                self.log.injected.append((request.service, request.method, request.path, fault.code))
            payload = fault.body()
            _respond(handler, fault.status, [("Content-Type", "application/xml")], payload)
            return
        with self._lock:
            self.log.forwarded.append((request.service, request.method, request.path))
        forward = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        forward["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            connection.request(handler.command, handler.path, body=body, headers=forward)
            response = connection.getresponse()
            data = response.read()
            out = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            if isinstance(fault, Truncate) and len(data) > 1:
                with self._lock:
                    self.log.injected.append((request.service, request.method, request.path, "truncate"))
                head = handler.command == "HEAD"
                _respond(handler, response.status, out, data, head=head, cut=len(data) // 2)
                return
            _respond(handler, response.status, out, data, head=handler.command == "HEAD")
        finally:
            connection.close()


def _drop(handler: BaseHTTPRequestHandler) -> None:
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.connection.shutdown(socket.SHUT_RDWR)


def _read_body(handler: BaseHTTPRequestHandler, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                handler.rfile.readline()
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        return b"".join(chunks)
    length = int(headers.get("content-length", "0") or 0)
    return handler.rfile.read(length) if length else b""


def _respond(
    handler: BaseHTTPRequestHandler,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    head: bool = False,
    cut: int | None = None,
) -> None:
    handler.send_response(status)
    has_length = False
    for key, value in headers:
        if key.lower() == "content-length":
            if not head:
                continue
            has_length = True
        handler.send_header(key, value)
    if not has_length:
        handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    if not head:
        handler.wfile.write(body if cut is None else body[:cut])
    handler.close_connection = True
    if cut is not None:
        handler.wfile.flush()
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)
