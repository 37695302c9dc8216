"""Daily upload budgets: counted per project, user and rule; a new day starts at 00:00 UTC."""

from __future__ import annotations

from infracalc.proxy.budgets import DAY, UploadBudgets


def test_counts_are_per_project_user_and_rule_and_start_again_each_day() -> None:
    now = [100 * DAY + 10.0]
    budgets = UploadBudgets(clock=lambda: now[0])
    budgets.charge("p", "alice", "r1", 100)
    budgets.charge("p", "alice", "r1", 50)
    budgets.charge("p", "alice", "r2", 7)
    budgets.charge("p", "bob", "r1", 1)
    budgets.charge("q", "alice", "r1", 2)
    assert budgets.sent_today("p", "alice") == {"r1": 150, "r2": 7}
    assert budgets.sent_today("p", "bob") == {"r1": 1}
    assert budgets.sent_today("p", "carol") == {}
    copy = budgets.sent_today("p", "alice")
    copy["r1"] = 0
    assert budgets.sent_today("p", "alice")["r1"] == 150  # the policy's input is a copy
    now[0] = 101 * DAY
    assert budgets.sent_today("p", "alice") == {}
    assert len(budgets) == 0
