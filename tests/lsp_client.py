"""A client that talks to `circuitc lsp` as an editor does: raw JSON-RPC over the server's
stdin and stdout, each message behind a `Content-Length` header. The tests
(`test_lsp.py`) and `benchmarks/lsp.py` drive the server with it."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

TIMEOUT = 120  # seconds to wait for an answer: a loaded machine analyzes slowly


class Client:
    """The installed `circuitc lsp`, started in a subprocess; `request` sends a request and
    returns its result, `notify` sends a notification, `wait_for` returns the params of
    the next notification of a method (those of other methods are kept in `seen`)."""

    def __init__(self, *args: str):
        # The `circuitc` installed beside the running Python, as `conftest.circuitc_command`.
        command = shutil.which("circuitc", path=str(Path(sys.executable).parent)) or "circuitc"
        self.process = subprocess.Popen([command, "lsp", *args], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.messages: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            headers = {}
            while True:
                line = stream.readline()
                if not line:
                    self.messages.put(None)
                    return
                if line in (b"\r\n", b"\n"):
                    break
                key, _, value = line.decode("ascii").partition(":")
                headers[key.strip().lower()] = value.strip()
            body = stream.read(int(headers["content-length"]))
            self.messages.put(json.loads(body))

    def _send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def _next(self) -> dict:
        message = self.messages.get(timeout=TIMEOUT)
        if message is None:
            raise AssertionError("the server closed its output: "
                                 + self.process.stderr.read().decode("utf-8", "replace"))
        return message

    def request(self, method: str, params: dict | None = None):
        self.next_id += 1
        self._send({"id": self.next_id, "method": method, "params": params or {}})
        while True:
            message = self._next()
            if message.get("id") == self.next_id and "method" not in message:
                assert "error" not in message, message["error"]
                return message.get("result")
            self.seen.append(message)

    def notify(self, method: str, params: dict | None = None) -> None:
        self._send({"method": method, "params": params or {}})

    def wait_for(self, method: str) -> dict:
        for k, message in enumerate(self.seen):
            if message.get("method") == method:
                return self.seen.pop(k)["params"]
        while True:
            message = self._next()
            if message.get("method") == method:
                return message["params"]
            self.seen.append(message)

    # -- what an editor does -----------------------------------------------------

    def initialize(self, encodings: list[str] | None = None) -> dict:
        general = {"positionEncodings": encodings} if encodings else {}
        capabilities = {"general": general, "textDocument": {
            "publishDiagnostics": {"relatedInformation": True},
            "hover": {"contentFormat": ["markdown", "plaintext"]}}}
        result = self.request("initialize", {"processId": None, "rootUri": None,
                                             "capabilities": capabilities})
        self.notify("initialized")
        return result

    def open(self, uri: str, text: str, version: int = 1) -> None:
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "circ", "version": version, "text": text}})

    def change(self, uri: str, text: str, version: int) -> None:
        self.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                               "contentChanges": [{"text": text}]})

    def diagnostics(self, uri: str, version: int | None = None) -> list[dict]:
        """The next diagnostics published for `uri` (for `version`, if given)."""
        while True:
            params = self.wait_for("textDocument/publishDiagnostics")
            if params["uri"] == uri and (version is None or params.get("version") == version):
                return params["diagnostics"]

    def at(self, method: str, uri: str, line: int, character: int, **extra):
        return self.request(method, {"textDocument": {"uri": uri},
                                     "position": {"line": line, "character": character}, **extra})

    def close(self) -> int:
        """Shut down and exit, as an editor does; the server's exit status."""
        assert self.request("shutdown") is None
        self.notify("exit")
        return self.process.wait(timeout=TIMEOUT)


def uri(path: Path) -> str:
    return path.resolve().as_uri()


def chain(lines: int) -> str:
    """A circuit of `lines` lines, each wire reading the two before it (`w5000` on line
    5002); what the tests and the benchmark re-analyse."""
    text = ["input a = 0.5, b = -0.25, x = 1.5", "w0 = tanh(a*x + b)", "w1 = sigmoid(w0*a - b)"]
    text += [f"w{k} = tanh(w{k - 1}*a + w{k - 2}*b) + 0.5*w{k - 1}" for k in range(2, lines - 2)]
    return "\n".join([*text, f"output w{lines - 3}"]) + "\n"
