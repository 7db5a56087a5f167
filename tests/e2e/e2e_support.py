"""Helpers for the browser tests: Debian's chromium, relief_hub served by a child process, the
messages its console channel prints, and a browser tab that records what went wrong on a page.

Nothing here downloads a browser: Playwright drives the chromium named by ``NGO_KIT_CHROMIUM``
(default ``/usr/bin/chromium``, which ``.ci/run`` installs with apt-get).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from playwright.sync_api import ConsoleMessage, Locator, Page, Request, Response, expect

REPO = Path(__file__).resolve().parents[2]
RELIEF_HUB = REPO / "examples" / "relief_hub"
SCREENSHOTS = REPO / "build" / "screenshots"

DEFAULT_CHROMIUM = "/usr/bin/chromium"
#: The network is closed: without these, chromium keeps calling home and floods refused connections.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: The console channel's header line: ``[ngo-kit <channel> -> <recipient>] <subject>``.
MESSAGE_HEADER = re.compile(r"^\[ngo-kit (?P<channel>\S+) -> (?P<recipient>.+?)\] (?P<subject>.*)$")
#: A line the server logs (uvicorn, the logging module): it ends a message's body.
LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)[: ]")
DOCUMENT_4XX = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d")
VERIFICATION_CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")


def chromium_executable() -> str:
    """The chromium Playwright drives: ``NGO_KIT_CHROMIUM``, else Debian's ``/usr/bin/chromium``."""
    return os.environ.get("NGO_KIT_CHROMIUM") or DEFAULT_CHROMIUM


def missing_chromium(path: str) -> str | None:
    """Why ``path`` cannot be launched, or ``None`` when it can."""
    if not os.path.isfile(path):
        return f"no chromium at {path} (apt-get install chromium, or set NGO_KIT_CHROMIUM)"
    if not os.access(path, os.X_OK):
        return f"chromium at {path} is not executable"
    return None


@dataclass(frozen=True)
class Message:
    """One message the console channel printed."""

    channel: str
    recipient: str
    subject: str
    body: str

    def verification_code(self) -> str | None:
        """The first 6-digit number in the subject or body, if any."""
        found = VERIFICATION_CODE.search(f"{self.subject}\n{self.body}")
        return found.group(0) if found else None


def parse_messages(lines: Sequence[str]) -> list[Message]:
    """The messages in a server's output, oldest first.

    A message is a header line and the body lines after it, up to the next header or the next
    line the server logs.
    """
    found: list[Message] = []
    header: re.Match[str] | None = None
    body: list[str] = []

    def close() -> None:
        if header is not None:
            found.append(
                Message(
                    header["channel"],
                    header["recipient"],
                    header["subject"],
                    "\n".join(body).strip(),
                )
            )

    for line in lines:
        match = MESSAGE_HEADER.match(line)
        if match or LOG_LINE.match(line):
            close()
            header, body = match, []
        elif header is not None:
            body.append(line)
    close()
    return found


class ServerOutput:
    """Collects a child process's output line by line, in a thread, and lets tests wait on it."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def text(self) -> str:
        """Everything printed so far."""
        with self._changed:
            return "\n".join(self.lines)

    def messages(self) -> list[Message]:
        """The messages printed so far, oldest first."""
        with self._changed:
            lines = list(self.lines)
        return parse_messages(lines)

    def wait_for_message(self, recipient: str, *, after: int = 0, timeout: float = 10.0) -> Message:
        """The first message to ``recipient`` beyond the first ``after`` ones sent to them.

        The outbox delivers after the transaction commits, so the message may still be on its
        way when the page that sent it has loaded: wait for it.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                printed = parse_messages(self.lines)
                if printed and not printed[-1].body and self._thread.is_alive():
                    printed.pop()  # its header is read, its body is still on its way
                mine = [m for m in printed if m.recipient == recipient]
                if len(mine) > after:
                    return mine[after]
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    break
                self._changed.wait(min(left, 0.2))
        raise AssertionError(
            f"no message to {recipient} within {timeout} s; the server printed:\n{self.text()}"
        )

    def join(self, timeout: float) -> None:
        """Wait for the stream to close."""
        self._thread.join(timeout)


