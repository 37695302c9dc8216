"""No credential in what the proxy writes: the redaction of texts and of log lines."""

from __future__ import annotations

import logging

import pytest

from infracalc.identity import bubble_tokens, proxy_secret
from infracalc.proxy.redaction import MARKER, RedactingFilter, redact
from infracalc.proxy.wire import ProxyError, interpret, parse_authority, parse_head, response

TOKEN = bubble_tokens.mint().token
SECRET = proxy_secret.mint()


@pytest.mark.parametrize(
    "text",
    [
        f"POST /items?token={TOKEN} is not allowed",
        f"{TOKEN.upper()}",
        f"/x/{TOKEN.replace('_', '%5F')}/y",
        f"Bearer {SECRET}",
        f"cut short: {TOKEN[:30]}",
    ],
)
def test_credentials_are_replaced_wherever_they_appear(text: str) -> None:
    cleaned = redact(text)
    assert MARKER in cleaned
    assert TOKEN.split("_")[-1][:16] not in cleaned.lower()
    assert SECRET[4:20] not in cleaned


def test_texts_without_credentials_are_kept_as_they_are() -> None:
    text = "rule r-1 of project demo allows api.example.org:443 (GET /v1/items_list?q=ibtx)"
    assert redact(text) is text


def test_userinfo_in_a_target_is_refused_without_being_quoted() -> None:
    for authority in (f"b:{TOKEN}@api.example.org:443", f"{TOKEN}@api.example.org"):
        with pytest.raises(ProxyError) as caught:
            parse_authority(authority)
        assert caught.value.status == 400
        assert caught.value.label == "userinfo"
        assert TOKEN not in caught.value.reason
    head = f"GET http://b:{TOKEN}@api.example.org/ HTTP/1.1\r\n\r\n".encode()
    with pytest.raises(ProxyError) as caught:
        interpret(parse_head(head))
    assert caught.value.label == "userinfo"


def test_an_unclosed_ipv6_bracket_is_a_bad_host_not_a_crash() -> None:
    with pytest.raises(ProxyError) as caught:
        interpret(parse_head(b"GET http://[::1/ HTTP/1.1\r\n\r\n"))
    assert (caught.value.status, caught.value.label) == (400, "bad_host")


def test_answers_never_carry_a_credential() -> None:
    assert TOKEN not in response(403, f"GET /?t={TOKEN} is refused").decode()


def _fail() -> None:
    raise ValueError(f"bad {SECRET}")


def test_log_lines_are_redacted_whoever_writes_them() -> None:
    logger = logging.getLogger("tests.redaction")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    try:
        logger.warning("refused %s", f"CONNECT {TOKEN}:443")
        try:
            _fail()
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert records[0].getMessage() == f"refused CONNECT {MARKER}:443"
    assert records[1].exc_text is not None
    assert SECRET not in records[1].exc_text
    assert MARKER in records[1].exc_text
