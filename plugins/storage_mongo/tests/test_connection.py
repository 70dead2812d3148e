"""Configuration, URIs, timeouts and what the backend claims about the server."""

from __future__ import annotations

import threading

import pytest
from crmcore_storage_mongo import connection
from crmcore_storage_mongo.options import MongoOptions, parse_options, redact, uri_database
from crmcore_storage_mongo.store import open_store

from crmcore.clock import ManualClock
from crmcore.errors import ConfigError, StorageError
from crmcore.storage import StorageOptions
from crmcore.testing import START

UNREACHABLE = "mongodb://127.0.0.1:1"  # loopback, a port nothing listens on


@pytest.mark.parametrize(
    ("options", "path"),
    [
        ({"server_selection_timeout_ms": 0}, "storage.options.server_selection_timeout_ms"),
        ({"server_selection_timeout_ms": "5s"}, "storage.options.server_selection_timeout_ms"),
        ({"connect_timeout_ms": 200_000}, "storage.options.connect_timeout_ms"),
        ({"write_concern": "0"}, "storage.options.write_concern"),
        ({"write_concern": 1}, "storage.options.write_concern"),
        ({"tenant": "Acme Corp"}, "storage.options.tenant"),
        ({"tenant": "a_b"}, "storage.options.tenant"),
        ({"database": "crm__x"}, "storage.options.database"),
        ({"database": "my.db"}, "storage.options.database"),
        ({"transactions": "always"}, "storage.options.transactions"),
        ({"schema_validation": "yes"}, "storage.options.schema_validation"),
        ({"max_pool_size": 0}, "storage.options.max_pool_size"),
        ({"retry_writes": "yes"}, "storage.options.retry_writes"),
        ({"client_factory": "x"}, "storage.options"),
    ],
)
def test_bad_options_name_their_full_key_path(options, path):
    with pytest.raises(ConfigError) as err:
        parse_options(options)
    assert path in str(err.value)


def test_defaults_are_safe():
    opts = parse_options({})
    kwargs = opts.client_kwargs("mongodb://db1:27017,db2:27017/?replicaSet=rs0")
    assert kwargs["w"] == "majority" and kwargs["journal"] is True
    assert kwargs["retryWrites"] is True
    assert kwargs["serverSelectionTimeoutMS"] == 5000
    assert kwargs["connectTimeoutMS"] == 5000
    assert kwargs["socketTimeoutMS"] == 60_000


def test_options_written_in_the_uri_win_over_the_table_and_defaults():
    opts = parse_options({"write_concern": "2", "server_selection_timeout_ms": 900})
    kwargs = opts.client_kwargs("mongodb://h/?w=1&serverSelectionTimeoutMS=100&RETRYWRITES=false")
    assert "w" not in kwargs and "serverSelectionTimeoutMS" not in kwargs
    assert "retryWrites" not in kwargs
    assert opts.client_kwargs("mongodb://h")["w"] == 2
    assert opts.client_kwargs("mongodb://h")["serverSelectionTimeoutMS"] == 900


@pytest.mark.parametrize(
    ("uri", "options", "database"),
    [
        ("mongodb://h:27017", {}, "crm"),
        ("mongodb://h:27017/", {}, "crm"),
        ("mongodb://h:27017/sales?w=1", {}, "sales"),
        ("mongodb://h:27017/sales", {"database": "other"}, "other"),
        ("mongodb://h:27017/sales", {"tenant": "acme"}, "sales__acme"),
        ("mongodb+srv://u:p@cluster.example.net/", {"tenant": "globex-2"}, "crm__globex-2"),
    ],
)
def test_database_name_from_uri_option_and_tenant(uri, options, database):
    assert parse_options(options).database_name(uri) == database


def test_uris_are_shown_without_credentials_or_options():
    uri = "mongodb://admin:s3cret@db1:27017,db2:27017/crm?authSource=admin&tlsCAFile=/x"
    assert redact(uri) == "mongodb://***@db1:27017,db2:27017/crm"
    assert "s3cret" not in redact(uri)
    assert uri_database(uri) == "crm"


@pytest.mark.parametrize("location", [None, "", "crm-data", "/var/lib/crm", "http://h:27017"])
def test_a_location_that_is_not_a_mongodb_uri_is_a_config_error(location):
    with pytest.raises(ConfigError, match=r"storage\.location"):
        open_store(StorageOptions(location, {}, ManualClock(START)))