def free_port() -> int:
    """A TCP port nobody listens on right now, on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    """relief_hub running in a child process, and what it printed."""

    url: str
    database_url: str
    process: subprocess.Popen[str]
    output: ServerOutput

    def verification_code(self, recipient: str, *, after: int = 0) -> str:
        """The 6-digit code in the message the console channel printed for ``recipient``."""
        message = self.output.wait_for_message(recipient, after=after)
        code = message.verification_code()
        assert code is not None, f"no 6-digit code in the message to {recipient}: {message}"
        return code

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s) and wait for its output to end."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.output.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_relief_hub(
    database_url: str, *, env: dict[str, str], timeout: float = 60.0
) -> LiveServer:
    """Serve ``examples/relief_hub/demo.py`` on a free port of 127.0.0.1 over ``database_url``.

    Returns once ``/api/health`` answers 200. The caller must ``stop()`` it.
    """
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(RELIEF_HUB / "demo.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--database-url",
            database_url,
        ],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    assert process.stdout is not None
    server = LiveServer(
        f"http://127.0.0.1:{port}", database_url, process, ServerOutput(process.stdout)
    )
    try:
        _wait_until_healthy(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_healthy(server: LiveServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(
                f"relief_hub exited with status {server.process.returncode} before it served; "
                f"it printed:\n{server.output.text()}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}/api/health", timeout=2) as res:
                if res.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise AssertionError(
        f"relief_hub did not answer /api/health within {timeout} s; "
        f"it printed:\n{server.output.text()}"
    )


@dataclass
class Tab:
    """A browser page for one test: it names its screenshots after the test, and records every
    console error, uncaught exception, failed request and error response it sees."""

    page: Page
    base_url: str
    test_name: str
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"uncaught: {exc}"))
        self.page.on("requestfailed", self._request_failed)
        self.page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        source = message.location.get("url", "")
        if message.type != "error":
            return
        # The browser logs a document's own 4xx as a failed load; a page that shows a refused
        # form answers 4xx on purpose (the response check below lets 4xx documents pass).
        if source == self.page.url and DOCUMENT_4XX.match(message.text):
            return
        self.problems.append(f"console error on {self.page.url} ({source}): {message.text}")

    def _request_failed(self, request: Request) -> None:
        # The browser aborts a sub-request (the icon, say) it no longer needs when the tab
        # moves on to the next page; that says nothing about the app. A server that fails
        # shows up as a refused or empty connection, or as an error response below.
        if request.failure == "net::ERR_ABORTED":
            return
        self.problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _response(self, response: Response) -> None:
        # A page may answer a refused form with 4xx on purpose; anything else 4xx is broken.
        document = response.request.resource_type == "document"
        if response.status >= 500 or (response.status >= 400 and not document):
            self.problems.append(f"{response.status} for {response.request.method} {response.url}")

    def open(self, path: str) -> Response:
        """Go to ``path`` (relative to the server, or a full URL) and return the page's
        response, which must be a success."""
        response = self.page.goto(path if "://" in path else self.base_url + path)
        assert response is not None, path
        assert response.ok, f"{path} answered {response.status}: {self.page.content()[:2000]}"
        return response

    def by_id(self, testid: str) -> Locator:
        """The element with ``data-testid=testid``."""
        return self.page.get_by_test_id(testid)

    def id_in(self, prefix: str, text: str) -> str:
        """The id in the ``data-testid`` of the one ``<prefix>-<id>`` element that shows ``text``
        (``id_in("shift", "Sort donations")`` -> the shift's id)."""
        found = self.page.locator(f'[data-testid^="{prefix}-"]').filter(has_text=text)
        expect(found).to_have_count(1)
        testid = found.get_attribute("data-testid")
        assert testid is not None
        return testid.removeprefix(f"{prefix}-")

    def submit(self, button: Locator) -> Response:
        """Click a form's submit button and wait for the page it leads to (after a 303, the
        next page), which must be a success."""
        with self.page.expect_navigation() as navigation:
            button.click()
        response = navigation.value
        assert response is not None
        assert response.ok, (
            f"{response.request.method} {response.url} answered {response.status}: "
            f"{self.page.locator('main').inner_text()[:2000]}"
        )
        return response

    def shoot(self, name: str) -> Path:
        """Save a full-page screenshot as ``build/screenshots/<test>-<name>.png``."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.test_name}-{_file_safe(name)}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_no_problems(self) -> None:
        """Fail with every problem recorded so far."""
        assert not self.problems, "the browser saw problems:\n" + "\n".join(self.problems)


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "page"


def screenshot_prefix(node_name: str) -> str:
    """A pytest node's name, safe for a file name (``test_x[zh_CN]`` -> ``test_x-zh_CN``)."""
    return _file_safe(node_name)
