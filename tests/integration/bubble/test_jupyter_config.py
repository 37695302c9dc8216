"""The bubbles' Jupyter configuration, read by a real JupyterLab: nothing in it reaches for the internet.

``infracalc.bubble.JUPYTER_CONFIG_DIR`` is what the local spawner puts in ``JUPYTER_CONFIG_PATH`` (and
the bubble image copies): JupyterLab starts with no news feed, no update check, a read-only extension
manager, the front-end plugins that would call out switched off, no language-server scan and no
build check (bubbles never rebuild JupyterLab).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from traitlets.config.loader import PyFileConfigLoader

from infracalc.bubble import JUPYTER_CONFIG_DIR
from infracalc.stack.ports import free_port
from tests.support.processes import answers, start_server, stop

pytestmark = pytest.mark.integration

TOKEN = "jupyter-config-test"


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith(("JUPYTER", "INFRACALC_"))},
        "HOME": str(home),
        "JUPYTER_CONFIG_PATH": str(JUPYTER_CONFIG_DIR),
    }
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "jupyterlab.log"
    process = start_server(
        [sys.executable, "-m", "jupyter", "lab", f"--port={port}", "--ip=127.0.0.1", "--no-browser", "--allow-root",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={home}"],
        env=env, cwd=home, log_path=log_path, ready=answers(f"{url}/api"), what="JupyterLab",
    )  # fmt: skip
    try:
        yield url, log_path
    finally:
        stop(process)


def page_config(url: str) -> dict[str, object]:
    page = requests.get(f"{url}/lab", headers={"Authorization": f"token {TOKEN}"}, timeout=30)
    assert page.status_code == 200, page.status_code
    found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page.text, re.S)
    assert found is not None
    config: dict[str, object] = json.loads(found.group(1))
    return config


def test_jupyterlab_starts_without_news_updates_extension_installs_or_language_servers(
    jupyterlab: tuple[str, Path],
) -> None:
    url, log_path = jupyterlab
    config = page_config(url)
    assert config["news"] == {"disabled": True}
    assert (config["buildCheck"], config["buildAvailable"]) == (False, False)  # no scan of the app directory
    assert config["extensionManager"]["can_install"] is False  # type: ignore[index]
    assert {
        "@jupyterlab/apputils-extension:announcements",
        "@jupyterlab/extensionmanager-extension",
        "@jupyterlab/lsp-extension",
    } <= set(config["disabledExtensions"])  # type: ignore[arg-type]
    headers = {"Authorization": f"token {TOKEN}"}
    assert requests.get(f"{url}/lab/api/news", headers=headers, timeout=30).json() == {"news": []}
    assert requests.get(f"{url}/lab/api/update", headers=headers, timeout=30).json()["notification"] is None
    terminal = requests.post(f"{url}/api/terminals", headers=headers, timeout=30)
    assert terminal.status_code == 200, terminal.text
    log = log_path.read_text()
    assert "jupyterlab | extension was successfully loaded" in log
    assert "jupyter_lsp" not in log


def test_terminals_run_a_shell_that_keeps_the_bubbles_path() -> None:
    # A login shell (bash -l) would read /etc/profile, which resets PATH and loses `infracalc`.
    config = PyFileConfigLoader("jupyter_server_config.py", str(JUPYTER_CONFIG_DIR)).load_config()
    assert config.ServerApp.terminado_settings == {"shell_command": ["/bin/bash"]}
