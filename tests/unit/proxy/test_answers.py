"""Where a plain-HTTP answer ends: the framing the relay follows to close an exchange on time."""

from __future__ import annotations

import pytest

from infracalc.proxy.answers import MAX_HEAD, AnswerFraming


def follow(method: str, answer: bytes, *, piece: int = 0) -> tuple[int, bool]:
    """Feed ``answer`` whole (``piece`` 0) or ``piece`` bytes at a time: bytes kept, and whether complete."""
    framing = AnswerFraming(method)
    kept = 0
    step = piece or len(answer)
    for start in range(0, len(answer), step):
        kept += framing.feed(answer[start : start + step])
        if framing.complete:
            break
    return kept, framing.complete


LENGTH = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nT: 1\r\n\r\n"
EXTRA = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize("piece", [0, 1, 3, 7])
@pytest.mark.parametrize(
    ("method", "answer"),
    [
        ("GET", LENGTH),
        ("GET", CHUNKED),
        ("GET", b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"),
        ("GET", b"HTTP/1.1 304 Not Modified\r\n\r\n"),
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
        ("POST", b"HTTP/1.1 100 Continue\r\n\r\n" + LENGTH),
        ("GET", EXTRA),
    ],
)
def test_complete_answers_end_where_they_end(method: str, answer: bytes, piece: int) -> None:
    assert follow(method, answer + b"HTTP/1.1 200 OK\r\n\r\nnot asked for", piece=piece) == (len(answer), True)


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\n\r\nuntil the close",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nxx",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"ICY 200 OK\r\n\r\nxx",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * MAX_HEAD + b"\r\n\r\n",
    ],
)
def test_answers_without_a_readable_end_are_relayed_until_the_close(answer: bytes) -> None:
    framing = AnswerFraming("GET")
    assert framing.feed(answer) == len(answer)
    assert framing.feed(b"more") == 4
    assert not framing.complete


def test_an_incomplete_answer_is_not_complete() -> None:
    assert follow("GET", LENGTH[:-1]) == (len(LENGTH) - 1, False)
    assert follow("GET", CHUNKED[:-2], piece=5) == (len(CHUNKED) - 2, False)
