"""Records the JSON messages a ComfyUI server pushes over its websocket (RFC 6455, client side, stdlib only)."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
import time
from typing import Callable


class WebSocketListener:
    def __init__(self, host: str, port: int, path: str):
        self._socket = socket.create_connection((host, port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self._socket.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self._buffer = b""
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self._receive()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"The websocket handshake failed: {head.decode(errors='replace')}")
        self._socket.settimeout(None)
        self.messages: list[dict] = []
        self.binary_frames = 0
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read_frames, daemon=True)
        self._thread.start()

    def _receive(self) -> bytes:
        data = self._socket.recv(65536)
        if not data:
            raise ConnectionError("The server closed the websocket.")
        return data

    def _take(self, count: int) -> bytes:
        while len(self._buffer) < count:
            self._buffer += self._receive()
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def _read_frames(self) -> None:
        try:
            while True:
                first, second = self._take(2)
                opcode, length = first & 0x0F, second & 0x7F
                if length == 126:
                    length = struct.unpack(">H", self._take(2))[0]
                elif length == 127:
                    length = struct.unpack(">Q", self._take(8))[0]
                payload = self._take(length)  # a server's frames are never masked
                if opcode == 0x1:
                    with self._changed:
                        self.messages.append(json.loads(payload))
                        self._changed.notify_all()
                elif opcode == 0x2:
                    self.binary_frames += 1
                elif opcode == 0x8:
                    return
        except (ConnectionError, OSError):
            return

    def of_type(self, message_type: str) -> list[dict]:
        with self._changed:
            return [m["data"] for m in self.messages if m.get("type") == message_type]

    def wait_for(self, message_type: str, where: Callable[[dict], bool] = lambda data: True,
                 timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for message in self.messages:
                    if message.get("type") == message_type and where(message["data"]):
                        return message["data"]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"No {message_type!r} message within {timeout} s.")
                self._changed.wait(remaining)

    def close(self) -> None:
        try:
            self._socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._socket.close()
