"""``[service]`` as written in crm.toml: order types added or replaced, bad machines refused
naming the key; and who may move an order on under ``[security] enforce``."""

from __future__ import annotations

import pytest

from crmcore import ConfigError, PermissionDenied, ValidationError

ACTORS = {
    "enforce": True,
    "actors": {
        "ann": {"role": "agent", "department": "customer_service"},
        "bo": {"role": "agent", "department": "billing"},
        "lead": {"role": "shift_lead", "department": "billing"},
        "boss": {"role": "manager", "department": "billing"},
        "audrey": {"role": "auditor"},
        "root": {"role": "admin"},
    },
}


def test_a_configured_type_is_added_and_a_shipped_one_disabled(setup, customer_id):
    crm, api = setup(
        {
            "disabled_types": ["work_order"],
            "types": {
                "number_porting": {
                    "title": "Number porting",
                    "category": "change",
                    "steps": [
                        {
                            "name": "request",
                            "next": ["done"],
                            "requires": ["number"],
                            "sla_hours": 2,
                        },
                        {"name": "done"},
                    ],
                }
            },
        }
    )
    assert "work_order" not in api.types and "number_porting" in api.types
    order = api.open(
        actor="ann", type="number_porting", customer_id=customer_id(crm), fields={"number": "138"}
    )
    assert api.advance(order, actor="ann", to="done").outcome == "done"
    with pytest.raises(ValidationError, match="unknown order type 'work_order'"):
        api.open(
            actor="ann", type="work_order", customer_id=customer_id(crm, phone="+86 139 0013 8000")
        )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"types": {"x": {"title": "X", "steps": [{"name": "a", "next": ["b"]}]}}},
            "leads to unknown step 'b'",
        ),
        ({"types": {"x": {"title": "X", "steps": [{"name": "a"}]}}}, "leads nowhere"),
        (
            {"types": {"x": {"title": "X", "steps": [{"name": "a", "next": ["a"]}]}}},
            "no step ends the order",
        ),
        (
            {
                "types": {
                    "x": {
                        "title": "X",
                        "steps": [{"name": "a", "next": ["b"], "wait_days": 3}, {"name": "b"}],
                    }
                }
            },
            "wait_days and then go together",
        ),
        (
            {
                "types": {
                    "x": {
                        "title": "X",
                        "steps": [{"name": "a", "next": ["b"], "clock": "lunar"}, {"name": "b"}],
                    }
                }
            },
            "lunar",
        ),
        (
            {
                "types": {
                    "x": {
                        "title": "X",
                        "steps": [{"name": "a", "next": ["b"], "role": "boss"}, {"name": "b"}],
                    }
                }
            },
            "boss",
        ),
        ({"disabled_types": ["nope"]}, "unknown order type"),
        (
            {
                "escalation": [
                    {"after_hours": 5, "target": "shift_lead"},
                    {"after_hours": 1, "target": "owner"},
                ]
            },
            "increasing order",
        ),
        ({"escalation": [{"after_hours": 5, "target": "the_ceo"}]}, "unknown target"),
        ({"typo": 1}, "typo"),
    ],
)
def test_a_bad_section_is_refused_naming_what_to_fix(setup, section, message):
    with pytest.raises((ConfigError, ValidationError), match=message):
        setup(section)


def test_the_acting_department_and_role_decide_who_moves_an_order(setup, customer_id):
    crm, api = setup(other_settings={"security": ACTORS})
    cid = crm.customers.add(actor="root", name="Li", phone="+86 138 0013 8000").id
    order = api.open(
        actor="bo", type="billing_dispute", customer_id=cid, fields={"disputed_amount": "58"}
    )
    with pytest.raises(PermissionDenied, match="for department billing, not customer_service"):
        api.advance(order, actor="ann", to="investigate")
    order = api.advance(order, actor="bo", to="investigate")
    order = api.advance(order, actor="bo", to="decision", fields={"findings": "double"})
    with pytest.raises(PermissionDenied, match="takes a shift lead or above"):
        api.advance(order, actor="bo", to="lessons", fields={"decision": "rejected"})
    with pytest.raises(PermissionDenied, match="read-only"):
        api.advance(order, actor="audrey", to="lessons", fields={"decision": "rejected"})
    with pytest.raises(PermissionDenied):
        api.advance(order, actor="stranger", to="lessons", fields={"decision": "rejected"})
    assert api.get(order.id).state == "decision"
    order = api.advance(order, actor="lead", to="lessons", fields={"decision": "rejected"})
    with pytest.raises(PermissionDenied, match="takes a manager"):
        api.advance(order, actor="lead", to="closed", fields={"lessons": "x"})
    order = api.advance(order, actor="boss", to="closed", fields={"lessons": "x"})
    assert order.outcome == "done"


def test_an_agent_lists_only_the_orders_in_their_scope(setup):
    crm, api = setup(other_settings={"security": ACTORS})
    one = crm.customers.add(actor="root", name="Li", phone="+86 138 0013 8000").id
    api.open(actor="ann", type="fault", customer_id=one, fields={"symptom": "x"})
    theirs = api.open(actor="bo", type="billing_query", customer_id=one)
    assert [o.id for o in api.find(actor="bo")] == [theirs.id]
    assert len(api.find(actor="root")) == 2
    with pytest.raises(PermissionDenied):
        api.get(theirs.id, actor="ann")
