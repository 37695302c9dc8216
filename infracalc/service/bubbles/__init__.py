"""The bubbles domain: bubbles registered by the hub, their tokens, their revocation."""

from __future__ import annotations
