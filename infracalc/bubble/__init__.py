"""What runs inside a bubble: its client of the INFRACALC service, and the IPython extension recording code.

Standard library only, so that it loads in any kernel of the bubble image (no web framework, no
third-party HTTP client):

- :mod:`infracalc.bubble.client`: the service as the bubble reaches it (``INFRACALC_API_URL``),
  with the bubble's own token (``INFRACALC_BUBBLE_TOKEN``);
- :mod:`infracalc.bubble.exports`: ``infracalc export``, a file streamed to the service as an export;
- :mod:`infracalc.bubble.ipython`: ``%load_ext infracalc.bubble.ipython``, enabled in every kernel of
  the bubble image, sends each cell the kernel runs into the bubble's session, in batches.
"""

from __future__ import annotations
