"""The task kinds the plugin registers are the ones its modules create."""

from crmcore_loyalty import plugin
from crmcore_loyalty.asks import ASK_KIND
from crmcore_loyalty.sweeps import REMINDER_KIND


def test_registered_task_kinds_match_the_modules_that_create_them() -> None:
    assert plugin.crm_kinds().tasks == (ASK_KIND, REMINDER_KIND)
