"""A person's browser on the hub and in a bubble's JupyterLab: Playwright driving Debian's Chromium.

Used by the browser tests (``tests/integration/hub/test_jupyterlab.py``) and by ``bench/hub_spawn.py``:
sign in through Keycloak's forms (password, then the one-time code), start a bubble from the hub's
spawn page, wait until JupyterLab has drawn its launcher, run a notebook cell and read its output,
type a command into a terminal. Selectors are JupyterLab 4's (the version the ``bubble`` extra pins).
Chromium comes from Debian (``apt-get install chromium``), not from Playwright's download.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Locator, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

CHROMIUM = "/usr/bin/chromium"
#: JupyterLab is ready for a person once its launcher is drawn (the application shell, extensions loaded).
LAUNCHER = ".jp-Launcher"
#: JupyterLab's menu bar, drawn once its extensions are loaded.
MAIN_MENU = "#jp-MainMenu"
#: JupyterLab 4's launcher cards carry their section (the kernels under "Notebook").
NOTEBOOK_CARD = ".jp-LauncherCard[data-category='Notebook']"
#: How JupyterLab marks a cell's error output (an exception's traceback).
ERROR_MIME_TYPE = "application/vnd.jupyter.stderr"


def chromium_missing() -> str | None:
    """Why Chromium cannot be driven here (``None``: it can)."""
    if shutil.which(CHROMIUM) is None:
        return f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium for the duration of the block."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Page, hub_url: str, username: str, password: str, code: str, timeout: float = 60.0) -> None:
    """Sign in to the hub through Keycloak's forms: password, then the one-time code; back on the hub."""
    page.goto(f"{hub_url}/hub/oauth_login", timeout=timeout * 1000)
    page.wait_for_selector("#kc-form-login", timeout=timeout * 1000)
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#kc-login")
    page.wait_for_selector("#kc-otp-login-form", timeout=timeout * 1000)
    page.fill("#otp", code)
    page.click("#kc-login")
    page.wait_for_url(f"{hub_url}/hub/**", timeout=timeout * 1000)


def start_bubble(page: Page, hub_url: str, username: str, project: str, timeout: float = 120.0) -> None:
    """Open the project's spawn page, press Start, and wait until JupyterLab has drawn its launcher."""
    page.goto(f"{hub_url}/hub/spawn/{username}/{project}", timeout=timeout * 1000)
    page.click("#spawn_form button[type='submit']")
    page.wait_for_url(re.compile(rf"/user/{re.escape(username)}/{re.escape(project)}/lab"), timeout=timeout * 1000)
    page.wait_for_selector(LAUNCHER, timeout=timeout * 1000)


def new_notebook(page: Page, timeout: float = 60.0) -> Locator:
    """Open a new Python notebook from a launcher (a new one, the "+" of the tab bar, if none shows); its panel."""
    card = page.locator(f"{NOTEBOOK_CARD}:visible").first
    if not card.count():
        page.locator("#jp-main-dock-panel .lm-TabBar-addButton:visible").first.click()
    card.click()
    panel = page.locator(".jp-NotebookPanel:visible").last
    _wait_kernel_idle(page, panel, timeout)
    return panel


def run_cell(page: Page, panel: Locator, code: str, expect: str, timeout: float = 60.0) -> str:
    """Type ``code`` into the notebook's last cell, run it (Shift+Enter); the cell's output, once it shows ``expect``.

    The text is inserted as one paste (no auto-indentation or auto-closed brackets from the editor). A run
    that JupyterLab did not schedule (the prompt still empty, as happens while a new kernel settles) is
    asked for again, as a person would press Shift+Enter again.
    """
    cells = panel.locator(".jp-CodeCell")
    cells.first.wait_for(timeout=timeout * 1000)
    cell = cells.nth(cells.count() - 1)  # by index: running the cell adds a new last one
    editor = cell.locator(".cm-content")
    editor.click()
    page.keyboard.insert_text(code)
    editor.filter(has_text=code.strip().splitlines()[0]).wait_for(timeout=timeout * 1000)
    prompt = cell.locator(".jp-InputPrompt")
    for _ in range(3):
        page.keyboard.press("Shift+Enter")
        try:
            prompt.filter(has_text=re.compile(r"\[(\*|\d+)\]")).wait_for(timeout=10_000)
            break
        except PlaywrightTimeout:
            editor.click()
    output = cell.locator(".jp-OutputArea-output")
    output.filter(has_text=expect).first.wait_for(timeout=timeout * 1000)
    return "\n".join(output.all_inner_texts())


