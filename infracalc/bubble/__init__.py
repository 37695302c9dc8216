"""What runs inside a bubble: its client of the INFRACALC service, and the IPython extension recording code.

Standard library only, so that it loads in any kernel of the bubble image (no web framework, no
third-party HTTP client):

- :mod:`infracalc.bubble.client`: the service as the bubble reaches it (``INFRACALC_API_URL``),
  with the bubble's own token (``INFRACALC_BUBBLE_TOKEN``);
- :mod:`infracalc.bubble.exports`: ``infracalc export``, a file streamed to the service as an export;
- :mod:`infracalc.bubble.ipython`: ``%load_ext infracalc.bubble.ipython``, enabled in every kernel of
  the bubble image, sends each cell the kernel runs into the bubble's session, in batches;
- :mod:`infracalc.bubble.egress`: the egress proxy's answer for a URL, with the reason of a refusal;
- :mod:`infracalc.bubble.welcome`: the welcome notebooks (French, English) given to a work folder once.

:data:`JUPYTER_CONFIG_DIR` holds the Jupyter configuration of every bubble (JupyterLab calling nothing
on the internet), which local bubbles and the bubble image share.
"""

from __future__ import annotations

from pathlib import Path

#: The bubbles' Jupyter configuration folder (``JUPYTER_CONFIG_PATH``): server settings and JupyterLab's page config.
JUPYTER_CONFIG_DIR = Path(__file__).resolve().parent / "jupyter"

__all__ = ["JUPYTER_CONFIG_DIR"]
