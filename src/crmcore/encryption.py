"""Encryption at rest of personal fields (``[core] encrypt_personal = true``).

Personal fields (``personal=True`` on a collection's record type) are sealed before they reach
the backend and opened when read, so the store's files hold no plaintext personal data.
Fields that are indexed (phone and e-mail, for finding duplicates) are sealed
deterministically with AES-SIV, so equality queries and unique indexes still work; all others
are sealed with AES-GCM and a random nonce, so equal values look different. The master key
comes from ``$CRM_ENCRYPTION_KEY`` (base64, at least 32 bytes) or ``[core] encryption_key_file``
(the same, in a file readable by its owner only). Losing the key loses the data.

Rotating the key: the new key becomes the current one and the old one moves to
``$CRM_ENCRYPTION_PREVIOUS_KEYS`` or ``[core] encryption_previous_key_files``. Values are
always sealed with the current key and open with any configured key (the AEAD tag tells which
fits); equality queries and unique checks on deterministic fields cover the seals under every
key. ``crmcore.keyrotation`` re-seals what is still under a previous key and counts
what opens with which key; once it shows nothing under a previous key, that key can go.
The stored format (``enc:v1:<d|r>:<base64>``) names no key, so stores sealed before rotation
existed keep working unchanged.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeGuard

import attrs

from crmcore.errors import (
    ConfigError,
    DuplicateKeyError,
    StorageError,
    ValidationError,
)
from crmcore.storage import BulkError, BulkResult, Collection, CollectionSpec, IndexSpec, Store
from crmcore.storage.base import Doc, Filter, SortSpec, StoreLayer
from crmcore.storage.query import MISSING, resolve

ENV_KEY = "CRM_ENCRYPTION_KEY"
ENV_PREVIOUS_KEYS = "CRM_ENCRYPTION_PREVIOUS_KEYS"
PREFIX = "enc:v1:"
KEY_BYTES = 32
CURRENT = 0  # the key index of the current key (``FieldCipher.key_of``)
UNSEALED: tuple[object, ...] = (None, "", [], {})  # values stored as they are, never sealed
NEW_KEY_HINT = "generate one with 'crm encryption new-key FILE'"
WRONG_KEY = (
    "an encrypted field does not open with this key (wrong CRM_ENCRYPTION_KEY, or damaged data)"
)


def load_key(key_file: str | None, environ: Mapping[str, str] | None = None) -> bytes:
    """The master key from the environment or the key file; refuse weak or exposed keys."""
    key = load_secret(ENV_KEY, key_file, "core.encryption_key_file", "encryption key", environ)
    if key is None:
        raise ConfigError(
            f"core.encrypt_personal is on but no key is given: set ${ENV_KEY} "
            f"or core.encryption_key_file ({NEW_KEY_HINT})"
        )
    return key


def load_previous_keys(
    key_files: Sequence[str], current: bytes, environ: Mapping[str, str] | None = None
) -> tuple[bytes, ...]:
    """The keys data may still be sealed with: ``$CRM_ENCRYPTION_PREVIOUS_KEYS`` (base64 keys
    separated by commas or whitespace) if set, else the files of
    ``[core] encryption_previous_key_files``, in that order. Checked like the current key;
    a previous key equal to the current one, or listed twice, is refused."""
    return load_previous_secrets(
        ENV_PREVIOUS_KEYS,
        key_files,
        "core.encryption_previous_key_files",
        "encryption key",
        current,
        environ,
    )


def load_secret(
    env_name: str,
    key_file: str | None,
    setting: str,
    what: str,
    environ: Mapping[str, str] | None = None,
) -> bytes | None:
    """A key (base64, at least 32 bytes) from ``$env_name``, else from ``key_file`` (which
    must be readable by its owner only), else None. ``setting`` and ``what`` name it in
    errors. The encryption key and the audit trail's key are both held this way."""
    env = os.environ if environ is None else environ
    if env.get(env_name):
        return _decode_key(env[env_name], f"${env_name}", what)
    if key_file:
        text, path = _read_key_file(key_file, setting)
        return _decode_key(text, path, what)
    return None


