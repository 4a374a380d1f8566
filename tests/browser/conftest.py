"""The dashboard in a real browser: Debian's Chromium driven by Playwright (its own browser
download cannot work here), against a real ``ledger serve`` subprocess on data the test
made. Every page a test opens must log no console error and no failed request (``Browser``
checks it at teardown); screenshots go to ``$LEDGER_ARTIFACTS_DIR/screenshots``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, sync_playwright

from ledger.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("LEDGER_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("LEDGER_ARTIFACTS_DIR", ROOT / "artifacts")) / "screenshots"
DEADLINE_S = 20.0
PROJECTED_DEADLINE_S = 60.0


@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    """One browser for the package's tests, gone with them: Playwright's sync API runs an
    event loop in this thread while it lives, and ``asyncio.run`` in the tests after
    (the SDK's async tasks, the event stream's mailbox) refuses to run inside one."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/dev test installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])  # fmt: skip
        yield browser
        browser.close()


class Watched:
    """A page and what went wrong in it: console errors, uncaught exceptions, failed
    requests, HTTP errors (those a test expects excepted)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        self.expected_statuses: set[int] = set()
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(f" {s} " in message.text for s in map(str, self.expected_statuses)):
            self.problems.append(f"console error: {message.text}")

    def _failed(self, request: Request) -> None:
        failure = request.failure or ""
        if "ERR_ABORTED" not in failure:  # a stream closed by navigating away is not a failure
            self.problems.append(f"request failed: {request.method} {request.url} {failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400 and response.status not in self.expected_statuses:
            self.problems.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    def assert_fits_its_width(self) -> None:
        """No sideways scrolling of the page itself (wide tables scroll inside their box)."""
        width = self.page.viewport_size["width"] if self.page.viewport_size else 0
        assert self.page.evaluate("document.documentElement.scrollWidth") <= width, "the page scrolls sideways"

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def browse(chromium: Browser) -> Iterator[Callable[..., Watched]]:
    """Open pages (1280 px wide unless told): each checked for problems at teardown."""
    opened: list[tuple[Watched, object]] = []

    def open_page(width: int = 1280, height: int = 900) -> Watched:
        context = chromium.new_context(viewport={"width": width, "height": height})
        watched = Watched(context.new_page())
        opened.append((watched, context))
        return watched

    yield open_page
    problems = [p for watched, _ in opened for p in watched.problems]
    for _, context in opened:
        context.close()  # type: ignore[attr-defined]
    assert problems == [], "\n".join(problems)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a ``ledger`` subprocess needs to run on ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(LEDGER_BACKEND=settings.backend.value, LEDGER_DATA_DIR=str(settings.data_dir),
               LEDGER_TOPIC=settings.topic, LEDGER_PARTITIONS=str(settings.partitions),
               LEDGER_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
               LEDGER_POSTGRES_DSN=settings.postgres_dsn, LEDGER_POSTGRES_SCHEMA=settings.postgres_schema,
               LEDGER_PROJECTOR_GROUP=settings.projector_group, LEDGER_CONSUMER_POLL_TIMEOUT_MS="100",
               LEDGER_PROJECTOR_BATCH_WAIT_MS="20", PYTHONPATH=str(ROOT), **extra)  # fmt: skip
    return env


def wait_for_health(base: str, process: subprocess.Popen[str] | None = None) -> None:
    """Until ``base`` answers ``/health`` (200, or 503 while a backend is down)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        if process is not None and process.poll() is not None:
            errors = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"ledger serve exited {process.returncode}: {errors}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code in (200, 503):
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{base} did not answer /health"
        time.sleep(0.1)


def wait_until_projected(base: str, task_id: str) -> None:
    """Until ``GET /tasks/{task_id}`` finds the task: a projector just started (a Kafka
    consumer joining its group) applies what the log already holds a few seconds later."""
    deadline = time.monotonic() + PROJECTED_DEADLINE_S
    while httpx.get(f"{base}/tasks/{task_id}", timeout=2).status_code != 200:
        assert time.monotonic() < deadline, f"{task_id} was not projected"
        time.sleep(0.1)


class Processes:
    """``ledger`` subprocesses of a test, stopped (SIGTERM, then SIGKILL) at its end."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[str]] = []

    def start(self, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-m", "ledger", *args], env=env, text=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        self.running.append(process)
        return process

    def serve(self, env: dict[str, str]) -> str:
        """``ledger serve`` on a free port; its base URL once ``/health`` answers."""
        port = free_port()
        process = self.start(env, "serve", "--port", str(port))
        base = f"http://127.0.0.1:{port}"
        wait_for_health(base, process)
        return base

    def stop(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def processes() -> Iterator[Processes]:
    running = Processes()
    yield running
    running.stop()
