"""JupyterHub's INFRACALC parts: the authenticator, the spawners and the hooks the hub configuration uses.

Imported by ``hub_config/jupyterhub_config.py`` only (and the hub's tests): the service and the
egress proxy never import JupyterHub.
"""

from __future__ import annotations
