"""Kernels load the code-recording extension: a real IPython kernel with the local spawner's configuration.

The bubble image carries the same lines in its environment's IPython directory; that file is read
here with traitlets' own loader.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from jupyter_client.manager import KernelManager
from traitlets.config.loader import PyFileConfigLoader

from infracalc.bubble.ipython import KERNEL_CONFIG, write_kernel_config

pytestmark = pytest.mark.integration

IMAGE_CONFIG = Path(__file__).resolve().parents[3] / "images" / "bubble" / "ipython_kernel_config.py"


def test_a_kernel_started_with_the_spawners_ipython_dir_loads_the_extension(tmp_path: Path) -> None:
    ipython_dir = tmp_path / ".ipython"
    written = write_kernel_config(ipython_dir)
    assert written == ipython_dir / "profile_default" / "ipython_kernel_config.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRACALC_")}
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env={**env, "IPYTHONDIR": str(ipython_dir)})
    outputs: list[str] = []
    try:
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=120)
        reply = client.execute_interactive(
            "print(sorted(get_ipython().extension_manager.loaded))",
            timeout=60,
            output_hook=lambda message: outputs.append(message["content"].get("text", "")),
        )
        client.stop_channels()
    finally:
        manager.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok"
    assert "infracalc.bubble.ipython" in "".join(outputs)


def test_the_bubble_images_kernel_config_loads_the_extension_too() -> None:
    config = PyFileConfigLoader(IMAGE_CONFIG.name, str(IMAGE_CONFIG.parent)).load_config()
    extensions = config.InteractiveShellApp.extensions
    assert extensions.get_value([]) == ["infracalc.bubble.ipython"]
    code = [line for line in KERNEL_CONFIG.splitlines() if line and not line.startswith("#")]
    image = IMAGE_CONFIG.read_text()
    assert all(line.split("#")[0].strip() in image for line in code)
