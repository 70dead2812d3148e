"""The plugin manager: entry-point loading, allowlists, failures reported by name."""

import sys
import textwrap
from importlib import metadata

import pytest

from crmcore import hookimpl
from crmcore.errors import ConfigError, PluginError
from crmcore.plugins import allowed_from_env, make_plugin_manager
from crmcore.storage import CollectionSpec, IndexSpec, StorageBackend
from crmcore.storage.memory import MemoryStore

GOOD = """
from crmcore import hookimpl, Kinds
@hookimpl
def crm_kinds():
    return Kinds(interactions=["tasting"])
"""
BROKEN_IMPORT = "raise RuntimeError('missing licence key')\n"
MISSPELT = """
from crmcore import hookimpl
@hookimpl
def crm_interaction_loged(crm, interaction, customer, actor):
    return None
"""
RAISES = """
from crmcore import hookimpl
@hookimpl
def crm_customer_created(crm, customer, actor):
    return helper()
def helper():
    raise KeyError("boom")
"""


@pytest.fixture
def fake_entry_points(tmp_path, monkeypatch):
    """Install modules as entry points in the 'crmcore' group, for this test only."""
    points = []

    def install(name: str, source: str) -> None:
        module = f"fakeplugin_{name}"
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        points.append(metadata.EntryPoint(name=name, value=module, group="crmcore"))

    monkeypatch.syspath_prepend(str(tmp_path))
    real = metadata.entry_points

    def entry_points(**kwargs):
        if kwargs.get("group") == "crmcore":
            return list(points)
        return real(**kwargs)

    monkeypatch.setattr("crmcore.plugins.metadata.entry_points", entry_points)
    yield install
    for ep in points:
        sys.modules.pop(ep.value, None)


def test_entry_point_plugins_load_and_report_status(fake_entry_points):
    fake_entry_points("good", GOOD)
    fake_entry_points("broken", BROKEN_IMPORT)
    fake_entry_points("misspelt", MISSPELT)
    pm = make_plugin_manager()
    status = {i.name: i for i in pm.infos()}
    assert status["good"].status == "ok" and status["good"].hooks == ("crm_kinds",)
    assert status["broken"].status == "failed"
    assert "missing licence key" in status["broken"].error
    assert status["misspelt"].status == "failed"
    assert "crm_interaction_loged" in status["misspelt"].error
    assert pm.names() == ["core", "good"]


def test_allowlist_loads_only_named_plugins(fake_entry_points):
    fake_entry_points("good", GOOD)
    fake_entry_points("broken", BROKEN_IMPORT)
    pm = make_plugin_manager(allowed={"good"})
    assert {i.name: i.status for i in pm.infos()} == {
        "core": "ok",
        "good": "ok",
        "broken": "disabled",
    }
    none = make_plugin_manager(allowed=set())
    assert none.names() == ["core"]


def test_allowlist_from_environment():
    assert allowed_from_env({}) is None
    assert allowed_from_env({"CRMCORE_PLUGINS": ""}) == set()
    assert allowed_from_env({"CRMCORE_PLUGINS": " grading, followup ,"}) == {"grading", "followup"}


def test_a_plugin_raising_in_a_hook_is_named(fake_entry_points, make_crm):
    fake_entry_points("raiser", RAISES)
    crm = make_crm(["raiser"])
    with pytest.raises(
        PluginError,
        match=r"plugin 'raiser': crm_customer_created failed: "
        r"KeyError",
    ):
        crm.customers.add(actor="ann", name="Li Lei")
    # the store is transactional: the failed add wrote nothing
    assert crm.customers.count() == 0


def test_enabling_a_plugin_that_is_not_installed_is_a_config_error(make_crm):
    with pytest.raises(ConfigError, match="not installed: nosuchplugin"):
        make_crm(["nosuchplugin"])


class TwoMemories:
    @hookimpl
    def crm_storage_backends(self):
        return [StorageBackend("memory", lambda options: MemoryStore())]