def _wait_kernel_idle(page: Page, panel: Locator, timeout: float) -> None:
    panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=timeout * 1000)
    page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$")).first.wait_for(timeout=timeout * 1000)


def open_notebook(page: Page, server_url: str, name: str, timeout: float = 60.0) -> Locator:
    """Open the notebook ``name`` of the bubble's folder; its panel, once its kernel is idle."""
    page.goto(f"{server_url}/lab/tree/{name}", timeout=timeout * 1000)
    panel = page.locator(".jp-NotebookPanel:visible").last
    _wait_kernel_idle(page, panel, timeout)
    return panel


def run_all_cells(page: Page, panel: Locator, timeout: float = 120.0) -> list[str]:
    """Run every cell of the notebook (Run > Run All Cells); each code cell's output text once the last cell ran.

    Raises:
        AssertionError: a cell failed (JupyterLab then stops), with its output; or the cells did not finish in time.
    """
    page.click(f"{MAIN_MENU} >> text=Run")
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    cells = panel.locator(".jp-CodeCell")
    cells.first.wait_for(timeout=timeout * 1000)
    last_prompt = cells.nth(cells.count() - 1).locator(".jp-InputPrompt")
    errors = panel.locator(f".jp-OutputArea-output[data-mime-type='{ERROR_MIME_TYPE}']")
    deadline = time.monotonic() + timeout
    while not re.search(r"\[\d+\]", last_prompt.inner_text()):
        if errors.count():
            raise AssertionError(f"a cell failed: {errors.first.inner_text()[:2000]}")
        assert time.monotonic() < deadline, f"the notebook's cells did not all run within {timeout} s"
        time.sleep(0.2)
    return [cells.nth(index).locator(".jp-OutputArea").inner_text() for index in range(cells.count())]


def open_from_file_menu(page: Page, item: str) -> None:
    """File > New > ``item`` (Notebook, Terminal...), as a person opens one when the launcher is not shown."""
    page.click(f"{MAIN_MENU} >> text=File")
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^New$")).hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(item)}$")).click()


def type_in_terminal(page: Page, command: str, timeout: float = 60.0) -> Locator:
    """Open a terminal (File > New > Terminal), type ``command`` and Enter; the terminal's panel.

    The terminal draws its screen on a canvas, so a test reads the command's effect elsewhere (the
    service's API) and keeps a screenshot of the panel.
    """
    open_from_file_menu(page, "Terminal")
    terminal = page.locator(".jp-Terminal:visible").last
    terminal.locator(".xterm-helper-textarea").wait_for(state="attached", timeout=timeout * 1000)
    terminal.click()
    page.keyboard.insert_text(command)
    page.keyboard.press("Enter")
    return terminal


def hub_api_token(page: Page, hub_url: str, username: str) -> str:
    """A hub API token of the user signed in on ``page``, made with the page's session (as the token page does)."""
    page.goto(f"{hub_url}/hub/token")  # sets the _xsrf cookie
    answer = page.evaluate(
        """async ([url]) => {
            const xsrf = decodeURIComponent((document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || ["", ""])[1]);
            const made = await fetch(url, {
                method: "POST",
                headers: {"Content-Type": "application/json", "X-XSRFToken": xsrf},
                body: JSON.stringify({note: "bench", expires_in: 3600}),
            });
            return [made.status, await made.text()];
        }""",
        [f"{hub_url}/hub/api/users/{username}/tokens"],
    )
    status, text = answer
    assert status in (200, 201), (status, text)
    return str(json.loads(text)["token"])
