"""The workspace's catalog is complete: every string of its templates and code is in the
zh_CN ``.po`` with a translation, and nothing stale is left there."""

from __future__ import annotations

from pathlib import Path

import crmcore_web

from crmcore.i18n_catalogs import problems

PACKAGE = Path(crmcore_web.__file__).parent


def test_the_workspace_catalog_is_complete_and_current():
    po = PACKAGE / "locale" / "zh_CN" / "LC_MESSAGES" / "crmcore_web.po"
    assert problems(PACKAGE, po) == []
