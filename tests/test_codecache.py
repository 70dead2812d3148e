"""``crmcore.codecache``: generated methods compiled once, the same code as ``compile``'s."""

from __future__ import annotations

import ast
import builtins
import os
import stat
import subprocess
import sys

import attr._make
import attrs
import pytest

from crmcore import codecache

ANNOTATIONS = 0x1000000  # CO_FUTURE_ANNOTATIONS: what attrs' module compiles under


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The module's state fresh, its file in ``tmp_path``."""
    path = tmp_path / "codecache.generated"
    monkeypatch.setattr(codecache, "cache_file", lambda: str(path))
    monkeypatch.setattr(codecache, "_loaded", None)
    monkeypatch.setattr(codecache, "_added", {})
    monkeypatch.setattr(codecache, "_used", set())
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    return path


def _generated_sources() -> list[tuple[str, str]]:
    """What attrs compiles for a few classes, frozen (with ``__hash__``) and not."""
    seen: list[tuple[str, str]] = []
    original = attr._make._compile_and_eval

    def record(script, globs, locs=None, filename=""):
        seen.append((script, filename))
        return original(script, globs, locs, filename)

    attr._make._compile_and_eval = record
    try:

        @attrs.frozen
        class Frozen:
            name: str
            tags: tuple[str, ...] = ()

        @attrs.frozen
        class Empty:
            pass

        @attrs.define
        class Mutable:
            count: int = attrs.field(default=0, validator=attrs.validators.ge(0))

    finally:
        attr._make._compile_and_eval = original
    return seen


def _reset(monkeypatch) -> None:
    """A new process: nothing in memory, the file read again."""
    monkeypatch.setattr(codecache, "_loaded", None)
    monkeypatch.setattr(codecache, "_added", {})
    monkeypatch.setattr(codecache, "_used", set())


def test_cached_code_is_the_code_compile_returns(cache, monkeypatch) -> None:
    sources = _generated_sources()
    assert any("hash((" in script for script, _ in sources)  # a frozen class's __hash__
    expected = [
        builtins.compile(script, name, "exec", ANNOTATIONS, True) for script, name in sources
    ]
    first = [codecache.compile_cached(s, n, "exec", ANNOTATIONS, True) for s, n in sources]
    assert first == expected
    codecache.save()
    assert cache.exists() and stat.S_IMODE(cache.stat().st_mode) == 0o600
    _reset(monkeypatch)
    again = [codecache.compile_cached(s, n, "exec", ANNOTATIONS, True) for s, n in sources]
    assert again == expected and codecache._added == {}  # every one read from the file


def test_a_hash_number_differing_between_processes_hits_the_cache(cache, monkeypatch) -> None:
    script = next(s for s, _ in _generated_sources() if "hash((" in s)
    number = next(
        line.strip().rstrip(",")
        for line in script.splitlines()
        if line.strip().rstrip(",").lstrip("-").isdigit()
    )
    codecache.compile_cached(script, "<x>", "exec", ANNOTATIONS, True)
    codecache.save()
    _reset(monkeypatch)
    # the next process's random number, of one of the usual lengths (17 to 19 digits)
    other = script.replace(
        number, "-1234567890123456789" if number[0] != "-" else "98765432101234567"
    )
    code = codecache.compile_cached(other, "<x>", "exec", ANNOTATIONS, True)
    assert codecache._added == {}
    assert code == builtins.compile(other, "<x>", "exec", ANNOTATIONS, True)
    hash_code = next(c for c in code.co_consts if getattr(c, "co_name", "") == "__hash__")
    assert int(other.split("hash((\n")[1].split(",")[0]) in hash_code.co_consts


def test_flags_are_inherited_from_the_caller_as_compile_inherits_them(cache) -> None:
    source = "def f(x: Undefined) -> None: pass\n"
    # this module compiles under ``from __future__ import annotations``: the annotation is
    # a string, never evaluated (without the flag, defining f would raise NameError)
    namespace: dict = {}
    exec(codecache.compile_cached(source, "<f>", "exec"), namespace)
    assert namespace["f"].__annotations__ == {"x": "Undefined", "return": "None"}
    with pytest.raises(NameError):
        exec(codecache.compile_cached(source, "<f>", "exec", 0, True), {})


