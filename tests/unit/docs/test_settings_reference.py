"""The settings reference: every INFRACALC_* variable the package mentions is documented where it is read."""

from __future__ import annotations

from pathlib import Path

from docs.hooks import settings_reference
from infracalc.config import StackSettings
from infracalc.proxy.settings import ProxySettings


def test_every_variable_the_package_mentions_has_a_description() -> None:
    missing = settings_reference.undocumented()
    assert not missing, (
        "document each variable where it is read, with a '#: ``NAME``: description' comment: "
        + "; ".join(f"{name} (in {', '.join(places)})" for name, places in sorted(missing.items()))
    )


def test_the_scan_finds_names_in_code_data_and_notebooks() -> None:
    found = settings_reference.read_variables()
    assert "infracalc/stack/servers.py" in found["INFRACALC_HUB_MODE"]
    assert "infracalc/identity/infracalc-realm.json" in found["INFRACALC_SMTP_AUTH"]
    assert any(place.endswith(".ipynb") for place in found["INFRACALC_PROJECT"])
    assert not [name for name in found if name.endswith("_")], "prefixes are not variables"


def write_package(root: Path, text: str) -> None:
    (root / "infracalc").mkdir()
    (root / "hub_config").mkdir()
    (root / "infracalc" / "settings.py").write_text(text)


def test_a_name_without_a_description_is_reported(tmp_path: Path) -> None:
    write_package(
        tmp_path,
        "import os\n"
        "#: ``INFRACALC_DOCUMENTED`` (required): what it sets.\n"
        "A = os.environ['INFRACALC_DOCUMENTED']\n"
        "#: ``INFRACALC_BARE``.\n"
        "B = os.environ.get('INFRACALC_BARE', '7')\n"
        "C = os.environ.get('INFRACALC_UNMENTIONED', '')\n",
    )
    assert sorted(settings_reference.undocumented(tmp_path)) == ["INFRACALC_BARE", "INFRACALC_UNMENTIONED"]


def test_several_names_in_a_row_each_get_their_own_line_and_default(tmp_path: Path) -> None:
    write_package(
        tmp_path,
        "import os\n"
        "#: ``INFRACALC_A``, ``INFRACALC_B`` (local): two ports,\n"
        "#: on two lines.\n"
        "#: ``INFRACALC_C``: a third, with a computed default.\n"
        "a = int(os.environ.get('INFRACALC_A', '8080'))\n"
        "b = _port(os.environ, 'INFRACALC_B', 1024 * 8)\n"
        "c = _port(os.environ, 'INFRACALC_C', DEFAULT)\n",
    )
    found = {setting.name: setting for setting in settings_reference.catalogue(root=tmp_path).settings}
    assert found["INFRACALC_A"].description == "(local) two ports, on two lines."
    assert (found["INFRACALC_A"].default, found["INFRACALC_B"].default, found["INFRACALC_C"].default) == (
        "8080",
        "8192",
        "",
    )
    assert found["INFRACALC_C"].description == "a third, with a computed default."


def test_the_table_shows_the_defaults_the_code_applies() -> None:
    sections = {
        title: {setting.name: setting for setting in settings}
        for title, settings in settings_reference.catalogue().sections()
    }
    stack = sections[settings_reference.section_of("infracalc/config.py")]
    for variable, port in StackSettings.from_env({}).ports().items():
        assert stack[variable].default == str(port), variable
    proxy = sections[settings_reference.section_of("infracalc/proxy/settings.py")]
    defaults = ProxySettings.from_env({"INFRACALC_EGRESS_PROXY_SECRET": "iep_" + "0" * 64})
    assert proxy["INFRACALC_EGRESS_MAX_CONNECTIONS"].default == str(defaults.max_connections)
    assert proxy["INFRACALC_EGRESS_PROXY_SECRET"].default == "required"


def test_the_compose_table_lists_every_variable_of_env_example() -> None:
    table = settings_reference.render_compose()
    names = [
        line.split("=", 1)[0]
        for line in (settings_reference.ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert names
    assert all(f"| `{name}` |" in table for name in names)
    assert "| `JUPYTERHUB_CRYPT_KEY` | `change-me-jupyterhub-crypt-key` | Encrypts users' tokens" in table
