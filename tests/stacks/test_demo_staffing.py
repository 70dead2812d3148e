"""Every profile's demo staffs what its rules escalate to (``profiles/demo/<profile>.toml``):
the complaint ladder's shift leads and department managers and the teams' leads are the demo's
own people, so no ticket escalates to no one and ``crm check``'s staffing warnings are quiet
for the configuration the demo runs with."""

from __future__ import annotations

import pytest

from crmcore.app import open_crm
from crmcore.demo import demo_config
from tests.stacks.conftest import crm_run


@pytest.mark.parametrize("profile", ["retail", "hospital", "telecom"])
def test_the_demo_names_someone_at_every_step_of_the_ladder(tmp_path, profile):
    folder = tmp_path / "demo"
    result = crm_run(
        tmp_path, "demo", "--profile", profile, "--customers", "40", "--days", "6",
        "--dir", str(folder), "--seed", "7",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "no one to go to" not in result.stderr
    with open_crm(demo_config(folder / "crm.toml", profile)) as crm:
        warnings = crm.plugins.crm_config_warnings(crm=crm)
        staffing = [w for w in warnings if "escalation ladder" in w or "rota" in w]
        assert staffing == []
        settings = crm.settings("complaints")
        assert [s.lead for s in settings.shifts] == ["lead", "dana"]
        assert all(d.manager == "manager" for d in settings.departments.values())
