"""Minimal GDB remote-protocol client: enough to stop and resume a QEMU guest
and read or write its registers by the names in the stub's target XML."""

import re
import socket
import time


class GdbError(RuntimeError):
    pass


class Gdb:
    def __init__(self, host, port, timeout=60.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection((host, port), timeout=timeout)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise GdbError(f"no gdbstub at {host}:{port} after {timeout}s") from None
                time.sleep(0.05)
        self.buf = b""
        # Acknowledgements only slow every exchange down: TCP is reliable.
        self.request("qSupported:xmlRegisters=aarch64", ack=True)
        self.request("QStartNoAckMode", ack=True)
        self.regs = self._register_numbers()

    def _recv(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise GdbError("gdbstub connection closed")
        self.buf += chunk

    def _packet(self):
        """The next `$...#xx` packet's payload (acks and notifications skipped)."""
        while True:
            start = self.buf.find(b"$")
            if start >= 0:
                end = self.buf.find(b"#", start)
                if end >= 0 and len(self.buf) >= end + 3:
                    data = self.buf[start + 1:end]
                    self.buf = self.buf[end + 3:]
                    # `}` escapes the next byte (XOR 0x20): `$`, `#`, `}` and `*` in binary replies.
                    data = re.sub(rb"}(.)", lambda m: bytes([m[1][0] ^ 0x20]), data, flags=re.S)
                    return data.decode("latin-1")
            self._recv()

    def send(self, data):
        payload = data.encode("latin-1")
        self.sock.sendall(b"$%s#%02x" % (payload, sum(payload) & 0xFF))

    def request(self, data, ack=False):
        self.send(data)
        if ack:  # the stub acks this one packet before no-ack mode starts
            self.sock.sendall(b"+")
        while True:
            reply = self._packet()
            # QEMU reports the stop a new connection causes without being asked
            # (`T02...`): no other reply starts with S or T and two hex digits.
            if not re.fullmatch(r"[ST][0-9a-f]{2}.*", reply):
                return reply

    def _xfer(self, annex):
        out, offset = "", 0
        while True:
            reply = self.request(f"qXfer:features:read:{annex}:{offset:x},ffb")
            if reply[:1] not in ("m", "l"):
                raise GdbError(f"qXfer {annex}: {reply!r}")
            out += reply[1:]
            offset += len(reply) - 1
            if reply[0] == "l":
                return out

    def _register_numbers(self):
        """Register name -> (number, bits): GDB numbers registers in document
        order across the included features, a `regnum` attribute restarting the count."""
        target = self._xfer("target.xml")
        docs = [target] + [self._xfer(name) for name in re.findall(r'<xi:include href="([^"]+)"', target)]
        regs, n = {}, 0
        for doc in docs:
            for attrs in re.findall(r"<reg\b([^>]*)>", doc):
                a = dict(re.findall(r'(\w+)="([^"]*)"', attrs))
                n = int(a.get("regnum", n))
                regs[a["name"]] = (n, int(a["bitsize"]))
                n += 1
        return regs

    def read(self, name):
        num, _bits = self.regs[name]
        reply = self.request(f"p{num:x}")
        if not re.fullmatch(r"[0-9a-f]+", reply):
            raise GdbError(f"p {name}: {reply!r}")
        return int.from_bytes(bytes.fromhex(reply), "little")  # target byte order

    def write(self, name, value):
        num, bits = self.regs[name]
        reply = self.request(f"P{num:x}={value.to_bytes(bits // 8, 'little').hex()}")
        if reply != "OK":
            raise GdbError(f"P {name}: {reply!r}")

    def stop(self):
        """Interrupts the guest; returns once the stub reports it stopped."""
        self.sock.sendall(b"\x03")
        reply = self._packet()
        if reply[:1] not in ("S", "T"):
            raise GdbError(f"interrupt: {reply!r}")

    def cont(self):
        self.send("c")  # no reply until the guest stops again

    def close(self):
        self.sock.close()
