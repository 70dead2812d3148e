"""Encryption at rest of personal fields (``[core] encrypt_personal = true``).

Personal fields (``personal=True`` on a collection's record type) are sealed before they reach
the backend and opened when read, so the store's files hold no plaintext personal data.
Fields that are indexed (phone and e-mail, for finding duplicates) are sealed
deterministically with AES-SIV, so equality queries and unique indexes still work; all others
are sealed with AES-GCM and a random nonce, so equal values look different. The master key
comes from ``$CRM_ENCRYPTION_KEY`` (base64, at least 32 bytes) or ``[core] encryption_key_file``
(the same, in a file readable by its owner only). Losing the key loses the data.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from crmcore.errors import ConfigError, StorageError, ValidationError
from crmcore.storage import BulkResult, Collection, CollectionSpec, IndexSpec, Store
from crmcore.storage.base import Doc, Filter, SortSpec, StoreLayer

ENV_KEY = "CRM_ENCRYPTION_KEY"
PREFIX = "enc:v1:"


def load_key(key_file: str | None, environ: Mapping[str, str] | None = None) -> bytes:
    """The master key from the environment or the key file; refuse weak or exposed keys."""
    env = os.environ if environ is None else environ
    if env.get(ENV_KEY):
        text, where = env[ENV_KEY], f"${ENV_KEY}"
    elif key_file:
        path = Path(key_file).expanduser()
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"core.encryption_key_file: cannot read {path}: "
                              f"{exc.strerror}") from None
        if mode & 0o077:
            raise ConfigError(f"core.encryption_key_file: {path} is readable by others "
                              f"(mode {mode:o}); chmod 600 it")
        where = str(path)
    else:
        raise ConfigError(f"core.encrypt_personal is on but no key is given: set ${ENV_KEY} "
                          "or core.encryption_key_file (generate one with "
                          "'python -c \"import os,base64;print(base64.b64encode(os.urandom(32))"
                          ".decode())\"')")
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise ConfigError(f"{where}: the encryption key is not valid base64") from None
    if len(key) < 32:
        raise ConfigError(f"{where}: the encryption key must be at least 32 bytes")
    return key


class FieldCipher:
    """Seals and opens single field values (any JSON value)."""

    def __init__(self, master: bytes) -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        def derive(info: bytes, length: int) -> bytes:
            return HKDF(hashes.SHA256(), length, salt=None, info=info).derive(master)

        self._siv = AESSIV(derive(b"crmcore deterministic fields", 64))
        self._gcm = AESGCM(derive(b"crmcore randomised fields", 32))

    def seal(self, value: Any, *, deterministic: bool) -> str:
        plain = json.dumps(value, sort_keys=True, ensure_ascii=False).encode()
        if deterministic:
            sealed, tag = self._siv.encrypt(plain, [b"crmcore"]), "d"
        else:
            nonce = os.urandom(12)
            sealed, tag = nonce + self._gcm.encrypt(nonce, plain, b"crmcore"), "r"
        return f"{PREFIX}{tag}:{base64.urlsafe_b64encode(sealed).decode()}"

    def open(self, text: str) -> Any:
        from cryptography.exceptions import InvalidTag

        try:
            tag, body = text[len(PREFIX):].split(":", 1)
            raw = base64.urlsafe_b64decode(body)
            plain = (self._siv.decrypt(raw, [b"crmcore"]) if tag == "d"
                     else self._gcm.decrypt(raw[:12], raw[12:], b"crmcore"))
        except (InvalidTag, ValueError) as exc:
            raise StorageError("an encrypted field does not open with this key (wrong "
                               "CRM_ENCRYPTION_KEY, or damaged data)") from exc
        return json.loads(plain)


class EncryptedStore(StoreLayer):
    """Wraps a backend; personal fields of declared collections are sealed at rest."""

    def __init__(self, inner: Store, cipher: FieldCipher) -> None:
        super().__init__(inner)
        self.cipher = cipher
        self._fields: dict[str, dict[str, bool]] = {}  # collection -> field -> deterministic

    def declare(self, spec: CollectionSpec, personal: Iterable[str]) -> None:
        indexed = {field for index in spec.indexes for field, _ in index.fields}
        self._fields[spec.name] = {f: f in indexed for f in personal}

    def collection(self, name: str) -> Collection:
        inner = self.inner.collection(name)
        fields = self._fields.get(name)
        return EncryptedCollection(inner, self.cipher, fields) if fields else inner

    def describe(self) -> str:
        return f"{self.inner.describe()}, personal fields encrypted"


class EncryptedCollection(Collection):
    def __init__(self, inner: Collection, cipher: FieldCipher, fields: dict[str, bool]) -> None:
        self.name = inner.name
        self._inner = inner
        self._cipher = cipher
        self._fields = fields

    def _seal(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(doc)
        for field, deterministic in self._fields.items():
            value = out.get(field)
            if value not in (None, "", [], {}):
                out[field] = self._cipher.seal(value, deterministic=deterministic)
        return out

    def _open(self, doc: Doc | None) -> Doc | None:
        if doc is None:
            return None
        for field in self._fields:
            value = doc.get(field)
            if isinstance(value, str) and value.startswith(PREFIX):
                doc[field] = self._cipher.open(value)
        return doc

    def _filter(self, filter: Filter | None) -> dict[str, Any] | None:
        if filter is None:
            return None
        out: dict[str, Any] = {}
        for key, value in filter.items():
            if key in ("$or", "$and"):
                out[key] = [self._filter(f) for f in value]
            elif key not in self._fields:
                out[key] = value
            elif not self._fields[key]:
                raise ValidationError(f"{self.name}.{key} is encrypted with a random nonce and "
                                      "cannot be searched")
            else:
                out[key] = self._seal_condition(key, value)
        return out

    def _seal_condition(self, key: str, value: Any) -> Any:
        def seal(v: Any) -> Any:
            return None if v is None else self._cipher.seal(v, deterministic=True)

        if isinstance(value, Mapping) and value and all(str(k).startswith("$") for k in value):
            sealed = {}
            for op, operand in value.items():
                if op in ("$eq", "$ne"):
                    sealed[op] = seal(operand)
                elif op in ("$in", "$nin"):
                    sealed[op] = [seal(v) for v in operand]
                elif op == "$exists":
                    sealed[op] = operand
                else:
                    raise ValidationError(f"{self.name}.{key} is encrypted: only equality and "
                                          "membership queries work on it")
            return sealed
        return seal(value)

    def _check_sort(self, sort: SortSpec | None) -> None:
        for field, _ in sort or ():
            if field in self._fields:
                raise ValidationError(f"{self.name}.{field} is encrypted and cannot be sorted on")

    def insert(self, doc: Doc) -> Doc:
        return self._open(self._inner.insert(self._seal(doc)))  # type: ignore[return-value]

    def insert_many(self, docs: Iterable[Doc]) -> BulkResult:
        return self._inner.insert_many(self._seal(d) if isinstance(d, Mapping) else d
                                       for d in docs)

    def upsert_many(self, docs: Iterable[Doc]) -> BulkResult:
        return self._inner.upsert_many(self._seal(d) if isinstance(d, Mapping) else d
                                       for d in docs)

    def get(self, id: str) -> Doc:
        return self._open(self._inner.get(id))  # type: ignore[return-value]

    def update(self, id: str, changes: Mapping[str, Any], *, expected_version: int) -> Doc:
        return self._open(self._inner.update(id, self._seal(changes),  # type: ignore[return-value]
                                             expected_version=expected_version))

    def delete(self, id: str, *, expected_version: int | None = None) -> None:
        self._inner.delete(id, expected_version=expected_version)

    def find(self, filter: Filter | None = None, *, sort: SortSpec | None = None,
             limit: int | None = None, skip: int = 0) -> list[Doc]:
        self._check_sort(sort)
        return [self._open(d) for d in self._inner.find(  # type: ignore[misc]
            self._filter(filter), sort=sort, limit=limit, skip=skip)]

    def iter(self, filter: Filter | None = None, *, batch_size: int = 1000) -> Iterator[Doc]:
        for doc in self._inner.iter(self._filter(filter), batch_size=batch_size):
            yield self._open(doc)  # type: ignore[misc]

    def count(self, filter: Filter | None = None) -> int:
        return self._inner.count(self._filter(filter))

    def ensure_index(self, spec: IndexSpec) -> None:
        self._inner.ensure_index(spec)

    def indexes(self) -> list[IndexSpec]:
        return self._inner.indexes()

    def claim(self, filter: Filter, *, owner: str, until: datetime, now: datetime,
              sort: SortSpec | None = None) -> Doc | None:
        self._check_sort(sort)
        return self._open(self._inner.claim(self._filter(filter) or {}, owner=owner,
                                            until=until, now=now, sort=sort))

    def release(self, id: str, *, owner: str) -> None:
        self._inner.release(id, owner=owner)
