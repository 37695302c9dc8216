"""The test-only resolver answers from its file and from nothing else."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from infracalc.egress import EgressConfigError
from infracalc.proxy.hosts_file import hosts_resolver, read_hosts


def test_names_are_normalised_and_addresses_kept_in_order(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("# test names\n10.231.200.2 API.Allowed.test twin.test\n::ffff:127.0.0.1 twin.test  # mapped\n")
    assert read_hosts(path) == {
        "api.allowed.test": ["10.231.200.2"],
        "twin.test": ["10.231.200.2", "::ffff:7f00:1"],
    }


async def test_the_resolver_never_falls_back_to_dns(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("10.231.200.2 api.allowed.test\n")
    resolve = hosts_resolver(path)
    entries = await resolve("api.allowed.test", 443)
    assert [(family, address) for family, _, _, _, address in entries] == [(socket.AF_INET, ("10.231.200.2", 443))]
    with pytest.raises(socket.gaierror):
        await resolve("localhost", 443)


@pytest.mark.parametrize("line", ["10.231.200.2\n", "not-an-address name.test\n"])
def test_malformed_lines_are_refused(tmp_path: Path, line: str) -> None:
    path = tmp_path / "hosts"
    path.write_text(line)
    with pytest.raises(EgressConfigError, match="line 1"):
        read_hosts(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EgressConfigError):
        read_hosts(tmp_path / "absent")
