"""Real services for integration tests: Redis, a Celery worker and an SMTP server.

Redis and the worker are subprocesses stopped by their PID; the SMTP sink is an aiosmtpd
server on a thread of this process. `publishing_to` points this process's Celery app at the
same broker and queue, so what the code under test publishes reaches the worker.
"""

import email
import email.policy
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def wait_until(condition, *, timeout: float, interval: float = 0.05, message: str = "", workers=()):
    """Poll `condition` until it returns something truthy; that value, or TimeoutError.
    RuntimeError at once if one of `workers` (WorkerProcess) exits meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        for worker in workers:
            if worker.poll() is not None:
                raise RuntimeError(f"{worker} exited with {worker.poll()}")
        if time.monotonic() > deadline:
            raise TimeoutError(message or f"condition not met within {timeout}s")
        time.sleep(interval)


# --- Redis -----------------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of our own on a fixed free port, which a test may stop and start again
    (the broker going down); never the shared Redis of REDIS_URL."""

    def __init__(self):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("Install redis-server (make test installs it).")
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> None:
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port),
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@contextmanager
def private_redis():
    redis = PrivateRedis()
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@contextmanager
def redis_server():
    """The Redis named by REDIS_URL (CI), or a private redis-server on a free port."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with private_redis() as redis:
        yield redis.url


# --- Celery worker ---------------------------------------------------------------------------

# Runs `celery worker` with the project's app, first making `queue` the app's default queue:
# then whatever the worker publishes itself (retries, the sweeper, digests) stays on the
# test's own queue instead of the shared default "celery" queue.
WORKER_ON_OWN_QUEUE = (
    "import os, sys\n"
    "from config.celery import app\n"
    "app.conf.task_default_queue = os.environ['MILEPOST_TEST_QUEUE']\n"
    "app.worker_main(['worker', *sys.argv[1:]])\n"
)


class WorkerProcess:
    """A `celery worker --pool=solo` subprocess; `kill()` is SIGKILL, as a crash would be."""

    def __init__(self, command: list[str], env: dict, log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.pid = self.process.pid

    def poll(self):
        return self.process.poll()

    def wait_until_ready(self, timeout: float = 60.0) -> None:
        """Until the worker says it consumes its queue (for timings that exclude start-up)."""

        def ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited; see {self.log_path}")
            return " ready." in self.log_path.read_text(errors="replace")

        wait_until(ready, timeout=timeout, interval=0.1, message=f"worker not ready: {self}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()

    def __str__(self):
        return f"worker {self.pid} (log {self.log_path})"


def _worker_env(broker_url: str, extra_env: dict | None) -> dict:
    return {
        **os.environ,
        "REDIS_URL": broker_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        **(extra_env or {}),
    }


@contextmanager
def celery_worker(broker_url: str, queue: str, extra_env: dict | None = None):
    """A real `celery worker` subprocess consuming `queue`; stopped by its PID afterwards."""
    celery = Path(sys.executable).with_name("celery")
    command = [
        str(celery), "-A", "config", "worker", "--pool=solo", "--without-gossip",
        "--without-mingle", "--loglevel=INFO", "-Q", queue, "-n", f"{queue}@%h",
    ]  # fmt: skip
    worker = WorkerProcess(
        command, _worker_env(broker_url, extra_env), ROOT / "var" / f"{queue}.log"
    )
    try:
        yield worker.process
    finally:
        worker.stop()


def start_outbox_worker(
    broker_url: str, queue: str, *, name: str = "worker", extra_env: dict | None = None
) -> WorkerProcess:
    """A worker on the test database whose own publishing stays on `queue`; the caller stops
    (or kills) it. `extra_env` carries EMAIL_URL and the OUTBOX_* settings."""
    env = _worker_env(
        broker_url,
        {"DATABASE_URL": test_database_url(), "MILEPOST_TEST_QUEUE": queue, **(extra_env or {})},
    )
    command = [
        sys.executable, "-c", WORKER_ON_OWN_QUEUE, "--pool=solo", "--without-gossip",
        "--without-mingle", "--without-heartbeat", "--loglevel=INFO", "-Q", queue,
        "-n", f"{queue}-{name}@%h",
    ]  # fmt: skip
    return WorkerProcess(command, env, ROOT / "var" / f"{queue}-{name}.log")


@contextmanager
def outbox_worker(broker_url: str, queue: str, **options):
    worker = start_outbox_worker(broker_url, queue, **options)
    try:
        yield worker
    finally:
        worker.stop()


def test_database_url() -> str:
    """DATABASE_URL of the database this test run uses (pytest-django's test database), for
    worker subprocesses; on SQLite that is a file (config/settings.py), never memory."""
    from django.db import connection

    database = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(database["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            raise RuntimeError("A worker cannot share an in-memory SQLite database.")
        return f"sqlite:///{Path(name).resolve()}"
    if connection.vendor == "postgresql":
        user = quote(database.get("USER") or "", safe="")
        password = quote(database.get("PASSWORD") or "", safe="")
        credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = database.get("HOST") or "127.0.0.1"
        port = database.get("PORT") or 5432
        return f"postgres://{credentials}{host}:{port}/{database['NAME']}"
    raise RuntimeError(f"no worker DATABASE_URL for {connection.vendor}")


test_database_url.__test__ = False  # a helper, not a test, despite its name


@contextmanager
def publishing_to(broker_url: str, queue: str):
    """Point this process's Celery app at `broker_url`, eager mode off, publishing to `queue`;
    restored afterwards. The cached connection pool is forgotten both ways, and the app is made
    the current one meanwhile (a `Celery()` made elsewhere may have taken that place)."""
    from celery import current_app

    from config.celery import app

    previous = current_app._get_current_object()
    keys = ("broker_url", "task_always_eager", "task_default_queue")
    saved = {key: app.conf[key] for key in keys}

    def drop_connections():
        # Forget, not close: kombu keeps pools in a registry keyed by URL, and the one of the
        # URL restored afterwards must still be usable.
        app._pool = None
        amqp = app.__dict__.get("amqp")
        if amqp is not None:
            amqp._producer_pool = None

    app.conf.update(broker_url=broker_url, task_always_eager=False, task_default_queue=queue)
    drop_connections()
    app.set_current()  # shared tasks resolve to the current app
    try:
        yield app
    finally:
        drop_connections()
        app.conf.update(saved)
        previous.set_current()


# --- SMTP ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMail:
    at: float  # time.monotonic() when the sink accepted it
    recipients: tuple[str, ...]
    message: EmailMessage


class SmtpSink:
    """An SMTP server on a free loopback port that keeps every message it accepts.

    `refuse_first=N` answers the first N DATA commands with `refusal` (451: try again later);
    `stop()` and `start()` take it off and back onto the same port (the mail server is down).
    """

    def __init__(self, *, refuse_first: int = 0, refusal: str = "451 4.3.0 Try again later"):
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.refuse_first = refuse_first
        self.refusal = refusal
        self.received: list[ReceivedMail] = []
        self.attempt_times: list[float] = []  # every DATA command, accepted or refused
        self._lock = threading.Lock()
        self._controller = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        assert self._controller is None, "already running"
        # aiosmtpd logs every SMTP command at INFO; -s output is for the tests' own figures.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        # A fixed server_hostname: aiosmtpd would otherwise look up this machine's FQDN.
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, server_hostname="sink.milepost.test"
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        with self._lock:
            self.attempt_times.append(time.monotonic())
            if len(self.attempt_times) <= self.refuse_first:
                return self.refusal
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.received.append(ReceivedMail(time.monotonic(), tuple(envelope.rcpt_tos), message))
        return "250 2.0.0 Accepted"

    @property
    def count(self) -> int:
        return len(self.received)

    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [mail.message for mail in self.received]

    def per_recipient(self) -> Counter:
        with self._lock:
            return Counter(address for mail in self.received for address in mail.recipients)

    def wait_for(self, count: int, timeout: float = 60.0, workers=()) -> list[EmailMessage]:
        wait_until(
            lambda: self.count >= count,
            timeout=timeout,
            message=f"the SMTP sink got {self.count} of {count} mails in {timeout}s",
            workers=workers,
        )
        return self.messages()


@contextmanager
def smtp_sink(**options):
    sink = SmtpSink(**options)
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()