def test_backend_name_conflicts_name_both_plugins(make_crm):
    with pytest.raises(
        PluginError,
        match=r"storage backend 'memory' is provided by both plugin "
        r"'core' and plugin 'dup'",
    ):
        make_crm([("dup", TwoMemories())])


class BadCollection:
    @hookimpl
    def crm_collections(self):
        return [CollectionSpec("tickets")]


def test_plugin_collections_must_carry_the_plugin_prefix(make_crm):
    with pytest.raises(PluginError, match=r"must be named 'bad\.<name>'"):
        make_crm([("bad", BadCollection())])


class CustomerIndex:
    @hookimpl
    def crm_collections(self):
        return [CollectionSpec("customers", (IndexSpec([("ext.nps.score", 1), ("status", 1)]),))]


class CustomerTakeover:
    @hookimpl
    def crm_collections(self):
        return [CollectionSpec("customers", (IndexSpec([("x", 1)]),), customer_key="id")]


def test_a_plugin_may_add_indexes_to_the_core_collections_and_nothing_else(make_crm):
    crm = make_crm([("nps", CustomerIndex())])
    assert "i_ext-nps-score_status" in {i.name for i in crm.store.collection("customers").indexes()}
    assert "i_phone" in {i.name for i in crm.store.collection("customers").indexes()}
    crm.customers.add(actor="admin", name="Ann", ext={"nps": {"score": 9}})
    assert crm.customers.count({"ext.nps.score": 9}) == 1
    with pytest.raises(PluginError, match=r"'customers' is the core's: a plugin may only add"):
        make_crm([("takeover", CustomerTakeover())])


def test_unknown_backend_lists_the_available_ones(make_crm):
    with pytest.raises(ConfigError, match=r"no backend named 'nosql' .*available: memory"):
        make_crm(storage={"backend": "nosql"})


def test_a_hook_nobody_implements_answers_as_pluggy_would_without_calling_it():
    class Listener:
        @hookimpl
        def crm_customer_created(self, crm, actor, customer):
            return "heard"

    bare = make_plugin_manager(load_entry_points=False)
    assert not bare.implemented("crm_customer_created")
    assert bare.call("crm_customer_created", crm=None, actor="a", customer=None) == []
    # a firstresult hook answers [None] when nobody decides, as pluggy does
    assert bare.call("crm_authorize", crm=None, actor=None, action="x", resource=None) == [None]
    with pytest.raises(PluginError, match="no hook named 'crm_nope'"):
        bare.implemented("crm_nope")
    listening = make_plugin_manager(load_entry_points=False, extra=[("listener", Listener())])
    assert listening.implemented("crm_customer_created")
    assert listening.call("crm_customer_created", crm=None, actor="a", customer=None) == ["heard"]

    late = make_plugin_manager(load_entry_points=False)
    assert not late.implemented("crm_customer_created")
    late.register(Listener(), "late")  # a registration drops the remembered answers
    assert late.implemented("crm_customer_created")

    class Stray(Listener):
        @hookimpl
        def crm_not_declared_anywhere(self):
            return None

    stray = make_plugin_manager(load_entry_points=False)
    stray.register(Stray(), "stray")
    assert stray.implemented("crm_customer_created")
    stray.check_pending()  # unregisters it: it implements a hook nobody declared
    assert stray.status("stray") == "failed" and not stray.implemented("crm_customer_created")


def test_plugin_names_and_versions_come_from_the_metadata_head(tmp_path) -> None:
    from importlib import metadata

    from crmcore.plugins import name_and_version

    for ep in metadata.entry_points(group="crmcore"):
        assert ep.dist is not None
        assert name_and_version(ep.dist) == (ep.dist.name, ep.dist.version)
    info = tmp_path / "odd-1.0.dist-info"
    info.mkdir()
    # a header the head reader does not find (folded first line): importlib's parser decides
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: odd\n\nVersion: 9\n", "utf-8")
    odd = metadata.PathDistribution(info)
    assert name_and_version(odd) == (odd.name, odd.version)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: odd\nVersion: 1.0\n\nName: not-this\n", "utf-8"
    )
    assert name_and_version(odd) == ("odd", "1.0")
