"""Every cell of both welcome notebooks runs, in a kernel given what a bubble is given.

The notebook is executed whole by nbclient in a real IPython kernel whose environment is a bubble's:
the service (``infracalc serve``, real) with a bubble token the hub's credential registered, and the
real egress proxy with that bubble's credentials. The project holds one released CSV import, which
the notebook reads into pandas; the proxy refuses the notebook's example host, with its reason; and
with ``SUBMIT = True`` its last cell's ``!infracalc export`` sends ``summary.csv`` out as an export.
(In a real bubble, in JupyterLab, the English notebook runs in tests/integration/hub/test_jupyterlab.py.)
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
import requests
from nbclient import NotebookClient

from infracalc.bubble.welcome import give_welcome_notebooks
from infracalc.hub.bubbles import BubbleRegistration, bubble_environment
from tests.fixtures.egress import EgressProxyProcess, start_egress_proxy
from tests.fixtures.live_service import LiveService
from tests.fixtures.service import People

pytestmark = pytest.mark.integration

HOUSEHOLDS = b"region,households\nNord,473\nSud,507\n"


def call(method: str, url: str, headers: dict[str, str], **kwargs: object) -> object:
    answer = requests.request(method, url, headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]
    assert answer.status_code < 300, (method, url, answer.status_code, answer.text)
    return answer.json() if answer.content else None


@pytest.fixture
def proxy(live_service: LiveService, tmp_path: Path) -> Iterator[EgressProxyProcess]:
    running = start_egress_proxy(
        opa_url=live_service.env["INFRACALC_OPA_URL"],
        service_url=live_service.url,
        secret=live_service.proxy_secret,
        workdir=tmp_path,
        host="127.0.0.1",
    )
    yield running
    running.stop()


def bubble_of_a_new_project(live_service: LiveService, people: People) -> BubbleRegistration:
    """A project (INFRACALC) with the researcher, one released CSV import, and a bubble of theirs."""
    api, staff = live_service.api, people.headers("staff")
    slug = f"welcome-{secrets.token_hex(3)}"
    call("POST", f"{api}/projects", staff, json={"id": slug, "title": "Welcome", "governance": "INFRACALC"})
    researcher = people.username("researcher")
    call("PUT", f"{api}/projects/{slug}/members/{researcher}", staff, json={"role": "member"})
    uploaded = call(
        "POST",
        f"{api}/projects/{slug}/imports",
        {**people.headers("researcher"), "Content-Type": "application/octet-stream"},
        params={"name": "households.csv"},
        data=HOUSEHOLDS,
    )
    assert isinstance(uploaded, dict)
    if uploaded["state"] != "released":
        body = {"sensitivity": "standard", "comment": "test data"}
        call("POST", f"{api}/imports/{uploaded['id']}/approve", staff, json=body)
    # The bubble is a process of the host here: the proxy sees it come from 127.0.0.1.
    registration = {"project": slug, "username": researcher, "address": "127.0.0.1"}
    made = call("POST", f"{api}/bubbles", people.hub_headers(), json=registration)
    assert isinstance(made, dict)
    return BubbleRegistration(bubble_id=made["id"], project=slug, username=researcher, token=made["token"])


@pytest.mark.parametrize("name", ["Welcome.ipynb", "Bienvenue.ipynb"])
def test_every_cell_of_the_welcome_notebook_runs_in_a_bubbles_environment(
    name: str,
    live_service: LiveService,
    people: People,
    proxy: EgressProxyProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bubble = bubble_of_a_new_project(live_service, people)
    environment = bubble_environment(
        bubble, api_url=live_service.api, proxy_url=f"http://127.0.0.1:{proxy.port}", no_proxy=[]
    )
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # `infracalc`
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    folder = tmp_path / "work"
    give_welcome_notebooks(folder)
    notebook = nbformat.read(folder / name, as_version=4)
    (submit,) = [cell for cell in notebook.cells if "SUBMIT = False" in cell.source]
    submit.source = submit.source.replace("SUBMIT = False", "SUBMIT = True")

    client = NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute()

    def text(cell: nbformat.NotebookNode) -> str:
        return "".join(
            output.get("text", "") + str(output.get("data", {}).get("text/plain", "")) for output in cell.outputs
        )

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert f"project: {bubble.project}" in text(code[0])
    assert bubble.token not in "".join(text(cell) for cell in code)  # the proxy's credentials are never shown
    assert "api.example.org:443 refused (403): " in text(code[1])
    assert "1 imports" in text(code[2])
    assert "Nord" in text(code[3])
    assert "473" in text(code[3])  # the released import, read into pandas
    assert "mean_income" in text(code[4])
    assert (folder / "summary.csv").exists()
    staff = people.headers("staff")
    exports = call("GET", f"{live_service.api}/projects/{bubble.project}/exports", staff)
    assert isinstance(exports, list)
    (export,) = exports
    assert (export["name"], export["session"]) == ("summary.csv", bubble.bubble_id)
    assert f"export {export['id']} (version 1): {export['state']}" in text(code[-1])
