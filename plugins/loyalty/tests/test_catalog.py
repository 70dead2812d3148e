"""The loyalty plugin's zh_CN catalog holds every string it marks, each translated."""

from pathlib import Path

import crmcore_loyalty

from crmcore.i18n_catalogs import problems


def test_catalog_is_complete():
    src = Path(crmcore_loyalty.__file__).parent
    assert problems(src, src / "locale" / "zh_CN" / "LC_MESSAGES" / "crmcore_loyalty.po") == []


def test_the_catalog_is_given_through_the_translations_hook():
    from crmcore import i18n
    from crmcore.plugins import make_plugin_manager

    plugins = make_plugin_manager(allowed={"loyalty"})
    assert i18n.gettext("zh_CN", plugins)("Referrer") == "推荐人"
