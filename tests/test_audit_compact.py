"""The trail's compact entries: ``prev`` not stored (the hash still covers it), an insert by the
entry's actor as ``[collection, id, digest]``; both read, verify and archive as before."""

from __future__ import annotations

import json
from hashlib import sha256
from pathlib import Path
from typing import Any

from bench.stack import START
from crmcore import ManualClock, open_crm
from crmcore.app import CRM
from crmcore.audit import (
    AUDIT,
    GENESIS,
    acting_as,
    chained_hash,
    digest_fits,
    entry_hash,
    expand,
    record_digest,
    stored_fields,
    value_digest,
)
from crmcore.jsontext import canonical
from crmcore.testing.audit import entries, raw_trail


def embedded(folder: Path) -> CRM:
    return open_crm(
        {"storage": {"backend": "tinydb", "location": str(folder)}},
        clock=ManualClock(START),
        plugins=["storage_tinydb"],
    )


def test_entries_are_stored_without_prev_and_chain_through_their_hash(tmp_path: Path):
    folder = tmp_path / "data"
    with embedded(folder) as crm:
        c = crm.customers.add(actor="ann", name="Li", ext={"t": {"prev": GENESIS}})
        # a field named "prev" inside an operation stays as it is
        crm.customers.update(c.id, actor="ann", ext={"t": {"prev": "x"}})
        crm.customers.add(actor="bo", name="Wu")
    with embedded(folder) as crm:  # as read back from the file
        trail = entries(crm)
        assert [e["seq"] for e in trail] == [1, 2, 3]
        assert all("prev" not in e for e in trail)
        prev = GENESIS
        for entry in trail:
            assert chained_hash(entry, prev) == entry["hash"] != entry_hash(entry)
            prev = entry["hash"]
        # an update by the entry's actor: [collection, id, diff]
        assert trail[1]["ops"][0][:2] == ["customers", c.id]
        assert expand(trail[1])[0]["diff"]["ext"] == {"t": {"prev": [GENESIS, "x"]}}
        assert crm.audit is not None and crm.audit.verify().ok
        text = (folder / f"{AUDIT}.json").read_text("utf-8")
        assert '"prev"' not in text.replace('{"prev":', "")  # only the record's own field
        # an entry moved to another place in the chain no longer fits there
        raw = raw_trail(crm)
        second = trail[1]
        raw.update(
            second["id"],
            {"hash": trail[2]["hash"], "ops": trail[2]["ops"], "actor": "bo"},
            expected_version=second["version"],
        )
        report = crm.audit.verify()
        assert not report.ok and report.problem == "entry #2 was altered"


def test_an_insert_by_the_entrys_actor_is_a_short_triple_others_an_object(make_crm):
    crm = make_crm()
    c = crm.customers.add(actor="ann", name="Li", region="North")
    with crm.transaction("ann"):
        e = crm.customers.add(actor="ann", name="Bo", region="East")
        with acting_as("loyalty"):
            d = crm.customers.add(actor="loyalty", name="Wu", region="South")
    alone, pair = entries(crm)
    (short,) = alone["ops"]
    stored: dict[str, Any] = crm.store.collection("customers").get(c.id)
    masked = crm.audit.masked_fields("customers")
    assert short == ["customers", c.id, record_digest(stored, masked)]
    (flat,) = expand(alone)
    assert (flat["op"], flat["collection"], flat["record_id"], flat["actor"]) == (
        "insert",
        "customers",
        c.id,
        "ann",
    )
    assert flat["customer_id"] == c.id and flat["diff"] == {"sha": short[2]}
    # by another actor, or naming its customer among several: an object, as before
    mine, theirs = pair["ops"]
    assert mine["id"] == e.id and mine["customer"] == e.id and "actor" not in mine
    assert theirs["id"] == d.id and theirs["actor"] == "loyalty"
    assert [(o["record_id"], o["actor"]) for o in expand(pair)] == [
        (e.id, "ann"),
        (d.id, "loyalty"),
    ]
    assert crm.audit.verify().ok
    json.dumps(alone)  # plain JSON


def test_digests_are_22_characters_and_older_hex_ones_still_fit(make_crm):
    crm = make_crm()
    c = crm.customers.add(actor="ann", name="Li", region="North")
    ((_collection, _id, sha),) = entries(crm)[0]["ops"]
    assert len(sha) == 22 and sha.replace("-", "").replace("_", "").isalnum()
    stored = crm.store.collection("customers").get(c.id)
    masked = crm.audit.masked_fields("customers")
    assert digest_fits(stored, sha, masked)
    assert not digest_fits({**stored, "region": "East"}, sha, masked)
    # an entry written before: the same 128 bits as 32 hex digits
    old = sha256(canonical(stored_fields(stored, masked))).hexdigest()[:32]
    assert digest_fits(stored, old, masked)
    assert not digest_fits({**stored, "region": "East"}, old, masked)
    assert len(value_digest({"n": 1})) == 22
