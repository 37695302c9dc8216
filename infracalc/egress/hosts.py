"""Host names in allowlist rules and in requests: normal form, IP-literal refusal, and wildcard patterns.

A rule names a host exactly (``api.example.org``) or with one leading wildcard label
(``*.example.org``). Both the rule and the host a bubble asks for are brought to one normal form
(:func:`normalise_host`: lowercase, no trailing dot, IDNA 2008 with UTS #46 mapping to punycode), so
that the comparison is plain string equality or a suffix test. Anything that a resolver or an HTTP
client could read as an IP address is refused as a host name, in every spelling (``127.1``,
``2130706433``, ``0x7f.1``, ``[::1]``): an IP literal is not a name, and the proxy handles explicit
IP rules separately.

Wildcards may not sit directly over a public suffix (``*.com``, ``*.co.uk``, ``*.github.io``): such a
rule would allow names that anyone can register. The public suffixes come from the Public Suffix
List bundled with the ``publicsuffixlist`` package, read from its installed file and never fetched;
both its ICANN and its private sections count, since a private-section suffix such as
``github.io`` or ``s3.amazonaws.com`` hands out names to unrelated parties just the same.

Errors: :class:`InvalidHost`, and :class:`InvalidHostPattern` for what is only wrong in a rule;
both are :class:`infracalc.egress.addresses.EgressError`.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

import idna
from publicsuffixlist import PSLFILE, PublicSuffixList

from infracalc.egress.addresses import EgressError

#: Longest name in octets, without the trailing dot (RFC 1035 section 2.3.4).
MAX_NAME_LENGTH = 253
#: Longest label in octets (RFC 1035 section 2.3.4).
MAX_LABEL_LENGTH = 63

_LDH_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_HEX_NUMBER = re.compile(r"0x[0-9a-f]*")
_OCTAL_NUMBER = re.compile(r"0[0-7]+")
_DECIMAL_NUMBER = re.compile(r"0|[1-9][0-9]*")
_OCTET_MAX = 0xFF


class InvalidHost(EgressError):
    """A host name is malformed, not in a form the proxy accepts, or an IP literal."""


class InvalidHostPattern(InvalidHost):
    """An allowlist host pattern is not allowed (a bare ``*``, a misplaced ``*``, a public suffix)."""


def normalise_host(text: str) -> str:
    """Return ``text`` as a lowercase ASCII host name (punycode for IDNs), without the trailing dot.

    Args:
        text: A host name as a person or a client wrote it, e.g. ``Bücher.example.``.

    Returns:
        The normal form, e.g. ``xn--bcher-kva.example``.

    Raises:
        InvalidHost: The name is empty, has an empty label, a label over 63 octets, is over 253
            octets, holds characters other than letters, digits and hyphens after conversion
            (underscores included), has a label reserved by IDNA (``ab--c``), or reads as an IPv4
            or IPv6 literal in any notation.
    """
    if not text:
        raise InvalidHost("the host name is empty")
    if any(character.isspace() for character in text):
        raise InvalidHost(f"host name {text!r} contains whitespace")
    try:
        # UTS #46 mapping lowercases and folds look-alikes (full-width digits, ideographic full
        # stops) to ASCII, so the IP-literal checks below see what a resolver would see.
        mapped = idna.uts46_remap(text, std3_rules=False, transitional=False)
    except idna.IDNAError as error:
        raise InvalidHost(f"host name {text!r} is not a valid internationalised name: {error}") from None
    _refuse_ipv6_literal(text, mapped)
    name = mapped.removesuffix(".")
    if not name:
        raise InvalidHost(f"host name {text!r} has no labels")
    labels = name.split(".")
    if "" in labels:
        raise InvalidHost(f"host name {text!r} has an empty label")
    _refuse_ipv4_literal(text, labels)
    result = ".".join(_to_ascii_label(text, label) for label in labels)
    if len(result) > MAX_NAME_LENGTH:
        raise InvalidHost(f"host name {text!r} is {len(result)} octets long; the limit is {MAX_NAME_LENGTH}")
    return result


def _refuse_ipv6_literal(text: str, mapped: str) -> None:
    if not ("[" in mapped or "]" in mapped or ":" in mapped):
        return
    inner = mapped[1:-1] if mapped.startswith("[") and mapped.endswith("]") else mapped
    try:
        ipaddress.IPv6Address(inner)
    except ValueError:
        raise InvalidHost(
            f"host name {text!r} contains ':', '[' or ']': give the port separately; IP literals are not host names"
        ) from None
    raise InvalidHost(f"{text!r} is an IPv6 literal, not a host name")


def _ipv4_part(label: str) -> int | None:
    if _HEX_NUMBER.fullmatch(label):
        return int(label[2:] or "0", 16)
    if _OCTAL_NUMBER.fullmatch(label):
        return int(label, 8)
    if _DECIMAL_NUMBER.fullmatch(label):
        return int(label)
    return None


def _as_ipv4(labels: list[str]) -> ipaddress.IPv4Address | None:
    """Read ``labels`` the way ``inet_aton`` and URL parsers do (``127.1``, ``0x7f.1``, ``2130706433``)."""
    parts = [_ipv4_part(label) for label in labels]
    if len(parts) > 4 or any(part is None for part in parts):  # noqa: PLR2004 - four parts at most
        return None
    numbers = [part for part in parts if part is not None]
    *leading, last = numbers
    if any(number > _OCTET_MAX for number in leading) or last >= 1 << (8 * (4 - len(leading))):
        return None
    value = last
    for position, number in enumerate(leading):
        value |= number << (8 * (3 - position))
    return ipaddress.IPv4Address(value)


def _refuse_ipv4_literal(text: str, labels: list[str]) -> None:
    # A name whose last label is a number is an IPv4 address to URL parsers (the WHATWG URL
    # standard's "ends in a number" rule), and no top-level domain is numeric; refuse it even when
    # the number is out of range, rather than guess what some client would make of it.
    last = labels[-1]
    if not (_HEX_NUMBER.fullmatch(last) or (last.isascii() and last.isdigit())):
        return
    address = _as_ipv4(labels)
    if address is not None:
        raise InvalidHost(f"{text!r} is the IPv4 address {address} in another notation; IP literals are not host names")
    raise InvalidHost(f"host name {text!r} ends in a number, so clients would read it as an IPv4 address")


def _to_ascii_label(text: str, label: str) -> str:
    if "_" in label:
        raise InvalidHost(f"host name {text!r} contains an underscore, which host names may not")
    if label.isascii():
        ascii_label = label.lower()
        if ascii_label.startswith("xn--"):
            try:
                idna.ulabel(ascii_label)
            except (idna.IDNAError, UnicodeError) as error:
                raise InvalidHost(f"label {label!r} of {text!r} is not valid punycode: {error}") from None
        elif ascii_label[2:4] == "--":
            raise InvalidHost(
                f"label {label!r} of {text!r} has '--' in its third and fourth characters, "
                "which IDNA reserves for encoded labels (RFC 5890)"
            )
    else:
        try:
            ascii_label = idna.alabel(label).decode("ascii")
        except (idna.IDNAError, UnicodeError) as error:
            raise InvalidHost(f"label {label!r} of {text!r} is not a valid internationalised label: {error}") from None
    if len(ascii_label) > MAX_LABEL_LENGTH:
        raise InvalidHost(
            f"label {label!r} of {text!r} is {len(ascii_label)} octets long; the limit is {MAX_LABEL_LENGTH}"
        )
    if not _LDH_LABEL.fullmatch(ascii_label):
        raise InvalidHost(
            f"label {label!r} of {text!r} may hold only letters, digits and inner hyphens (it may not start or "
            "end with a hyphen)"
        )
    return ascii_label


@functools.cache
def _public_suffix_list() -> PublicSuffixList:
    # The bundled file only: unknown top-level domains count as public suffixes (the safe side).
    return PublicSuffixList(accept_unknown=True, only_icann=False)


def public_suffix_list_version() -> str:
    """Return the version line of the bundled Public Suffix List (e.g. ``2026-10-22_08-36-41_UTC``)."""
    with Path(PSLFILE).open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("// VERSION:"):
                return line.removeprefix("// VERSION:").strip()
    return "unknown"


def is_public_suffix(host: str) -> bool:
    """Tell whether the normalised ``host`` is a public suffix (ICANN or private section, or unknown TLD)."""
    return _public_suffix_list().is_public(host)


@dataclass(frozen=True, slots=True)
class HostPattern:
    """An allowlist host: exactly one name, or with ``wildcard`` every name below ``host``.

    Build it with :func:`parse_host_pattern`, which validates it.

    Attributes:
        host: The normalised name (for ``*.example.org``, ``example.org``).
        wildcard: True for a leading ``*.`` pattern.
    """

    host: str
    wildcard: bool

    def __str__(self) -> str:
        return f"*.{self.host}" if self.wildcard else self.host

    def matches(self, host: str) -> bool:
        """Tell whether the pattern covers ``host``, which is normalised first.

        An exact pattern matches only its own name. A wildcard matches every name with at least one
        more label: ``*.example.org`` matches ``api.example.org`` and ``a.b.example.org`` but not
        ``example.org`` itself (write a second, exact rule for it). A host that is not a valid name
        (an IP literal included) matches nothing.
        """
        try:
            candidate = normalise_host(host)
        except InvalidHost:
            return False
        if self.wildcard:
            return candidate.endswith(f".{self.host}")
        return candidate == self.host


def parse_host_pattern(text: str) -> HostPattern:
    """Validate and normalise an allowlist host pattern.

    Args:
        text: An exact host (``api.example.org``) or a leading wildcard (``*.example.org``).

    Returns:
        The pattern, its host in normal form.

    Raises:
        InvalidHostPattern: A bare ``*``, a ``*`` anywhere but as the whole first label, a
            single-label name (resolved through search domains, so it could name an internal host),
            or a wildcard directly over a public suffix.
        InvalidHost: The host itself is not a valid name (see :func:`normalise_host`).
    """
    if text.strip() == "*":
        raise InvalidHostPattern("a bare '*' would allow every host; name a host or use '*.example.org'")
    wildcard = text.startswith("*.")
    rest = text[2:] if wildcard else text
    if "*" in rest:
        raise InvalidHostPattern(
            f"host pattern {text!r}: '*' may only stand as the whole first label, as in '*.example.org'"
        )
    host = normalise_host(rest)
    if wildcard and is_public_suffix(host):
        raise InvalidHostPattern(
            f"host pattern {text!r} would cover every name under the public suffix {host!r}, which anyone can "
            f"register; put the wildcard over a registered domain, such as '*.example.{host}'"
        )
    if "." not in host:
        raise InvalidHostPattern(
            f"host pattern {text!r} is a single label; name the host in full (such as 'api.example.org')"
        )
    return HostPattern(host=host, wildcard=wildcard)
