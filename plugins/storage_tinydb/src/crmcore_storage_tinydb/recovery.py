"""``crm check --repair``: salvage every readable document and journal write, keep the rest.

The damaged files are first copied, untouched, into ``recovered/repair-<time>/`` beside a
``report.txt`` saying what was lost. Then each collection is rebuilt from the document lines of
its file that still parse plus every journal line whose checksum holds (replaying a journal
write that a file already holds changes nothing: writes carry whole documents), documents that
would break a unique index are set aside in ``<collection>.rejected.jsonl``, and the store is
written out afresh: new collection files and an empty journal of a new generation.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from crmcore.errors import StorageError
from crmcore.logs import get_logger
from crmcore.storage.base import IndexSpec
from crmcore_storage_tinydb import files, indexfile
from crmcore_storage_tinydb.files import JOURNAL, RECOVERED, decode_json, encode_json, now_stamp
from crmcore_storage_tinydb.indexes import Index

log = get_logger("storage_tinydb")


Validator = Callable[[str, dict[str, Any]], "str | None"]
Manifest = dict[str, dict[str, Any]]


@attrs.define
class Rebuilt:
    """What ``rebuild`` wrote: new collection files of ``generation``, and what the store
    writes next (a journal of that generation and the manifest)."""

    folder: Path
    aside: Path  # recovered/repair-<time>-<pid>/: the files as they were, and the report
    report: list[str]  # the first line names the store; then one line per problem
    generation: int
    manifest: Manifest
    counts: dict[str, int]  # documents per collection now


def _journal_records(data: bytes) -> tuple[int, list[files.Record], int, int]:
    """(generation, good records, bad lines, bytes of an unfinished last line)."""
    generation = 0
    records: list[files.Record] = []
    bad = 0
    pos = 0
    lines = data.split(b"\n")
    torn = len(lines[-1])
    for number, line in enumerate(lines[:-1]):
        start = pos
        pos += len(line) + 1
        payload = files.check_line(line)
        if number == 0 and payload is not None and payload.startswith("{"):
            try:
                generation = int(decode_json(payload)["generation"])
                continue
            except (ValueError, KeyError, TypeError):
                pass
        tab = payload.find("\t") if payload is not None else -1
        names = None
        if tab > 0:
            try:
                names = decode_json(payload[:tab])  # type: ignore[index]
            except ValueError:
                names = None
        if isinstance(names, list):
            records.append(files.Record(start, pos, names, payload))  # type: ignore[arg-type]
        else:
            bad += 1
    return generation, records, bad, torn


def rebuild(
    folder: Path,
    mark: files.Mark | str | None,
    *,
    recorded: Manifest | None,
    deferred: Mapping[str, Sequence[IndexSpec]],
    validate: Validator | None = None,
) -> Rebuilt:
    """Under the exclusive lock: set the files aside and write every collection afresh from
    what can be read (see the module docstring). ``mark`` is the lock file's commit record,
    ``recorded`` the manifest the store read, ``deferred`` the indexes its collections were
    asked for while unreadable; ``validate(collection, doc)`` says why a salvaged document
    would not load (the entity schema): those are set aside in
    ``<collection>.unloadable.jsonl``."""
    base = folder
    files.make_private_dir(base / RECOVERED)
    aside = base / RECOVERED / f"repair-{now_stamp()}-{os.getpid()}"
    files.make_private_dir(aside)
    report: list[str] = [f"repair of {base}"]

    snapshot_paths = {}
    for entry in os.scandir(base):
        name = files.collection_of(entry.name)
        if name is not None and entry.is_file():
            snapshot_paths[name] = Path(entry.path)
        if (name is not None or entry.name in (JOURNAL, files.MANIFEST)) and entry.is_file():
            files.copy_private(Path(entry.path), aside / entry.name)

    journal = base / JOURNAL
    data = journal.read_bytes() if journal.exists() else b""
    generation, records, bad_lines, torn = _journal_records(data)
    if not journal.exists():
        report.append(f"{journal}: missing; writes since the last compaction are lost")
    if bad_lines:
        report.append(
            f"{journal}: {bad_lines} damaged line(s) skipped (each one write or "
            "transaction is lost)"
        )
    acknowledged = (
        mark.count if isinstance(mark, files.Mark) and mark.generation == generation else None
    )
    if acknowledged is not None and acknowledged > len(records) + bad_lines:
        report.append(
            f"{journal}: {acknowledged - len(records) - bad_lines} acknowledged "
            "write(s) were cut off the end and are lost"
        )
    if torn:
        report.append(
            f"{journal}: an unfinished last write of {torn} bytes dropped "
            + (
                "(it had been acknowledged: lost)"
                if acknowledged is not None and acknowledged > len(records) + bad_lines
                else "(it had not been acknowledged)"
            )
        )
    try:
        manifest = files.read_manifest(base) or {}
    except files.DamageError as exc:
        manifest = {}
        report.append(str(exc).split("; run 'crm check")[0] + "; rebuilt from the files")
    for name, recorded_entry in sorted(manifest.items()):
        if name not in snapshot_paths:
            report.append(
                f"{base / files.snapshot_file(name)}: missing; the manifest recorded "
                f"{recorded_entry.get('count', 0)} document(s) in it (those not "
                "rewritten since, in the journal, are lost)"
            )

    names = set(snapshot_paths) | set(deferred) | set(manifest)
    for record in records:
        names.update(record.collections)

    newest = generation
    rebuilt: dict[str, tuple[dict[str, str], list[Any]]] = {}
    for name in sorted(names):
        texts: dict[str, str] = {}
        specs: dict[str, Any] = {}
        replay_from = 0
        path = snapshot_paths.get(name)
        if path is not None:
            meta = None
            try:
                meta = files.read_meta(path)
                for text in files.read_documents(path, meta):
                    texts[decode_json(text)["id"]] = text
                if meta.generation == generation:
                    replay_from = meta.journal_offset
            except (StorageError, ValueError, KeyError, TypeError) as exc:
                problem = (
                    str(exc).split("; run 'crm check")[0]
                    if isinstance(exc, StorageError)
                    else f"{path} is damaged: a document does not read"
                )
                salvaged, unreadable = files.salvage_documents(path)
                texts = {decode_json(t)["id"]: t for t in salvaged}
                recorded_count = _recorded_count(path, recorded)
                lost = (
                    f"{recorded_count - len(texts)} document(s) lost"
                    if recorded_count is not None
                    else f"{unreadable} document line(s) unreadable"
                )
                report.append(f"{problem}; salvaged {len(texts)} document(s), {lost}")
            if meta is not None:
                newest = max(newest, meta.generation)
                specs.update({s.name: s for s in meta.indexes})
        for record in records:
            if record.start < replay_from or name not in record.collections:
                continue
            for op in record.ops():
                if op[1] != name:
                    continue
                if op[0] in ("p", "a"):
                    texts[op[2]["id"]] = encode_json(op[2])
                elif op[0] == "d":
                    texts.pop(op[2], None)
                elif op[0] == "x":
                    spec = files.spec_from_json(op[2])
                    specs[spec.name] = spec
        specs.update({s.name: s for s in deferred.get(name, ())})
        if validate is not None:
            _reject_unloadable(name, texts, validate, aside, report)
        _reject_duplicates(name, texts, list(specs.values()), aside, report)
        rebuilt[name] = (texts, list(specs.values()))

    new_generation = newest + 1
    entries = {}
    for name, (kept, indexes) in rebuilt.items():
        header: dict[str, Any] = {
            "collection": name,
            "generation": new_generation,
            "journal_offset": 0,
            "indexes": [files.spec_to_json(s) for s in indexes],
        }
        snapshot = base / files.snapshot_file(name)
        written = files.write_snapshot(snapshot, header, (kept[i] for i in sorted(kept)))
        entries[name] = files.manifest_entry(written)
        indexfile.index_file(snapshot).unlink(missing_ok=True)  # rebuilt on the next load
    counts = {name: len(texts) for name, (texts, _specs) in rebuilt.items()}
    return Rebuilt(base, aside, report, new_generation, entries, counts)


def finish(rebuilt: Rebuilt) -> list[str]:
    """Once the store follows its new files: write the report beside the files set aside;
    returns the notes for ``check_notes``."""
    report = list(rebuilt.report)
    problems = len(report) - 1
    if not problems:
        report.append("nothing was damaged; the files were rewritten")
    report.append(
        "documents now: " + ", ".join(f"{k}={v}" for k, v in sorted(rebuilt.counts.items()))
    )
    files.write_private(rebuilt.aside / "report.txt", "\n".join(report) + "\n")
    log.warning(
        "store repaired", location=str(rebuilt.folder), kept=str(rebuilt.aside), problems=problems
    )
    return [*report[1:-1], f"the files as they were and this report are kept in {rebuilt.aside}"]


def _recorded_count(path: Path, recorded: Manifest | None) -> int | None:
    """How many documents the file should hold: its own record, else the manifest's."""
    try:
        return files.read_meta(path).count
    except (StorageError, OSError):
        entry = (recorded or {}).get(files.collection_of(path.name) or "")
        return entry.get("count") if entry else None


