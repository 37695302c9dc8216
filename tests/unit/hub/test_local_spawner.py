"""The local spawner's folders: one per user and project, never shared between two projects."""

from __future__ import annotations

from types import SimpleNamespace

from traitlets.config import Config

from infracalc.hub.spawner import LocalBubbleSpawner


def _spawner(username: str, project: str, template: str | None = None) -> LocalBubbleSpawner:
    config = Config()
    if template is not None:
        config.LocalBubbleSpawner.home_dir_template = template
    user = SimpleNamespace(name=username, url=f"/user/{username}/", id=1)
    # A named server's name comes from its row in the hub's database.
    server_row = SimpleNamespace(name=project, server=None)
    return LocalBubbleSpawner(user=user, orm_spawner=server_row, config=config)


def test_each_project_of_a_person_has_its_own_folder() -> None:
    casd, open_project = _spawner("alice", "health"), _spawner("alice", "weather")
    assert casd.home_dir.endswith("/alice/health")
    assert open_project.home_dir.endswith("/alice/weather")
    assert casd.ipython_dir != open_project.ipython_dir


def test_a_configured_template_is_filled_with_the_person_and_the_project() -> None:
    spawner = _spawner("bruno", "demo", "/srv/hub/bubbles/{username}/{project}")
    assert spawner.home_dir == "/srv/hub/bubbles/bruno/demo"