def load_previous_secrets(
    env_name: str,
    key_files: Sequence[str],
    setting: str,
    what: str,
    current: bytes | None,
    environ: Mapping[str, str] | None = None,
) -> tuple[bytes, ...]:
    """Previous keys (see ``load_previous_keys``), from ``$env_name`` or ``key_files``."""
    env = os.environ if environ is None else environ
    named: list[tuple[str, str]] = []  # (base64 text, where it came from)
    if env.get(env_name, "").strip():
        texts = [t for t in re.split(r"[\s,]+", env[env_name]) if t]
        named = [(t, f"${env_name}[{i}]") for i, t in enumerate(texts)]
    else:
        for i, key_file in enumerate(key_files):
            text, path = _read_key_file(key_file, f"{setting}[{i}]")
            named.append((text, f"{setting}[{i}] ({path})"))
    keys: list[bytes] = []
    for text, where in named:
        key = _decode_key(text, where, what)
        if key == current:
            raise ConfigError(
                f"{where}: this previous key is the current {what}; "
                "list only keys the data was sealed with before"
            )
        if key in keys:
            raise ConfigError(f"{where}: this previous key is listed twice")
        keys.append(key)
    return tuple(keys)


def _read_key_file(key_file: str, setting: str) -> tuple[str, str]:
    path = Path(key_file).expanduser()
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{setting}: {path} is not a key file (base64 text)") from None
    if mode & 0o077:
        raise ConfigError(f"{setting}: {path} is readable by others (mode {mode:o}); chmod 600 it")
    return text, str(path)


def _decode_key(text: str, where: str, what: str = "encryption key") -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise ConfigError(f"{where}: the {what} is not valid base64") from None
    if len(key) < KEY_BYTES:
        raise ConfigError(f"{where}: the {what} must be at least {KEY_BYTES} bytes")
    return key