def _reject_unloadable(
    name: str, texts: dict[str, str], validate: Validator, aside: Path, report: list[str]
) -> None:
    """Drop (into ``<collection>.unloadable.jsonl``) documents the schema refuses."""
    refused: list[str] = []
    first = ""
    for id in sorted(texts):
        why = validate(name, decode_json(texts[id]))
        if why is not None:
            refused.append(texts.pop(id))
            first = first or f"{id}: {why}"
    if refused:
        target = aside / f"{files.snapshot_file(name)[:-5]}.unloadable.jsonl"
        files.write_private(target, "\n".join(refused) + "\n")
        report.append(
            f"{name}: {len(refused)} salvaged document(s) do not load (first: "
            f"{first}) and were set aside in {target}"
        )


def _reject_duplicates(
    name: str, texts: dict[str, str], specs: list[Any], aside: Path, report: list[str]
) -> None:
    """Drop (into ``<collection>.rejected.jsonl``) documents that break a unique index."""
    rejected: list[str] = []
    for spec in specs:
        if not spec.unique:
            continue
        index = Index(spec)
        seen: set[bytes] = set()
        for id in sorted(texts):
            keys, _listy = index.keys(decode_json(texts[id]))
            if any(key in seen for key in keys):
                rejected.append(texts.pop(id))
            else:
                seen.update(keys)
    if rejected:
        target = aside / f"{files.snapshot_file(name)[:-5]}.rejected.jsonl"
        fd = files.open_private(target, os.O_WRONLY | os.O_TRUNC)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write("\n".join(rejected) + "\n")
        report.append(
            f"{name}: {len(rejected)} document(s) broke a unique index and were set "
            f"aside in {target}"
        )
