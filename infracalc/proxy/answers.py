"""Where a plain-HTTP answer ends, so that the proxy can close the exchange then (RFC 9112, section 6.3).

A plain-HTTP request is one exchange per connection: the proxy sends the request upstream with
``Connection: close``, relays the answer, and is done. An upstream that keeps its side open anyway
(keep-alive regardless, or a slow close) must not keep the bubble's connection, its upstream socket
and its place under the bubble's cap until the idle timeout. :class:`AnswerFraming` reads the
answer as it passes, without changing it, and says how many of the bytes it is fed belong to the
answer and when the answer is complete:

- interim answers (``1xx`` but ``101``) are passed and the final one awaited;
- ``HEAD`` requests, ``204`` and ``304`` answers have no body;
- a ``chunked`` body ends with its last chunk and trailers;
- a ``Content-Length`` body ends after that many bytes;
- anything else (no length, another transfer coding, ``101``, a head that cannot be read) is
  delimited by the upstream's close, as HTTP/1.1 says, and the idle timeout still applies.

Bytes after the answer's end are never relayed: no decision covered them.

It also keeps what the proxy needs of the final answer: its status, its declared length, how
many body bytes went by (a rule caps an answer's size), and whether the upstream keeps the
connection open after it (an inspected connection reuses it for the bubble's next request).
"""

from __future__ import annotations

import enum

#: The longest answer head read for its framing; a longer one is relayed until the upstream closes.
MAX_HEAD = 64 * 1024
#: The longest chunk-size line (with extensions) or trailer line accepted.
MAX_LINE = 4096
_HEX_DIGITS = b"0123456789abcdefABCDEF"


class _State(enum.Enum):
    HEAD = "head"
    LENGTH = "length"
    CHUNK_SIZE = "chunk-size"
    CHUNK_DATA = "chunk-data"
    CHUNK_END = "chunk-end"
    TRAILER = "trailer"
    UNTIL_CLOSE = "until-close"
    COMPLETE = "complete"


class AnswerFraming:
    """Follows one plain-HTTP answer's framing, fed the answer's bytes in order as they arrive."""

    def __init__(self, request_method: str) -> None:
        self._head_request = request_method == "HEAD"
        self._state = _State.HEAD
        self._line = bytearray()  # a head, a chunk-size line or a trailer line being read
        self._remaining = 0  # body or chunk bytes still expected
        #: The final answer's status, once its head was read (``None`` before, or when unreadable).
        self.status: int | None = None
        #: Its ``Content-Length``, when it has one and a body.
        self.declared_length: int | None = None
        #: Body bytes seen so far (chunk data for a chunked body; everything after a head that
        #: could not be read).
        self.body_bytes = 0
        #: The upstream closes the connection after this answer (``Connection: close``, HTTP/1.0,
        #: or a body delimited by the close).
        self.closes = False

    @property
    def complete(self) -> bool:
        """The answer has ended: nothing more is to be relayed."""
        return self._state is _State.COMPLETE

    def over(self, cap: int | None) -> bool:
        """Whether the answer's body is, or says it will be, larger than ``cap`` bytes (``None``: no cap)."""
        if cap is None:
            return False
        return self.body_bytes > cap or (self.declared_length is not None and self.declared_length > cap)

    def feed(self, data: memoryview | bytes) -> int:
        """Take the next bytes of the answer; return how many of them (from the start) belong to it."""
        view = memoryview(data)
        used = 0
        while used < len(view):
            state = self._state
            if state is _State.COMPLETE:
                break
            if state is _State.UNTIL_CLOSE:
                self.body_bytes += len(view) - used
                return len(view)
            if state is _State.LENGTH or state is _State.CHUNK_DATA:
                taken = min(self._remaining, len(view) - used)
                used += taken
                self.body_bytes += taken
                self._remaining -= taken
                if self._remaining == 0:
                    self._state = _State.COMPLETE if state is _State.LENGTH else _State.CHUNK_END
                continue
            used += self._take_line(view[used:])
        return used

    def _take_line(self, view: memoryview) -> int:
        """Add bytes of ``view`` to the head or line being read, up to its end; act on it when it ended."""
        ending = b"\r\n\r\n" if self._state is _State.HEAD else b"\r\n"
        limit = MAX_HEAD if self._state is _State.HEAD else MAX_LINE
        searched_from = max(0, len(self._line) - len(ending) + 1)
        self._line += view
        end = self._line.find(ending, searched_from)
        if end == -1:
            if len(self._line) > limit:
                self._state = _State.UNTIL_CLOSE  # unreadable: delimited by the close
                self.closes = True
            return len(view)
        taken = len(view) - (len(self._line) - end - len(ending))
        text = bytes(self._line[:end])
        self._line.clear()
        if self._state is _State.HEAD:
            self._after_head(text)
        elif self._state is _State.CHUNK_SIZE:
            self._after_chunk_size(text)
        elif self._state is _State.CHUNK_END:
            self._state = _State.CHUNK_SIZE if not text else _State.UNTIL_CLOSE
            self.closes = self.closes or bool(text)
        elif not text:  # _State.TRAILER: the empty line ends the answer
            self._state = _State.COMPLETE
        return taken

    def _after_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():  # noqa: PLR2004
            self._state = _State.UNTIL_CLOSE
            self.closes = True
            return
        status = int(parts[1])
        if 100 <= status < 200 and status != 101:  # noqa: PLR2004 - interim: the final answer follows
            return
        self.status = status
        if status == 101:  # noqa: PLR2004 - another protocol: delimited by the close
            self._state = _State.UNTIL_CLOSE
            self.closes = True
            return
        codings: list[bytes] = []
        lengths: set[bytes] = set()
        tokens: set[bytes] = set()
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"transfer-encoding":
                codings += [coding.strip().lower() for coding in value.split(b",") if coding.strip()]
            elif name == b"content-length":
                lengths.add(value.strip())
            elif name == b"connection":
                tokens |= {token.strip().lower() for token in value.split(b",")}
        self.closes = b"close" in tokens or (parts[0] == b"HTTP/1.0" and b"keep-alive" not in tokens)
        if self._head_request or status in (204, 304):
            self._state = _State.COMPLETE
            return
        if codings:
            self._state = _State.CHUNK_SIZE if codings[-1] == b"chunked" else _State.UNTIL_CLOSE
        elif len(lengths) == 1 and (length := lengths.pop()).isdigit() and len(length) <= 18:  # noqa: PLR2004
            self._remaining = int(length)
            self.declared_length = self._remaining
            self._state = _State.LENGTH if self._remaining else _State.COMPLETE
        else:
            self._state = _State.UNTIL_CLOSE
        if self._state is _State.UNTIL_CLOSE:
            self.closes = True

    def _after_chunk_size(self, line: bytes) -> None:
        size = line.split(b";", 1)[0].strip(b" \t")
        well_formed = 0 < len(size) <= 15 and not size.strip(_HEX_DIGITS)  # noqa: PLR2004
        self._remaining = int(size, 16) if well_formed else -1
        if self._remaining < 0:
            self._state = _State.UNTIL_CLOSE
            self.closes = True
        elif self._remaining == 0:
            self._state = _State.TRAILER
        else:
            self._state = _State.CHUNK_DATA
