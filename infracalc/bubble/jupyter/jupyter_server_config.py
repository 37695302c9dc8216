"""Jupyter server configuration of every bubble: JupyterLab, and nothing that reaches for the internet.

A bubble's only way out is the egress proxy, which lets through the hosts its project was approved
for and nothing else; JupyterLab's habits of calling home (news, update checks, the PyPI extension
manager) would only fill the hub's log with refusals. The local spawner points ``JUPYTER_CONFIG_PATH``
at this folder (``infracalc.bubble.JUPYTER_CONFIG_DIR``); the bubble image copies it and sets the same.
"""

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - given by Jupyter when it loads the file

# No news feed and no "a new version is available": both fetch from the internet at start.
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.handlers.announcements.NeverCheckForUpdate"
# Extensions come with the bubble image, reviewed; the PyPI manager would offer installs it cannot make.
c.LabApp.extension_manager = "readonly"
# No language server is installed in a bubble: the LSP extension would only scan for them at each start.
c.ServerApp.jpserver_extensions.update({"jupyter_lsp": False})
# Terminals run bash as a plain interactive shell: a login shell reads /etc/profile, which resets PATH
# and so loses the environment's python, pip and `infracalc` (the base image's setting too).
c.ServerApp.terminado_settings = {"shell_command": ["/bin/bash"]}
