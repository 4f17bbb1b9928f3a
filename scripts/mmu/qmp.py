"""Minimal QMP client: enough to stop a guest, dump memory and ask the monitor."""

import json
import socket
import time


class QmpError(RuntimeError):
    pass


class Qmp:
    def __init__(self, path, timeout=60.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.monotonic() > deadline:
                    raise QmpError(f"no QMP socket at {path} after {timeout}s")
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.reader = self.sock.makefile("r", encoding="utf-8")
        self._read()  # greeting
        self.execute("qmp_capabilities")

    def _read(self):
        while True:
            line = self.reader.readline()
            if not line:
                raise QmpError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def execute(self, command, **arguments):
        request = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        reply = self._read()
        if "error" in reply:
            raise QmpError(f"{command}: {reply['error'].get('desc', reply['error'])}")
        return reply.get("return")

    def hmp(self, command_line):
        """A human-monitor command (info registers, info tlb, gva2gpa ...); returns its text."""
        return self.execute("human-monitor-command", **{"command-line": command_line})

    def close(self):
        self.reader.close()
        self.sock.close()
