"""Browser tests of the workspace: a real ``crm serve`` over a store made by
``crm init --profile retail``, driven by Debian's chromium through chromium-driver.

Fixtures (registered by the web plugin's pytest plugin, so every plugin's tests can use them):

- ``workspace_server``: a :class:`WorkspaceServer` (``url``, ``config``, ``cli(...)``,
  ``add_user(name, role, password)``, ``open()`` for a CRM on the same store to seed data).
  Plugins enabled: the retail profile's, or ``$CRMCORE_PLUGINS`` when set.
- ``browser``: a headless chromium (selenium ``WebDriver``) with a fresh profile; on a failing
  test its screenshot and page source are kept under ``$CRM_SCREENSHOTS`` (default
  ``.artifacts/screenshots`` under the rootdir). Skips, saying why, when chromium,
  chromium-driver or selenium is missing (``.ci/install-chromium`` installs them).
- ``signed_in(browser, server, name, password)``: signs in through the form.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver",)
#: Headless flags (as in .ci/install-chromium's notes): no GPU, no sandbox in containers, no
#: network of its own (updates, sync, first-run pages).
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)
START_SECONDS = 60


def crm_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "crmcore.cli.main", *args]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkspaceServer:
    """``crm serve`` in a subprocess on 127.0.0.1, over a store ``crm init --profile
    <profile>`` made in ``folder``."""

    def __init__(self, folder: Path, profile: str = "retail") -> None:
        self.folder = folder
        self.env = {**os.environ, "COLUMNS": "200"}
        for name in ("CRM_CONFIG", "CRM_STORAGE_BACKEND", "CRM_STORAGE_LOCATION", "CRM_ACTOR"):
            self.env.pop(name, None)
        self.config = folder / "crm.toml"
        self.cli("init", "--profile", profile, "--path", str(self.config), config=False)
        self.env["CRM_CONFIG"] = str(self.config)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        # files, not pipes: a pipe nobody reads fills up and blocks the server
        self._err = open(folder / "serve.err", "w+b")  # noqa: SIM115

    def start(self) -> WorkspaceServer:
        import httpx

        self.proc = subprocess.Popen(
            crm_cmd("serve", "--host", "127.0.0.1", "--port", str(self.port)),
            env=self.env,
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=self._err,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"crm serve exited: {self.log()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)
        raise AssertionError(f"crm serve did not answer within {START_SECONDS} s: {self.log()}")

    def cli(self, *args: str, input: str | None = None, config: bool = True) -> str:
        """Run ``crm ARGS`` on this store (as the system actor); its stdout. Fails the test
        with the command's stderr when it exits non-zero."""
        done = subprocess.run(
            crm_cmd(*args),
            env=self.env,
            cwd=self.folder,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"crm {' '.join(args)}: {done.stderr}"
        return done.stdout

    def add_user(self, name: str, role: str, password: str, *extra: str) -> None:
        """``crm user add NAME --role ROLE --password-stdin`` (``extra``: --team …)."""
        self.cli(
            "user", "add", name, "--role", role, "--password-stdin", *extra, input=password + "\n"
        )

    def open(self) -> Any:
        """A CRM on the same store (as ``crm`` opens it), to seed or inspect data."""
        from crmcore import open_crm

        return open_crm(str(self.config))

    def log(self) -> str:
        self._err.seek(0)
        return self._err.read().decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._err.close()


def _first(paths: tuple[str, ...]) -> str | None:
    return next((p for p in paths if os.path.exists(p)), None)


def browser_missing() -> str | None:
    """Why browser tests cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e 'plugins/web[test]')"
    if _first(CHROMIUM) is None:
        return "chromium is not installed (.ci/install-chromium installs it)"
    if _first(CHROMEDRIVER) is None:
        return "chromium-driver is not installed (.ci/install-chromium installs it)"
    return None


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless chromium with a fresh profile folder, closed (and the folder removed)
    after the block."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="crm-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = _first(CHROMIUM) or ""
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--lang=en-US")
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    driver = webdriver.Chrome(service=Service(_first(CHROMEDRIVER) or ""), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot_folder(config: pytest.Config) -> Path:
    chosen = os.environ.get("CRM_SCREENSHOTS")
    return Path(chosen) if chosen else Path(config.rootpath) / ".artifacts" / "screenshots"


def keep_evidence(driver: Any, item: pytest.Item) -> Path | None:
    """Save ``driver``'s screenshot and page source for a failed test; the PNG's path."""
    folder = screenshot_folder(item.config)
    folder.mkdir(parents=True, exist_ok=True)
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in item.nodeid)[-150:]
    png = folder / f"{stem}.png"
    try:
        driver.save_screenshot(str(png))
        (folder / f"{stem}.html").write_text(driver.page_source, encoding="utf-8")
    except Exception:  # the browser may be the thing that failed
        return None
    return png


def sign_in(driver: Any, server: WorkspaceServer, name: str, password: str) -> None:
    """Sign in through the form (typing, then Enter), landing on My day."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{server.url}/login")
    driver.find_element(By.ID, "username").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password + Keys.ENTER)
    wait_for(driver, lambda d: not d.current_url.split("?")[0].endswith("/login"))


#: What chromedriver says, as a plain ``WebDriverException``, when an element read belongs to
#: a document the page has just navigated away from (a stale reference by another name).
_LEFT_DOCUMENT = "does not belong to the document"


def wait_for(driver: Any, condition: Any, seconds: float = 20) -> Any:
    """Wait until ``condition(driver)`` is truthy. An element not there yet, or replaced while
    it was read (the page was navigating: a stale reference, or chromedriver's "node does not
    belong to the document"), counts as "not yet" and is read again, rather than failing the
    test on a busy machine."""
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        WebDriverException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    def reread(d: Any) -> Any:
        try:
            return condition(d)
        except (NoSuchElementException, StaleElementReferenceException):
            raise
        except WebDriverException as exc:
            if _LEFT_DOCUMENT in (exc.msg or ""):
                return False
            raise

    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, seconds, ignored_exceptions=ignored).until(reread)


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def workspace_server(tmp_path: Path) -> Iterator[WorkspaceServer]:
    """A retail store with ``crm serve`` not yet started: seed it, then ``.start()``."""
    server = WorkspaceServer(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[Any]:
    why = browser_missing()
    if why is not None:
        pytest.skip(f"browser test skipped: {why}")
    with chromium() as driver:
        yield driver
        report = getattr(request.node, "crm_call_report", None)
        if report is not None and report.failed:
            png = keep_evidence(driver, request.node)
            if png is not None:
                print(f"screenshot kept: {png}", file=sys.stderr)