def test_a_malformed_uri_is_a_config_error_without_the_password():
    with pytest.raises(ConfigError, match=r"storage\.location") as err:
        open_store(StorageOptions("mongodb://user:pw@host:notaport/", {}, ManualClock(START)))
    assert "pw@" not in str(err.value)


def test_an_unreachable_server_is_a_clear_storage_error_not_a_hang():
    """127.0.0.1:1 refuses connections; with a 300 ms selection timeout, opening must fail
    promptly. The thread is only a guard against hanging, not a timing measurement."""
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            open_store(
                StorageOptions(
                    UNREACHABLE,
                    {"server_selection_timeout_ms": 300, "connect_timeout_ms": 300},
                    ManualClock(START),
                )
            )
        except BaseException as exc:  # recorded and checked below
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "opening an unreachable MongoDB hung"
    assert len(outcome) == 1 and isinstance(outcome[0], StorageError)
    message = str(outcome[0])
    assert "127.0.0.1:1" in message and "unreachable" in message and "0.3 s" in message
    assert connection.shared_clients() == 0  # the failed client was closed, not leaked


def test_a_crm_with_an_unreachable_server_fails_to_open_with_the_storage_error(make_crm):
    with pytest.raises(StorageError, match="unreachable"):
        make_crm(
            ["storage_mongo"],
            storage={
                "backend": "mongodb",
                "location": UNREACHABLE,
                "options": {"server_selection_timeout_ms": 200},
            },
        )


def test_bad_storage_options_in_a_crm_config_name_the_key(make_crm):
    with pytest.raises(ConfigError, match=r"storage\.options\.tenant"):
        make_crm(
            ["storage_mongo"],
            storage={
                "backend": "mongodb",
                "location": "mongodb://127.0.0.1:27017",
                "options": {"tenant": "Bad Name"},
            },
        )


def test_on_mongomock_nothing_is_claimed_that_it_cannot_show(open_mock):
    store = open_mock()
    caps = store.capabilities
    assert caps.persistent and caps.multi_process
    assert not caps.transactions and not caps.schema_validation and not caps.change_streams
    assert "did not answer 'hello'" in store.describe()
    assert store.describe().startswith("mongodb mongodb://127.0.0.1:27017 database crm")


@pytest.mark.parametrize(
    ("hello", "transactions", "what"),
    [
        (
            {"setName": "rs0", "maxWireVersion": 21, "logicalSessionTimeoutMinutes": 30},
            True,
            "replica set rs0",
        ),
        (
            {"msg": "isdbgrid", "maxWireVersion": 21, "logicalSessionTimeoutMinutes": 30},
            True,
            "sharded cluster",
        ),
        ({"maxWireVersion": 21, "logicalSessionTimeoutMinutes": 30}, False, "standalone server"),
        ({"setName": "rs0", "maxWireVersion": 21}, False, "replica set rs0"),  # no sessions
    ],
)
def test_capabilities_follow_what_the_server_says(hello, transactions, what):
    class Admin:
        def command(self, name):
            return {"ok": 1} if name == "ping" else hello

    class Client:
        admin = Admin()

    info = connection.probe(Client(), "mongodb://h", 1000)
    assert info.transactions is transactions
    assert info.schema_validation
    assert info.describe() == what


def test_servers_older_than_5_0_are_refused():
    class Admin:
        def command(self, name):
            return (
                {"ok": 1}
                if name == "ping"
                else {"setName": "rs0", "maxWireVersion": 9, "logicalSessionTimeoutMinutes": 30}
            )

    class Client:
        admin = Admin()

    with pytest.raises(StorageError, match=r"5\.0 or newer"):
        connection.probe(Client(), "mongodb://h", 1000)


def test_transactions_can_be_switched_off():
    assert MongoOptions(transactions="off").transactions == "off"


def test_stores_on_one_uri_share_one_client_until_the_last_closes(open_mock):
    before = connection.shared_clients()
    a = open_mock(tenant="acme")
    b = open_mock(tenant="globex")
    assert a.client is b.client
    assert connection.shared_clients() == before + 1
    a.close()
    b.collection("x").insert({"id": "1"})  # still usable: the client stays open for b
    b.close()
    assert connection.shared_clients() == before
    with pytest.raises(StorageError, match="closed"):
        b.collection("x")
