"""The task kind the plugin registers is the one its recovery module creates."""

from crmcore_followup import plugin, recovery


def test_registered_task_kind_matches_the_recovery_module() -> None:
    assert plugin.crm_kinds().tasks == (recovery.KIND,)
