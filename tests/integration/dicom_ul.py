"""A small raw DICOM Upper Layer client (PS3.8) for tests that DCMTK tools cannot do.

It builds PDUs byte by byte, so a test can send exactly what it wants (odd AE titles, an
unknown application context, half a dataset, garbage) and read back exactly what the peer
answered. Only what the integration tests need is here:

- PDU builders: A-ASSOCIATE-RQ, P-DATA-TF, A-RELEASE-RQ, A-ABORT (PS3.8 9.3).
- PDU parsers: A-ASSOCIATE-AC, A-ASSOCIATE-RJ, A-ABORT.
- DIMSE command sets in Implicit VR Little Endian (PS3.7 9.3, E.1): C-ECHO-RQ, C-STORE-RQ, and
  a reader for the response command set.
- `Association`: associate, echo, store (fragmenting to the peer's max PDU), release, abort.

Everything is blocking with a timeout on every read, so a silent peer can never hang a test.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field

# PDU types, PS3.8 9.3.1.
A_ASSOCIATE_RQ = 0x01
A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_RELEASE_RP = 0x06
A_ABORT = 0x07

DICOM_APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
EXPLICIT_VR_BE = "1.2.840.10008.1.2.2"

IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.9.7433.1.1"
IMPLEMENTATION_VERSION = "CONDUIT_PYTEST"

# DIMSE command fields, PS3.7 E.1.
C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
NO_DATASET = 0x0101


class PeerClosed(Exception):
    """The peer closed (or reset) the TCP connection."""


class UnexpectedPdu(Exception):
    def __init__(self, pdu: "Pdu", wanted: str):
        super().__init__(f"wanted {wanted}, got {pdu!r}")
        self.pdu = pdu


# --------------------------------------------------------------------------------------------
# PDU encoding


def _uid(uid: str) -> bytes:
    # UIDs inside UL items are not padded (PS3.8 9.3.2.2); the trailing NUL would be tolerated
    # by most peers but we send the plain value.
    return uid.encode("ascii")


def _ae(title: str) -> bytes:
    raw = title.encode("ascii")
    if len(raw) > 16:
        raise ValueError(f"AE title longer than 16 bytes: {title!r}")
    return raw.ljust(16, b" ")


def _item(item_type: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(payload)) + payload


def pdu(pdu_type: int, body: bytes, length: int | None = None) -> bytes:
    """A PDU: type, reserved, 32-bit big-endian length, body. `length` may lie on purpose."""
    return struct.pack(">BBI", pdu_type, 0, len(body) if length is None else length) + body


def presentation_context_rq(pc_id: int, abstract_syntax: str, transfer_syntaxes: list[str]) -> bytes:
    payload = struct.pack(">BBBB", pc_id, 0, 0, 0) + _item(0x30, _uid(abstract_syntax))
    for ts in transfer_syntaxes:
        payload += _item(0x40, _uid(ts))
    return _item(0x20, payload)


def user_information(max_pdu: int = 16384) -> bytes:
    payload = _item(0x51, struct.pack(">I", max_pdu))
    payload += _item(0x52, _uid(IMPLEMENTATION_CLASS_UID))
    payload += _item(0x55, IMPLEMENTATION_VERSION.encode("ascii"))
    return _item(0x50, payload)


def associate_rq(
    calling_ae: str = "PYSCU",
    called_ae: str = "CONDUIT",
    contexts: list[tuple[int, str, list[str]]] | None = None,
    max_pdu: int = 16384,
    application_context: str = DICOM_APPLICATION_CONTEXT,
) -> bytes:
    """A-ASSOCIATE-RQ, PS3.8 9.3.2. `contexts` is [(id, abstract syntax, [transfer syntaxes])]."""
    if contexts is None:
        contexts = [(1, VERIFICATION_SOP_CLASS, [IMPLICIT_VR_LE])]
    body = struct.pack(">HH", 1, 0) + _ae(called_ae) + _ae(calling_ae) + bytes(32)
    body += _item(0x10, _uid(application_context))
    for pc_id, abstract, syntaxes in contexts:
        body += presentation_context_rq(pc_id, abstract, syntaxes)
    body += user_information(max_pdu)
    return pdu(A_ASSOCIATE_RQ, body)


def pdv(pc_id: int, data: bytes, command: bool, last: bool) -> bytes:
    """One Presentation Data Value item, PS3.8 9.3.5.1 and Annex E.2."""
    control = (0x01 if command else 0x00) | (0x02 if last else 0x00)
    return struct.pack(">IBB", len(data) + 2, pc_id, control) + data


def p_data_tf(*pdvs: bytes) -> bytes:
    return pdu(P_DATA_TF, b"".join(pdvs))


def release_rq() -> bytes:
    return pdu(A_RELEASE_RQ, bytes(4))


def release_rp() -> bytes:
    return pdu(A_RELEASE_RP, bytes(4))


def abort(source: int = 0, reason: int = 0) -> bytes:
    return pdu(A_ABORT, struct.pack(">BBBB", 0, 0, source, reason))


# --------------------------------------------------------------------------------------------
# PDU decoding


@dataclass
class Pdu:
    type: int
    body: bytes

    def __repr__(self) -> str:
        names = {1: "A-ASSOCIATE-RQ", 2: "A-ASSOCIATE-AC", 3: "A-ASSOCIATE-RJ", 4: "P-DATA-TF",
                 5: "A-RELEASE-RQ", 6: "A-RELEASE-RP", 7: "A-ABORT"}
        name = names.get(self.type, f"type 0x{self.type:02x}")
        return f"<{name} {len(self.body)} bytes: {self.body[:48].hex()}>"


@dataclass
class AssociateAc:
    max_pdu: int
    # pc id -> (result, transfer syntax); result 0 is acceptance (PS3.8 9.3.3.2).
    contexts: dict[int, tuple[int, str]] = field(default_factory=dict)
    called_ae: str = ""
    calling_ae: str = ""


@dataclass
class AssociateRj:
    result: int
    source: int
    reason: int


@dataclass
class Abort:
    source: int
    reason: int


def _items(data: bytes):
    pos = 0
    while pos + 4 <= len(data):
        item_type, _, length = struct.unpack_from(">BBH", data, pos)
        yield item_type, data[pos + 4: pos + 4 + length]
        pos += 4 + length


def parse_associate_ac(body: bytes) -> AssociateAc:
    called = body[4:20].decode("ascii", "replace").strip()
    calling = body[20:36].decode("ascii", "replace").strip()
    ac = AssociateAc(max_pdu=0, called_ae=called, calling_ae=calling)
    for item_type, payload in _items(body[68:]):
        if item_type == 0x21:
            pc_id, result = payload[0], payload[2]
            ts = ""
            for sub_type, sub in _items(payload[4:]):
                if sub_type == 0x40:
                    ts = sub.rstrip(b"\0").decode("ascii")
            ac.contexts[pc_id] = (result, ts)
        elif item_type == 0x50:
            for sub_type, sub in _items(payload):
                if sub_type == 0x51:
                    (ac.max_pdu,) = struct.unpack(">I", sub)
    return ac


def parse_associate_rj(body: bytes) -> AssociateRj:
    return AssociateRj(result=body[1], source=body[2], reason=body[3])


def parse_abort(body: bytes) -> Abort:
    return Abort(source=body[2], reason=body[3])


def parse_pdvs(body: bytes) -> list[tuple[int, int, bytes]]:
    """P-DATA-TF body -> [(pc id, message control header, data)]."""
    out, pos = [], 0
    while pos + 6 <= len(body):
        (length,) = struct.unpack_from(">I", body, pos)
        out.append((body[pos + 4], body[pos + 5], body[pos + 6: pos + 4 + length]))
        pos += 4 + length
    return out


# --------------------------------------------------------------------------------------------
# DIMSE command sets (always Implicit VR Little Endian, PS3.7 6.3.1)


def _element(group: int, elem: int, value: bytes) -> bytes:
    return struct.pack("<HHI", group, elem, len(value)) + value


def _ui(uid: str) -> bytes:
    raw = uid.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def _us(value: int) -> bytes:
    return struct.pack("<H", value)


def command_set(elements: list[tuple[int, bytes]]) -> bytes:
    """Elements of group 0000 (tag element number, encoded value) with (0000,0000) in front."""
    rest = b"".join(_element(0x0000, e, v) for e, v in sorted(elements))
    return _element(0x0000, 0x0000, struct.pack("<I", len(rest))) + rest


def c_echo_rq(message_id: int = 1) -> bytes:
    return command_set([
        (0x0002, _ui(VERIFICATION_SOP_CLASS)),
        (0x0100, _us(C_ECHO_RQ)),
        (0x0110, _us(message_id)),
        (0x0800, _us(NO_DATASET)),
    ])


def c_store_rq(sop_class: str, sop_instance: str, message_id: int = 1, priority: int = 0) -> bytes:
    return command_set([
        (0x0002, _ui(sop_class)),
        (0x0100, _us(C_STORE_RQ)),
        (0x0110, _us(message_id)),
        (0x0700, _us(priority)),
        (0x0800, _us(0x0000)),  # a dataset follows
        (0x1000, _ui(sop_instance)),
    ])


def parse_command(data: bytes) -> dict[int, bytes]:
    """Implicit VR LE group 0000 -> {element number: raw value}."""
    out, pos = {}, 0
    while pos + 8 <= len(data):
        group, elem, length = struct.unpack_from("<HHI", data, pos)
        if group != 0x0000:
            break
        out[elem] = data[pos + 8: pos + 8 + length]
        pos += 8 + length
    return out


def command_us(cmd: dict[int, bytes], elem: int) -> int:
    return struct.unpack("<H", cmd[elem])[0]


def command_ui(cmd: dict[int, bytes], elem: int) -> str:
    return cmd[elem].rstrip(b"\0 ").decode("ascii")


# --------------------------------------------------------------------------------------------
# Transport


class Connection:
    """A TCP connection that speaks in PDUs; every read has a deadline."""

    def __init__(self, host: str, port: int, timeout: float = 10.0, source: str | None = None):
        # `source` picks the local address (e.g. 127.0.0.2) so one machine can act as many peers.
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout

    @classmethod
    def accepted(cls, sock: socket.socket, timeout: float = 10.0) -> "Connection":
        """The server side: a connection a listener accepted."""
        conn = cls.__new__(cls)
        conn.sock = sock
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.timeout = timeout
        return conn

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv_exact(self, n: int, deadline: float) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete read of {n} bytes in time (got {len(buf)})")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(n - len(buf))
            except (ConnectionResetError, BrokenPipeError) as exc:
                raise PeerClosed(str(exc)) from exc
            except socket.timeout as exc:
                raise TimeoutError(f"no complete read of {n} bytes in time (got {len(buf)})") from exc
            if not chunk:
                raise PeerClosed(f"peer closed after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def read_pdu(self, timeout: float | None = None) -> Pdu:
        """The next PDU. Raises PeerClosed on EOF/reset, TimeoutError past the deadline."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        header = self._recv_exact(6, deadline)
        pdu_type, _, length = struct.unpack(">BBI", header)
        if length > 64 * 1024 * 1024:
            raise ValueError(f"peer sent a PDU claiming {length} bytes")
        return Pdu(pdu_type, self._recv_exact(length, deadline))

    def wait_closed(self, timeout: float) -> bool:
        """Reads and discards until EOF/reset; True if the peer closed before `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                if not self.sock.recv(65536):
                    return True
            except (ConnectionResetError, BrokenPipeError):
                return True
            except socket.timeout:
                return False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_abort_or_close(conn: Connection, timeout: float) -> tuple[str, Pdu | None]:
    """What a peer does after a protocol error: ('abort', pdu), ('closed', None), or
    ('other', pdu) for any other PDU. Raises TimeoutError if it does nothing."""
    try:
        got = conn.read_pdu(timeout)
    except PeerClosed:
        return "closed", None
    if got.type == A_ABORT:
        return "abort", got
    return "other", got


# --------------------------------------------------------------------------------------------
# Association


class Rejected(Exception):
    def __init__(self, rj: AssociateRj):
        super().__init__(f"A-ASSOCIATE-RJ result={rj.result} source={rj.source} reason={rj.reason}")
        self.rj = rj


class Association:
    """An established association. Use `Association.open(...)`."""

    def __init__(self, conn: Connection, ac: AssociateAc):
        self.conn = conn
        self.ac = ac
        self.message_id = 0

    @classmethod
    def open(cls, host: str, port: int, timeout: float = 10.0, source: str | None = None,
             **rq_kwargs) -> "Association":
        """Connects and associates; raises Rejected on A-ASSOCIATE-RJ."""
        conn = Connection(host, port, timeout, source)
        try:
            conn.send(associate_rq(**rq_kwargs))
            answer = conn.read_pdu()
            if answer.type == A_ASSOCIATE_RJ:
                raise Rejected(parse_associate_rj(answer.body))
            if answer.type != A_ASSOCIATE_AC:
                raise UnexpectedPdu(answer, "A-ASSOCIATE-AC")
            return cls(conn, parse_associate_ac(answer.body))
        except BaseException:
            conn.close()
            raise

    def accepted_context(self, pc_id: int) -> str:
        """The accepted transfer syntax of context `pc_id`; AssertionError if not accepted."""
        result, ts = self.ac.contexts.get(pc_id, (None, ""))
        assert result == 0, f"presentation context {pc_id} not accepted: {self.ac.contexts}"
        return ts

    def _max_pdv_data(self) -> int:
        # Peer max PDU 0 means unlimited (PS3.8 D.1); keep fragments modest anyway.
        limit = self.ac.max_pdu if self.ac.max_pdu else 65536
        return limit - 6  # PDV item header: 4-byte length, context id, control header

    def send_fragments(self, pc_id: int, data: bytes, command: bool, last: bool = True) -> None:
        """Sends `data` as PDVs no larger than the peer allows; `last` marks the final one."""
        step = self._max_pdv_data()
        chunks = [data[i:i + step] for i in range(0, len(data), step)] or [b""]
        for i, chunk in enumerate(chunks):
            self.conn.send(p_data_tf(pdv(pc_id, chunk, command, last and i == len(chunks) - 1)))

    def next_message_id(self) -> int:
        self.message_id = (self.message_id % 0xFFFF) + 1
        return self.message_id

    def read_command(self, timeout: float | None = None) -> dict[int, bytes]:
        """Reads PDUs until a complete command set arrives; raises UnexpectedPdu otherwise."""
        data = b""
        while True:
            got = self.conn.read_pdu(timeout)
            if got.type != P_DATA_TF:
                raise UnexpectedPdu(got, "P-DATA-TF with a command")
            for _, control, chunk in parse_pdvs(got.body):
                assert control & 0x01, "peer sent a data PDV where a command was expected"
                data += chunk
                if control & 0x02:
                    return parse_command(data)

    def echo(self, pc_id: int = 1) -> int:
        msg_id = self.next_message_id()
        self.send_fragments(pc_id, c_echo_rq(msg_id), command=True)
        rsp = self.read_command()
        assert command_us(rsp, 0x0100) == C_ECHO_RSP
        assert command_us(rsp, 0x0120) == msg_id
        return command_us(rsp, 0x0900)

    def store(self, pc_id: int, sop_class: str, sop_instance: str, dataset: bytes) -> int:
        """One C-STORE; returns the response status."""
        msg_id = self.next_message_id()
        self.send_fragments(pc_id, c_store_rq(sop_class, sop_instance, msg_id), command=True)
        self.send_fragments(pc_id, dataset, command=False)
        rsp = self.read_command()
        assert command_us(rsp, 0x0100) == C_STORE_RSP, rsp
        assert command_us(rsp, 0x0120) == msg_id, rsp
        return command_us(rsp, 0x0900)

    def release(self, timeout: float | None = None) -> None:
        self.conn.send(release_rq())
        got = self.conn.read_pdu(timeout)
        if got.type != A_RELEASE_RP:
            raise UnexpectedPdu(got, "A-RELEASE-RP")
        self.conn.close()

    def abort(self) -> None:
        try:
            self.conn.send(abort(source=0, reason=0))
        finally:
            self.conn.close()

    def close(self) -> None:
        self.conn.close()
