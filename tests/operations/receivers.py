"""Receivers on 127.0.0.1 for alert deliveries: an HTTP endpoint answering a scripted list of status
codes (webhook, Slack, PagerDuty) and a minimal SMTP server; both keep what they received."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HttpReceiver:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.bodies: list[Any] = []
        self.url = ""


@contextmanager
def http_receiver(*statuses: int) -> Iterator[HttpReceiver]:
    """Answers each POST with the next status (200 once the list is used up) and keeps its JSON body."""
    receiver = HttpReceiver(list(statuses))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


class SmtpReceiver:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.port = 0


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    """Speaks enough SMTP (HELO/EHLO, MAIL, RCPT, DATA, QUIT) for smtplib to deliver a message."""
    receiver = SmtpReceiver()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(b"220 loopback ESMTP\r\n")
            envelope: dict[str, Any] = {"to": []}
            while line := self.rfile.readline():
                command = line.decode().strip()
                verb = command.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    self.wfile.write(b"250-loopback\r\n250 8BITMIME\r\n")
                elif verb == "MAIL":
                    envelope["from"] = command.split(":", 1)[1].strip(" <>")
                    self.wfile.write(b"250 OK\r\n")
                elif verb == "RCPT":
                    envelope["to"].append(command.split(":", 1)[1].strip(" <>"))
                    self.wfile.write(b"250 OK\r\n")
                elif verb == "DATA":
                    self.wfile.write(b"354 end with .\r\n")
                    data = b""
                    while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                        data += chunk
                    receiver.messages.append({**envelope, "message": message_from_bytes(data)})
                    self.wfile.write(b"250 queued\r\n")
                elif verb == "QUIT":
                    self.wfile.write(b"221 bye\r\n")
                    return
                else:
                    self.wfile.write(b"250 OK\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