def test_other_uses_of_compile_are_the_builtins(cache) -> None:
    tree = codecache.compile_cached("x = 1", "<t>", "exec", ast.PyCF_ONLY_AST)
    assert isinstance(tree, ast.Module)
    assert codecache.compile_cached("1 + 1", "<e>", "eval", optimize=2) is not None
    assert codecache._added == {}


def test_a_damaged_file_is_ignored_and_replaced(cache) -> None:
    cache.write_bytes(b"not what the module writes")
    code = codecache.compile_cached("y = 2\n", "<y>", "exec", 0, True)
    assert code == builtins.compile("y = 2\n", "<y>", "exec", 0, True)
    codecache.save()
    assert cache.read_bytes().startswith(codecache._FORMAT)
    whole = cache.read_bytes()
    assert len(codecache._read()) == 1
    cache.write_bytes(whole[:-10])  # cut short: its index points past the end
    assert codecache._read() == {}
    cache.write_bytes(codecache._FORMAT + b"\x00garbage")
    assert codecache._read() == {}


def test_nothing_is_written_where_python_writes_no_bytecode(cache, monkeypatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    codecache.compile_cached("z = 3\n", "<z>", "exec", 0, True)
    codecache.save()
    assert not cache.exists()


# ``crm customer list`` as started: how many generated sources it compiled itself, and how
# many it found in the cache.
PROBE = (
    "import sys; from crmcore.cli.main import run; code = run(sys.argv[1:]); "
    "from crmcore import codecache; "
    "print(len(codecache._added), len(codecache._used), file=sys.stderr); sys.exit(code)"
)


def test_crm_compiles_its_generated_code_once(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "CRMCORE_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    run = {"cwd": tmp_path, "capture_output": True, "text": True, "timeout": 120}
    crm = [sys.executable, "-m", "crmcore.cli.main"]
    subprocess.run([*crm, "init"], check=True, env=env, **run)  # type: ignore[call-overload]
    subprocess.run(  # type: ignore[call-overload]
        [*crm, "--as", "rep1", "customer", "add", "--name", "Anna"], check=True, env=env, **run
    )
    outputs, counts = [], []
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "fresh")  # nothing cached yet
    for _ in range(2):
        done = subprocess.run(  # type: ignore[call-overload]
            [sys.executable, "-c", PROBE, "customer", "list"], check=True, env=env, **run
        )
        outputs.append(done.stdout)
        counts.append(tuple(int(n) for n in done.stderr.split()[-2:]))
    # the second compiled none (but a class whose random number was unusually short: the odds
    # are about one in a thousand for each)
    assert counts[0][0] > 50 and counts[1][0] <= 3 and counts[1][1] > 50
    uncached = dict(env, PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=str(tmp_path / "no"))
    plain = subprocess.run([*crm, "customer", "list"], check=True, env=uncached, **run)  # type: ignore[call-overload]
    assert outputs[0] == outputs[1] == plain.stdout and "Anna" in plain.stdout


def test_attrs_own_classes_are_compiled_through_the_cache_too(tmp_path) -> None:
    """``attr._make`` is loaded with ``compile`` already the cache's, so the classes attrs
    makes for itself while it is imported (its validators, converters …) hit it too."""
    probe = (
        "import sys; import crmcore.cli.main; import attr._make; "
        "from crmcore import codecache; "
        "print(type(attr._make.__loader__).__name__, attr._make.compile is "
        "codecache.compile_cached, len(codecache._used), file=sys.stderr)"
    )
    # one hash seed for both processes: a class whose random number has an unusual length
    # (under 17 digits, about one in a thousand) misses the cache, and with ~30 classes per
    # process a random seed made this test fail now and then (CI, 2026-12-07)
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(tmp_path), PYTHONHASHSEED="0")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    loader, patched, used = done.stderr.split()[-3:]
    assert (loader, patched) == ("_SourceLoader", "True")
    # without the loader, attrs' own classes (about 28) compile before install() patches it
    calls = (
        "import sys, builtins; seen = []; real = builtins.compile; "
        "builtins.compile = lambda *a, **k: (seen.append(a[1]), real(*a, **k))[1]; "
        "import crmcore.cli.main; "
        "print(sum('attrs generated' in str(name) for name in seen), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", calls], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stderr.split()[-1] == "0" and int(used) > 20
