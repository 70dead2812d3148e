"""The loyalty plugin's zh_CN catalog holds every string it marks, each translated."""

from pathlib import Path

import crmcore_loyalty

from crmcore.i18n_catalogs import problems


def test_catalog_is_complete():
    src = Path(crmcore_loyalty.__file__).parent
    assert problems(src, src / "locale" / "zh_CN" / "LC_MESSAGES" / "crmcore_loyalty.po") == []
