"""Egress: which hosts a bubble may name and which addresses the egress proxy may dial.

The building blocks here know nothing of HTTP servers or web frameworks: :mod:`.hosts` validates
allowlist host patterns and request hosts, :mod:`.addresses` classifies IP addresses, resolves a
name once and chooses the one address to connect to, :mod:`.sources` writes the address a bubble's
connections come from in the one form the policy compares.
"""

from __future__ import annotations

from infracalc.egress.addresses import (
    METADATA_ADDRESSES,
    AddressClass,
    AddressInfo,
    AddressPolicy,
    AddressRefused,
    DenyEntry,
    EgressConfigError,
    EgressError,
    IPAddress,
    IPNetwork,
    ResolutionFailed,
    ResolutionTimeout,
    Resolver,
    Verdict,
    choose,
    classify,
    describe_address,
    resolve_once,
)
from infracalc.egress.hosts import (
    HostPattern,
    InvalidHost,
    InvalidHostPattern,
    is_public_suffix,
    normalise_host,
    parse_host_pattern,
    public_suffix_list_version,
)
from infracalc.egress.sources import InvalidSourceAddress, source_address

__all__ = [
    "METADATA_ADDRESSES",
    "AddressClass",
    "AddressInfo",
    "AddressPolicy",
    "AddressRefused",
    "DenyEntry",
    "EgressConfigError",
    "EgressError",
    "HostPattern",
    "IPAddress",
    "IPNetwork",
    "InvalidHost",
    "InvalidHostPattern",
    "InvalidSourceAddress",
    "ResolutionFailed",
    "ResolutionTimeout",
    "Resolver",
    "Verdict",
    "choose",
    "classify",
    "describe_address",
    "is_public_suffix",
    "normalise_host",
    "parse_host_pattern",
    "public_suffix_list_version",
    "resolve_once",
    "source_address",
]