def new_key() -> str:
    """A fresh random 32-byte key, base64."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def write_key_file(path: str | Path) -> Path:
    """Write ``new_key()`` to a new file readable by its owner only (mode 0600, whatever the
    umask). An existing file is never overwritten: it may hold the key some data needs."""
    target = Path(path).expanduser()
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ValidationError(
            f"{target} exists; a key file is never overwritten (the data "
            "sealed with it would be lost): choose a new name"
        ) from None
    except OSError as exc:
        raise ValidationError(f"cannot create {target}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(new_key() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            target.unlink()
        raise StorageError(f"could not write {target}: {exc.strerror}") from None
    return target


class _Key:
    """The two AEADs derived from one master key."""

    __slots__ = ("blind", "gcm", "siv")

    def __init__(self, master: bytes) -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        def derive(info: bytes, length: int) -> bytes:
            return HKDF(hashes.SHA256(), length, salt=None, info=info).derive(master)

        self.siv = AESSIV(derive(b"crmcore deterministic fields", 64))
        self.gcm = AESGCM(derive(b"crmcore randomised fields", 32))
        self.blind = derive(b"crmcore blind index", 32)  # HMAC key of search keys


class FieldCipher:
    """Seals and opens single field values (any JSON value).

    ``seal`` always uses the current key (``master``); ``open`` tries the current key, then
    each of ``previous`` in order. Key indexes: ``CURRENT`` (0) is the current key, ``i``
    the i-th previous key (from 1).
    """

    def __init__(self, master: bytes, previous: Sequence[bytes] = ()) -> None:
        self._keys = (_Key(master), *(_Key(key) for key in previous))

    @property
    def previous_keys(self) -> int:
        """How many previous keys are configured."""
        return len(self._keys) - 1

    def seal(self, value: Any, *, deterministic: bool) -> str:
        plain = _plaintext(value)
        if deterministic:
            return _text("d", self._keys[CURRENT].siv.encrypt(plain, [b"crmcore"]))
        nonce = os.urandom(12)
        return _text("r", nonce + self._keys[CURRENT].gcm.encrypt(nonce, plain, b"crmcore"))

    def seal_each(self, value: Any, keys: Iterable[int] | None = None) -> list[str]:
        """The deterministic seals of ``value`` under each key of ``keys`` (default: every
        configured key, the current one first): what a stored value equal to it may be."""
        plain = _plaintext(value)
        chosen = range(len(self._keys)) if keys is None else keys
        return [_text("d", self._keys[i].siv.encrypt(plain, [b"crmcore"])) for i in chosen]

    def blind(self, value: str, key: int = CURRENT) -> str:
        """The keyed hash (``h:`` and 16 bytes of HMAC-SHA256, base64) a blind field stores in
        place of ``value``: equal values hash equal under one key, and the hash cannot be
        turned back into the value without the key."""
        digest = hmac.new(self._keys[key].blind, value.encode(), hashlib.sha256).digest()
        return "h:" + base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")

    def blind_each(self, value: str) -> list[str]:
        """The hashes of ``value`` under every configured key, the current one first."""
        return [self.blind(value, i) for i in range(len(self._keys))]

    def open(self, text: str) -> Any:
        """The value sealed in ``text``; ``StorageError`` if no configured key opens it."""
        found = self._decrypt(text)
        if found is None:
            raise StorageError(WRONG_KEY)
        return json.loads(found[1])

    def try_open(self, text: str) -> tuple[int, Any] | None:
        """``(key index, value)`` for the first key that opens ``text``, or None."""
        found = self._decrypt(text)
        return None if found is None else (found[0], json.loads(found[1]))

    def key_of(self, text: str) -> int | None:
        """The index of the key that opens ``text``, or None when none does."""
        found = self._decrypt(text)
        return None if found is None else found[0]

    def _decrypt(self, text: str) -> tuple[int, bytes] | None:
        from cryptography.exceptions import InvalidTag

        try:
            tag, body = text[len(PREFIX) :].split(":", 1)
            raw = base64.urlsafe_b64decode(body)
        except ValueError:
            return None
        if tag not in ("d", "r"):
            return None
        for index, key in enumerate(self._keys):
            try:
                plain = (
                    key.siv.decrypt(raw, [b"crmcore"])
                    if tag == "d"
                    else key.gcm.decrypt(raw[:12], raw[12:], b"crmcore")
                )
            except (InvalidTag, ValueError):
                continue
            return index, plain
        return None


def _plaintext(value: Any) -> bytes:
    # What is sealed. Deterministic seals of equal values must stay equal: never change it.
    return json.dumps(value, sort_keys=True, ensure_ascii=False).encode()


def _text(tag: str, sealed: bytes) -> str:
    return f"{PREFIX}{tag}:{base64.urlsafe_b64encode(sealed).decode()}"


def is_sealed(value: Any) -> TypeGuard[str]:
    """Whether a stored value is a seal (``enc:v1:…``) rather than a value in the clear."""
    return isinstance(value, str) and value.startswith(PREFIX)


class EncryptedStore(StoreLayer):
    """Wraps a backend; personal fields of declared collections are sealed at rest."""

    def __init__(self, inner: Store, cipher: FieldCipher) -> None:
        super().__init__(inner)
        self.cipher = cipher
        self._fields: dict[str, dict[str, bool]] = {}  # collection -> field -> deterministic
        self._unique: dict[str, tuple[IndexSpec, ...]] = {}
        self._blind: dict[str, tuple[str, ...]] = {}  # collection -> lists of keyed hashes

    def declare(self, spec: CollectionSpec, personal: Iterable[str]) -> None:
        indexed = {field for index in spec.indexes for field, _ in index.fields}
        fields = {f: f in indexed for f in personal if f not in spec.blind}
        self._fields[spec.name] = fields
        self._blind[spec.name] = tuple(spec.blind)
        # Unique indexes over a sealed field: during a rotation the backend sees only the
        # seals under the current key, so the collection checks the previous keys' seals.
        self._unique[spec.name] = tuple(
            index
            for index in spec.indexes
            if index.unique and any(fields.get(f) for f, _ in index.fields)
        )

    def blind_fields(self) -> dict[str, tuple[str, ...]]:
        """Declared collections with blind fields (keyed hashes of search keys)."""
        return {name: fields for name, fields in sorted(self._blind.items()) if fields}

    def sealed_collections(self) -> dict[str, dict[str, bool]]:
        """Declared collections with personal fields: field -> sealed deterministically."""
        return {name: dict(fields) for name, fields in sorted(self._fields.items()) if fields}

    def collection(self, name: str) -> Collection:
        inner = self.inner.collection(name)
        fields = self._fields.get(name)
        blind = self._blind.get(name, ())
        if not fields and not blind:
            return inner
        unique = self._unique.get(name, ()) if self.cipher.previous_keys else ()
        return EncryptedCollection(inner, self.cipher, fields or {}, unique, blind)

    def describe(self) -> str:
        return f"{self.inner.describe()}, personal fields encrypted"

    def as_read(self, name: str, doc: dict[str, Any]) -> dict[str, Any]:
        collection = self.collection(name)
        return collection._open(dict(doc)) if isinstance(collection, EncryptedCollection) else doc  # type: ignore[return-value]


class EncryptedCollection(Collection):
    def __init__(
        self,
        inner: Collection,
        cipher: FieldCipher,
        fields: dict[str, bool],
        unique: tuple[IndexSpec, ...] = (),
        blind: tuple[str, ...] = (),
    ) -> None:
        self.name = inner.name
        self._inner = inner
        self._cipher = cipher
        self._fields = fields
        self._unique = unique  # checked against previous keys' seals (only during a rotation)
        self._blind = blind  # lists of search keys: each element stored as its keyed hash

    def _seal(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(doc)
        for field, deterministic in self._fields.items():
            value = out.get(field)
            if value not in UNSEALED:
                out[field] = self._cipher.seal(value, deterministic=deterministic)
        for field in self._blind:
            value = out.get(field)
            if isinstance(value, list | tuple):
                out[field] = [self._cipher.blind(str(v)) for v in value]
        return out

    def _open(self, doc: Doc | None) -> Doc | None:
        if doc is None:
            return None
        for field in self._fields:
            value = doc.get(field)
            if is_sealed(value):
                doc[field] = self._cipher.open(value)
        return doc

    def _filter(self, filter: Filter | None) -> dict[str, Any] | None:
        if filter is None:
            return None
        out: dict[str, Any] = {}
        for key, value in filter.items():
            if key in ("$or", "$and"):
                out[key] = [self._filter(f) for f in value]
            elif key in self._blind:
                out[key] = self._blind_condition(key, value)
            elif key not in self._fields:
                out[key] = value
            elif not self._fields[key]:
                raise ValidationError(
                    f"{self.name}.{key} is encrypted with a random nonce and cannot be searched"
                )
            elif self._cipher.previous_keys:
                out[key] = self._any_key_condition(key, value)
            else:
                out[key] = self._seal_condition(key, value)
        return out

    def _blind_condition(self, key: str, value: Any) -> Any:
        """Equality with an element of a blind field: one of its hashes under any configured
        key (a rotation rewrites them under the current one)."""
        if value is None:
            return None
        if not _is_operators(value):
            hashes = self._cipher.blind_each(str(value))
            return hashes[0] if len(hashes) == 1 else {"$in": hashes}
        out: dict[str, Any] = {}
        for op, operand in value.items():
            if op in ("$eq", "$in"):
                values = [operand] if op == "$eq" else list(operand)
                out["$in"] = [h for v in values for h in self._cipher.blind_each(str(v))]
            elif op == "$exists":
                out[op] = operand
            else:
                raise ValidationError(
                    f"{self.name}.{key} holds keyed hashes: only equality and membership "
                    "queries work on it"
                )
        return out

    def _seal_condition(self, key: str, value: Any) -> Any:
        def seal(v: Any) -> Any:
            return None if v is None else self._cipher.seal(v, deterministic=True)

        if _is_operators(value):
            sealed = {}
            for op, operand in value.items():
                if op in ("$eq", "$ne"):
                    sealed[op] = seal(operand)
                elif op in ("$in", "$nin"):
                    sealed[op] = [seal(v) for v in operand]
                elif op == "$exists":
                    sealed[op] = operand
                else:
                    raise ValidationError(
                        f"{self.name}.{key} is encrypted: only equality and "
                        "membership queries work on it"
                    )
            return sealed
        return seal(value)

    def _any_key_condition(self, key: str, value: Any) -> Any:
        """``_seal_condition`` during a rotation: a stored value may be sealed under any
        configured key, so equality becomes membership in the seals under every key."""

        def seals(values: Iterable[Any]) -> list[Any]:
            out = (s for v in values for s in ([None] if v is None else self._cipher.seal_each(v)))
            return list(dict.fromkeys(out))

        if not _is_operators(value):
            return None if value is None else {"$in": seals([value])}
        inside: list[Any] | None = None  # $eq and $in: the stored seal is one of these
        outside: list[Any] = []  # $ne and $nin: it is none of these
        out: dict[str, Any] = {}
        for op, operand in value.items():
            if op in ("$in", "$nin") and not isinstance(operand, list | tuple | set):
                raise ValidationError(f"{op} on field {key!r} takes a list")
            if op in ("$eq", "$in"):
                wanted = seals([operand] if op == "$eq" else operand)
                inside = wanted if inside is None else [s for s in inside if s in set(wanted)]
            elif op in ("$ne", "$nin"):
                outside += seals([operand] if op == "$ne" else operand)
            elif op == "$exists":
                out[op] = operand
            else:
                raise ValidationError(
                    f"{self.name}.{key} is encrypted: only equality and "
                    "membership queries work on it"
                )
        if inside is not None:
            out["$in"] = inside
        if outside:
            out["$nin"] = list(dict.fromkeys(outside))
        return out

    def _check_sort(self, sort: SortSpec | None) -> None:
        for field, _ in sort or ():
            if field in self._fields or field in self._blind:
                raise ValidationError(f"{self.name}.{field} is encrypted and cannot be sorted on")

    def _refuse_duplicates(
        self, id: Any, values: Mapping[str, Any], *, update: bool = False
    ) -> None:
        """During a rotation, refuse a unique value that another record holds sealed under a
        previous key: the backend's unique index only compares seals under the current key.
        ``values`` is the new document, or with ``update`` the changes to record ``id``."""
        stored: Mapping[str, Any] | None = None
        for index in self._unique:
            tops = [path.split(".")[0] for path, _ in index.fields]
            if update and not any(t in values for t in tops):
                continue  # this write leaves the index's fields as they are
            doc = values
            if update and not all(t in values for t in tops):
                stored = self.get(id) if stored is None else stored
                doc = {**stored, **values}
            query = self._duplicate_query(index, doc)
            if query is not None and self._inner.find({**query, "id": {"$ne": id}}, limit=1):
                fields = ", ".join(path for path, _ in index.fields)
                raise DuplicateKeyError(
                    f"{self.name}: another record already has this value "
                    f"of ({fields}), sealed under a previous encryption "
                    "key"
                )

    def _duplicate_query(self, index: IndexSpec, doc: Mapping[str, Any]) -> dict[str, Any] | None:
        """The filter for records holding ``doc``'s key in ``index`` with a seal the backend
        cannot compare, or None when the backend's own check is enough."""
        personal = [path for path, _ in index.fields if path in self._fields]
        # With one sealed field, its seal under the current key is the backend's to refuse.
        keys = range(1, self._cipher.previous_keys + 1) if len(personal) == 1 else None
        query: dict[str, Any] = {}
        sealed = False
        for path, _ in index.fields:
            value = resolve(doc, path)
            value = None if value is MISSING else value
            if index.sparse and value is None:
                return None  # the index skips this document
            if path in personal and value not in UNSEALED:
                query[path] = {"$in": self._cipher.seal_each(value, keys)}
                sealed = True
            else:
                query[path] = value
        return query if sealed else None

    def _bulk(
        self, docs: Iterable[Doc], write: Callable[[Iterable[Doc]], BulkResult]
    ) -> BulkResult:
        if not self._unique:
            return write(self._seal(d) if isinstance(d, Mapping) else d for d in docs)
        refused: list[BulkError] = []
        kept: list[tuple[int, Doc]] = []
        for i, doc in enumerate(docs):
            if isinstance(doc, Mapping):
                try:
                    self._refuse_duplicates(doc.get("id"), doc)
                except DuplicateKeyError as exc:
                    refused.append(BulkError(i, doc.get("id"), str(exc)))
                    continue
            kept.append((i, doc))
        result = write(self._seal(d) if isinstance(d, Mapping) else d for _i, d in kept)
        errors = [attrs.evolve(e, index=kept[e.index][0]) for e in result.errors]
        return BulkResult(result.ids, tuple(sorted(errors + refused, key=lambda e: e.index)))

    def insert(self, doc: Doc) -> Doc:
        if self._unique and isinstance(doc, Mapping):
            self._refuse_duplicates(doc.get("id"), doc)
        return self._open(self._inner.insert(self._seal(doc)))  # type: ignore[return-value]

    def insert_many(self, docs: Iterable[Doc]) -> BulkResult:
        return self._bulk(docs, self._inner.insert_many)

    def upsert_many(self, docs: Iterable[Doc]) -> BulkResult:
        return self._bulk(docs, self._inner.upsert_many)

    def get(self, id: str) -> Doc:
        return self._open(self._inner.get(id))  # type: ignore[return-value]

    def update(self, id: str, changes: Mapping[str, Any], *, expected_version: int) -> Doc:
        if self._unique:
            self._refuse_duplicates(id, changes, update=True)
        return self._open(
            self._inner.update(
                id,
                self._seal(changes),  # type: ignore[return-value]
                expected_version=expected_version,
            )
        )

    def delete(self, id: str, *, expected_version: int | None = None) -> None:
        self._inner.delete(id, expected_version=expected_version)

    def find(
        self,
        filter: Filter | None = None,
        *,
        sort: SortSpec | None = None,
        limit: int | None = None,
        skip: int = 0,
    ) -> list[Doc]:
        self._check_sort(sort)
        return [
            self._open(d)  # type: ignore[misc]
            for d in self._inner.find(self._filter(filter), sort=sort, limit=limit, skip=skip)
        ]

    def iter(self, filter: Filter | None = None, *, batch_size: int = 1000) -> Iterator[Doc]:
        for doc in self._inner.iter(self._filter(filter), batch_size=batch_size):
            yield self._open(doc)  # type: ignore[misc]

    def count(self, filter: Filter | None = None) -> int:
        return self._inner.count(self._filter(filter))

    def sum(self, field: str, filter: Filter | None = None) -> int | float:
        top = field.split(".", 1)[0]
        if top in self._fields or top in self._blind:
            return super().sum(field, filter)  # sealed values: summed as read, opened
        return self._inner.sum(field, self._filter(filter))

    def ensure_index(self, spec: IndexSpec) -> None:
        self._inner.ensure_index(spec)

    def indexes(self) -> list[IndexSpec]:
        return self._inner.indexes()

    def claim(
        self,
        filter: Filter,
        *,
        owner: str,
        until: datetime,
        now: datetime,
        sort: SortSpec | None = None,
    ) -> Doc | None:
        self._check_sort(sort)
        return self._open(
            self._inner.claim(
                self._filter(filter) or {}, owner=owner, until=until, now=now, sort=sort
            )
        )

    def release(self, id: str, *, owner: str) -> None:
        self._inner.release(id, owner=owner)


def _is_operators(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(str(k).startswith("$") for k in value)


# -- the layer in a CRM's stack --------------------------------------------------------------


def encrypted_layer(store: Store) -> EncryptedStore:
    """The encryption layer in a CRM's stack of store layers; ``ConfigError`` when
    encryption at rest is off."""
    layer: Store = store
    while isinstance(layer, StoreLayer):
        if isinstance(layer, EncryptedStore):
            return layer
        layer = layer.inner
    raise ConfigError("encryption at rest is off ([core] encrypt_personal = false)")
