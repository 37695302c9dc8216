"""Enrollment's pure rules: usernames from e-mails, the networks an invitee may register, link digests."""

from __future__ import annotations

import itertools
import re

import pytest

from infracalc.config import SettingError
from infracalc.mail import MailSettings
from infracalc.service.enrollments.schemas import USERNAME_PATTERN
from infracalc.service.enrollments.service import candidate_usernames, digest, enrollment_networks
from infracalc.service.errors import InvalidInput


@pytest.mark.parametrize(
    ("email", "first"),
    [
        ("Ada.Lovelace@example.org", "ada.lovelace"),
        ("jean+casd@example.fr", "jean-casd"),
        ("é@example.org", "user"),
        ("x@example.org", "x-user"),
        ("--a--@example.org", "a-user"),
    ],
)
def test_usernames_come_from_the_local_part_then_numbered(email: str, first: str) -> None:

    candidates = list(itertools.islice(candidate_usernames(email), 11))
    assert candidates[0] == first
    assert candidates[1] == f"{first}2"
    assert len(set(candidates)) == 11
    assert all(re.fullmatch(USERNAME_PATTERN.strip("^$"), candidate) for candidate in candidates)


def test_invitees_register_networks_by_the_rule_of_every_registered_network() -> None:
    assert enrollment_networks(["2001:db8:1::/48", "203.0.0.0/16", "192.0.2.7/32"]) == [
        "192.0.2.7/32",
        "203.0.0.0/16",
        "2001:db8:1::/48",
    ]
    for value, why in (
        ("203.0.0.0/15", "IPv4 networks may be /16 at widest"),
        ("2001:db8::/47", "IPv6 networks may be /48 at widest"),
        ("10.0.0.1", "CIDR form"),
    ):
        with pytest.raises(InvalidInput, match=why):
            enrollment_networks([value])
    with pytest.raises(InvalidInput, match="at least one network"):
        enrollment_networks([])


def test_a_digest_is_sha256_hex_and_never_the_secret() -> None:
    assert digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_mail_settings_are_off_without_a_host_and_checked_with_one() -> None:
    assert MailSettings.from_env({}) is None
    settings = MailSettings.from_env(
        {"INFRACALC_SMTP_HOST": "relay", "INFRACALC_SMTP_FROM": "i@example.org", "INFRACALC_SMTP_PASSWORD": "pw"}
    )
    assert settings is not None
    assert settings.port == 587
    assert settings.starttls
    assert "pw" not in repr(settings)
    plain = MailSettings.from_env(
        {"INFRACALC_SMTP_HOST": "relay", "INFRACALC_SMTP_FROM": "i@x.org", "INFRACALC_SMTP_STARTTLS": "false"}
    )
    assert plain is not None
    assert plain.port == 25
    with pytest.raises(SettingError, match="INFRACALC_SMTP_FROM"):
        MailSettings.from_env({"INFRACALC_SMTP_HOST": "relay"})
    with pytest.raises(SettingError, match="STARTTLS"):
        MailSettings.from_env(
            {"INFRACALC_SMTP_HOST": "relay", "INFRACALC_SMTP_FROM": "i@x.org", "INFRACALC_SMTP_STARTTLS": "maybe"}
        )
