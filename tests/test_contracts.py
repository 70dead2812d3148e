"""The contracts between plugins (``crmcore.contracts``): declared on every plugin manager, so
a drifted implementation is refused at load; documented in docs/contracts.md."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from crmcore import hookimpl
from crmcore.contracts import CONTRACT_SPECS, callback_key
from crmcore.plugins import make_plugin_manager

DOCS = Path(__file__).resolve().parents[1] / "docs" / "contracts.md"


def contract_hooks() -> list[tuple[type, str]]:
    return sorted(
        ((spec, n) for spec in CONTRACT_SPECS for n in dir(spec) if n.startswith("crm_")),
        key=lambda item: item[1],
    )


def signature_text(spec: type, name: str) -> str:
    sig = inspect.signature(getattr(spec, name))
    params = [p for p in sig.parameters if p != "self"]
    return f"{name}({', '.join(params)}) -> {sig.return_annotation}"


def test_every_contract_is_declared_without_its_provider():
    pm = make_plugin_manager(load_entry_points=False)
    for spec, name in contract_hooks():
        caller = getattr(pm.hook, name)
        assert caller.spec is not None and caller.spec.namespace is spec, name


class Misspelt:
    @hookimpl
    def crm_complaint_closd(self, crm, ticket, actor):  # the "e" is missing
        return None


class Drifted:
    @hookimpl
    def crm_grade_changed(self, crm, customer, scheme, old, new, why, actor):  # "reason"
        return None


class Correct:
    @hookimpl
    def crm_complaint_closed(self, crm, ticket, actor):
        return None


def test_a_misspelt_contract_implementation_fails_at_load_naming_the_plugin():
    pm = make_plugin_manager(
        load_entry_points=False, extra=[("typo", Misspelt()), ("fine", Correct())]
    )
    assert pm.status("typo") == "failed"
    [info] = [i for i in pm.infos() if i.name == "typo"]
    assert "crm_complaint_closd" in (info.error or "")
    assert pm.status("fine") == "ok"
    assert pm.implemented("crm_complaint_closed")


def test_an_implementation_with_a_drifted_argument_fails_at_load():
    pm = make_plugin_manager(load_entry_points=False, extra=[("drift", Drifted())])
    [info] = [i for i in pm.infos() if i.name == "drift"]
    assert info.status == "failed" and "why" in (info.error or "")
    assert not pm.implemented("crm_grade_changed")


def test_a_plugin_that_redeclares_a_contract_privately_fails_at_load():
    from crmcore.contracts import FollowupContract

    class Private:
        @hookimpl
        def crm_addhooks(self, pluginmanager):
            pluginmanager.add_hookspecs(FollowupContract)

    pm = make_plugin_manager(load_entry_points=False, extra=[("private", Private())])
    assert pm.status("private") == "failed"


def test_no_bundled_plugin_declares_or_optionally_implements_a_contract():
    root = Path(__file__).resolve().parents[1] / "plugins"
    names = {name for _spec, name in contract_hooks()}
    for path in root.glob("*/src/*/**/*.py"):
        text = path.read_text(encoding="utf-8")
        assert "optionalhook" not in text, path
        assert "add_hookspecs" not in text, path
        assert not re.search(r"ticket: Any|getattr\(ticket, *[\"']", text), path
        for name in names:
            assert f"def {name}(self" not in text, (path, name)


@pytest.mark.parametrize(
    ("spec", "name"), contract_hooks(), ids=lambda v: getattr(v, "__name__", v)
)
def test_every_contract_is_documented_with_its_exact_signature(spec, name):
    text = DOCS.read_text(encoding="utf-8")
    assert f"### `{signature_text(spec, name)}`" in text
    assert (getattr(spec, name).__doc__ or "").strip()


def test_the_callback_key_is_the_documented_one():
    assert callback_key("tkt_1") == "callback:tkt_1"
    assert "`callback:<ref>`" in DOCS.read_text(encoding="utf-8")
