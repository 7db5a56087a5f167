"""Load test: relief_hub's API under locust, then every invariant checked against the requests.

    python benchmarks/load/run.py                       # PostgreSQL on loopback, 2 app processes
    python benchmarks/load/run.py -u 120 -r 10 -t 3m --workers 2 --outbox-workers 1
    python benchmarks/load/run.py --database-url sqlite:////tmp/relief.sqlite --workers 1 \
        --outbox-workers 0                              # the one-process SQLite set-up

What it does, all on loopback and bounded in time (``--timeout`` kills everything it started):

1. makes a scratch database for the run: a new schema on PostgreSQL (``--database-url`` names
   the server and database; no other schema is touched; behind PgBouncer in transaction mode,
   where a connection's ``search_path`` does not follow the client, a new database), a new
   database on MySQL/MariaDB, a new file on SQLite; and drops it afterwards (``--keep`` keeps it);
2. migrates it and seeds two organisations with staff, members who are approved volunteers and
   hold points, items with stock (one of them scarce), a reward backed by stock, and shifts of
   two places;
3. starts a local SMTP sink, ``--outbox-workers`` processes of ``ngo-kit outbox work --forever``
   and relief_hub's API under uvicorn as ``--workers`` processes, with production settings:
   ``NGO_KIT_ENVIRONMENT=production``, a random secret, the SMTP channel, no access log;
4. runs ``locust --headless`` in its own process with the mix in ``locustfile.py``;
5. reports requests per second and p50/p99 latency per request and overall, as Markdown, with
   the load average and the CPU time per request of the app and the outbox workers, and
   checks: no failed request, ``kit.verify()`` clean, every balance equal to its ledger, every
   stock level equal to its moves, nothing negative, a shift never over capacity, and the rows
   written equal to the requests that succeeded (accounts, sessions, awards, issues,
   redemptions, sign-ups, delivered emails). Exit status 1 when anything is off, 2 when the
   run timed out.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import email.parser
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # comes with locust; no stubs installed
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

HERE = Path(__file__).resolve().parent
BENCHMARKS = HERE.parent
ROOT = BENCHMARKS.parent
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

from load.app import MODULES, build_kit, relief_hub  # noqa: E402

from ngo_kit import Kit  # noqa: E402
from ngo_kit.kit import normalise_url  # noqa: E402
from ngo_kit.tenancy import SYSTEM  # noqa: E402
from ngo_kit.testing import search_path_follows  # noqa: E402

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PASSWORD = "relief-hub-load-test-password"
ORGS = {"relief-north": "Relief Hub North", "relief-south": "Relief Hub South"}
PLENTY = ("water-5l", "blanket", "rice-10kg")
SCARCE = "medkit"
REWARD_ITEM = "hygiene-kit"
LOCATION = "main"
NGO_KIT = str(Path(sys.executable).parent / "ngo-kit")
#: The app: no access log, warnings only (production logging, not a line per request).
UVICORN = [
    *(sys.executable, "-m", "uvicorn", "load.app:create", "--factory"),
    *("--app-dir", str(BENCHMARKS), "--host", "127.0.0.1"),
    *("--no-access-log", "--log-level", "warning"),
]
LOCUST = [
    *(sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless"),
    *("--only-summary", "--stop-timeout", "10", "--loglevel", "WARNING"),
]


# --- the scratch database -----------------------------------------------------------------


class ScratchDatabase:
    """A database that exists for one run only: a schema, a database or a file of its own."""

    def __init__(self, url: str) -> None:
        self.base = normalise_url(url)
        self.backend = self.base.get_backend_name()
        self.name = f"ngo_kit_load_{os.getpid()}_{secrets.token_hex(3)}"
        self.created = False
        if self.backend == "sqlite":
            path = Path(self.base.database or "")
            if not self.base.database or self.base.database == ":memory:":
                raise SystemExit("--database-url sqlite:///FILE needs a file")
            if path.exists():
                raise SystemExit(f"{path} exists: give a new file, the run deletes it afterwards")
            self.path: Path | None = path
        else:
            self.path = None
        #: PostgreSQL: a schema of its own, or a database where the URL cannot choose a schema
        self.schema = self.backend == "postgresql" and search_path_follows(self.base)

    @property
    def url(self) -> str:
        """The URL the kit and the app use."""
        if self.schema:
            url = self.base.update_query_dict({"options": f"-csearch_path={self.name}"})
        elif self.backend in ("postgresql", "mysql"):
            url = self.base.set(database=self.name)
        else:
            url = self.base
        return url.render_as_string(hide_password=False)

    def create(self) -> None:
        """Create the schema / database (SQLite: the kit creates the file)."""
        if self.schema:
            self._admin(f'CREATE SCHEMA "{self.name}"')
        elif self.backend == "postgresql":
            self._admin(f'CREATE DATABASE "{self.name}"')
        elif self.backend == "mysql":
            self._admin(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        self.created = True

    def drop(self) -> None:
        """Drop what ``create`` made, and nothing else."""
        if not self.created:
            return
        if self.schema:
            self._admin(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')
        elif self.backend == "postgresql":  # a pooler may still hold connections to it
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        elif self.backend == "mysql":
            self._admin(f"DROP DATABASE IF EXISTS `{self.name}`")
        elif self.path is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self.created = False

    def _admin(self, statement: str) -> None:
        engine = sa.create_engine(self.base, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(statement))
        finally:
            engine.dispose()


# --- the SMTP sink --------------------------------------------------------------------------


class MailSink:
    """An SMTP server on loopback that counts messages by ngo-kit's message id."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._parser = email.parser.BytesHeaderParser()
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    @property
    def port(self) -> int:
        return int(self.controller.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Count the message (aiosmtpd handler hook)."""
        content = envelope.original_content or b""
        headers = self._parser.parsebytes(content)
        with self._lock:
            self.received[str(headers.get("X-NGO-Kit-Message-Id", "?"))] += 1
        return "250 Message accepted"

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def counts(self) -> tuple[int, int]:
        """(messages received, distinct message ids)."""
        with self._lock:
            return sum(self.received.values()), len(self.received)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- seeding --------------------------------------------------------------------------------


@dataclass
class Seeded:
    """What the seed wrote, for the locustfile and for the checks afterwards."""

    doc: dict[str, Any] = field(default_factory=dict)
    accounts: int = 0
    memberships: int = 0
    messages: int = 0
    stock_received: dict[str, Decimal] = field(default_factory=dict)


def seed(kit: Kit, args: argparse.Namespace) -> Seeded:
    """Organisations, staff, members with points and volunteer profiles, stock and shifts."""
    out = Seeded()
    first_day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    out.doc = {
        "api": "/api",
        "password": PASSWORD,
        "shifts_from": first_day.isoformat(),
        "shift_days": max(1, -(-args.shifts // 24)),
        "orgs": {},
    }
    for slug, name in ORGS.items():
        kit.create_organisation(slug, name, timezone="Asia/Shanghai", locale="zh_CN")
        staff = [f"staff{i}@{slug}.example.org" for i in range(args.staff)]
        members = [f"member{i}@{slug}.example.org" for i in range(args.members)]
        ids = _register_all(kit, slug, staff + members, threads=2)
        out.accounts += len(ids)
        out.memberships += len(ids)
        out.messages += len(ids)  # one email verification each
        member_ids = [ids[e] for e in members]
        with kit.begin(org=slug, actor=SYSTEM) as tx:
            for address in staff:
                tx.tenancy.set_role(ids[address], "staff")
            for member in member_ids:
                tx.volunteer.save_profile(user_id=member, city="Wuhan")
                tx.volunteer.approve(member)
            tx.points.award_many(
                awards=dict.fromkeys(member_ids, args.member_points),
                reason="welcome",
                key="load-seed",
            )
        with kit.begin(org=slug, actor=SYSTEM) as tx:
            tx.inventory.create_location(code=LOCATION, name="Main warehouse")
            received = {code: Decimal(1_000_000) for code in PLENTY}
            received[SCARCE] = Decimal(args.scarce_stock)
            received[REWARD_ITEM] = Decimal(args.reward_stock)
            for code, quantity in received.items():
                tx.inventory.create_item(code=code, name=code.replace("-", " ").title())
                tx.inventory.receive(
                    item=code,
                    quantity=quantity,
                    to=LOCATION,
                    donor="Wuhan Red Cross",
                    donation=f"load-{slug}-{code}",
                )
                out.stock_received[f"{slug}/{code}"] = quantity
            reward = tx.points.add_reward(
                code="hygiene-kit", name="Hygiene kit", price=args.reward_price
            )
            tx.rewards_stock.link(reward_id=reward.id, item=REWARD_ITEM, location=LOCATION)
        with kit.begin(org=slug, actor=SYSTEM) as tx:
            activity = tx.volunteer.create_activity(title="Sorting donations", place="Main hall")
            shifts = tx.volunteer.create_shifts(
                {
                    "activity_id": activity.id,
                    "starts_at": first_day + dt.timedelta(hours=i),
                    "ends_at": first_day + dt.timedelta(hours=i, minutes=50),
                    "capacity": args.shift_capacity,
                }
                for i in range(args.shifts)
            )
        out.doc["orgs"][slug] = {
            "staff": staff,
            "members": [{"email": e, "id": str(ids[e])} for e in members],
            "shifts": [str(s.id) for s in shifts],
            "reward": str(reward.id),
            "items": {"plenty": list(PLENTY), "scarce": SCARCE},
            "location": LOCATION,
        }
    return out


def _register_all(kit: Kit, org: str, emails: list[str], *, threads: int) -> dict[str, uuid.UUID]:
    """Register people through the service (argon2id hashing runs in parallel threads)."""

    def register(address: str) -> tuple[str, uuid.UUID]:
        with kit.begin(org=org, actor=SYSTEM) as tx:
            user = tx.registration.register(
                email=address, password=PASSWORD, display_name=address.split("@")[0]
            )
        return address, user.id

    with ThreadPoolExecutor(threads) as pool:
        return dict(pool.map(register, emails))


# --- processes ------------------------------------------------------------------------------


class Processes:
    """The child processes of a run, each in its own process group, ended by id."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        handle = log.open("wb")
        proc = subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        handle.close()
        self.running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=grace)
        with suppress(ValueError):
            self.running.remove(proc)

    def kill_all(self) -> None:
        """SIGKILL every child still running (the watchdog's thread may call it too)."""
        for proc in list(self.running):
            if proc.poll() is None:
                _signal_group(proc, signal.SIGKILL)
                with suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
            with suppress(ValueError):
                self.running.remove(proc)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # the group start_new_session gave this child


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail if the process ends or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with status {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the app did not answer {url} within {timeout:.0f} s")


# --- CPU accounting ---------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds the run's processes spend while locust runs.

    Requests per second depend on what else the cores run; CPU time per request much less, so
    it carries over to other machines. Counted: each named child process with its descendants
    (the app's uvicorn processes, the outbox workers) and locust (``_children_cpu``). Not
    counted: the database server, which other work shares on this machine (its processes come
    and go with the pool's overflow connections, so they cannot be followed reliably either).
    SQLite's work runs inside the app processes, so it is counted there.
    """

    def __init__(self, groups: dict[str, list[subprocess.Popen[bytes]]]) -> None:
        self.groups = groups
        self.before: dict[str, dict[int, float]] = {}

    def _read(self) -> dict[str, dict[int, float]]:
        return {
            name: _cpu_by_pid([pid for p in procs for pid in (p.pid, *_descendants(p.pid))])
            for name, procs in self.groups.items()
            if procs
        }

    def start(self) -> None:
        self.before = self._read()

    def stop(self) -> dict[str, float]:
        """CPU seconds per group since ``start``."""
        after = self._read()
        return {
            name: sum(s - self.before.get(name, {}).get(pid, 0.0) for pid, s in pids.items())
            for name, pids in after.items()
        }


def _children_cpu() -> float:
    """User + system CPU seconds of this process's children that ended and were waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _descendants(pid: int) -> list[int]:
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each of ``pids`` still running."""
    out: dict[int, float] = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        out[pid] = times.user + times.system
    return out


def cpu_line(cpu: dict[str, float], requests: int) -> str:
    """CPU milliseconds per request, by process group."""
    parts = [f"{name} {seconds * 1000 / requests:.1f} ms" for name, seconds in cpu.items()]
    app = sum(s for name, s in cpu.items() if name != "locust")
    return (
        f"CPU per request: {', '.join(parts)}; app and workers {app * 1000 / requests:.1f} ms"
        f" (about {requests / app:.0f} requests a second per core, database server not counted)"
    )


# --- results --------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of locust's statistics."""

    name: str
    count: int
    failures: int
    rps: float
    p50: float
    p99: float
    expected_409: int = 0


def read_stats(prefix: Path, tally: dict[str, int]) -> tuple[list[Row], Row]:
    """Per-request rows and the overall row: latency from locust's ``<prefix>_stats.csv``,
    counts from the locustfile's tally (locust's CSV leaves out the requests that finish while
    the users stop)."""
    rows: list[Row] = []
    total: Row | None = None
    with Path(f"{prefix}_stats.csv").open(encoding="utf-8") as handle:
        for line in csv.DictReader(handle):
            row = Row(
                name=line["Name"],
                count=int(line["Request Count"]),
                failures=int(line["Failure Count"]),
                rps=float(line["Requests/s"]),
                p50=_ms(line["50%"]),
                p99=_ms(line["99%"]),
            )
            if line["Name"] == "Aggregated":
                total = row
            else:
                rows.append(row)
    if total is None or not total.rps:
        raise RuntimeError("locust wrote no Aggregated row")
    seconds = total.count / total.rps  # the time locust's rates are over
    outcomes: list[tuple[str, str, int]] = []  # (request, status, requests)
    for key, n in tally.items():
        name, status, _code = key.rsplit(" ", 2)
        outcomes.append((name, status, n))
    for row in rows:
        failed = f"FAILED {row.name}"
        row.count = sum(n for name, _, n in outcomes if name == row.name)
        row.rps = row.count / seconds
        row.expected_409 = sum(
            n if name == row.name else -n
            for name, status, n in outcomes
            if name in (row.name, failed) and status == "409"
        )
        row.failures = max(row.failures, sum(n for name, _, n in outcomes if name == failed))
    total.count = sum(r.count for r in rows)
    total.rps = total.count / seconds
    total.expected_409 = sum(r.expected_409 for r in rows)
    total.failures = max(total.failures, sum(r.failures for r in rows))
    order = [
        "sign-in",
        "register",
        "me",
        "balance",
        "shifts",
        "shift sign-up",
        "redeem",
        "award",
        "award (retry)",
        "issue",
        "stock",
        "member standing",
    ]
    rows.sort(key=lambda r: order.index(r.name) if r.name in order else len(order))
    return rows, total


def _ms(value: str) -> float:
    return float(value) if value not in ("", "N/A") else float("nan")


def read_failures(prefix: Path) -> list[str]:
    path = Path(f"{prefix}_failures.csv")
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        return [
            f"{r['Occurrences']} x {r['Method']} {r['Name']}: {r['Error']}"
            for r in csv.DictReader(handle)
        ]


def markdown(rows: list[Row], total: Row, title: str) -> str:
    """The table for docs/performance.md."""
    lines = [
        title,
        "",
        "| request | requests | per second | p50 (ms) | p99 (ms) | expected 409 | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in [*rows, total]:
        name = "**all**" if r is total else r.name
        lines.append(
            f"| {name} | {r.count:,} | {r.rps:.1f} | {r.p50:.0f} | {r.p99:.0f} "
            f"| {r.expected_409:,} | {r.failures} |"
        )
    return "\n".join(lines)


# --- invariants -----------------------------------------------------------------------------


def check(kit: Kit, seeded: Seeded, tally: dict[str, int], sink: MailSink) -> list[str]:
    """Everything that must hold after the run; returns what does not."""
    problems = [f"verify: {p}" for p in kit.verify()]

    def ok(key: str) -> int:
        return int(tally.get(key, 0))

    with kit.engine.connect() as conn:

        def one(sql: str, **params: Any) -> int:
            return int(conn.execute(sa.text(sql), params).scalar() or 0)

        key = conn.dialect.identifier_preparer.quote("key")  # a reserved word on MariaDB

        def expect(what: str, found: int, wanted: int) -> None:
            if found != wanted:
                problems.append(f"{what}: {found} in the database, {wanted} expected")

        # points: every balance is its ledger's sum, members never negative, operations balance
        drift = one(
            "SELECT count(*) FROM (SELECT a.id FROM points_account a "
            "LEFT JOIN points_entry e ON e.account_id = a.id "
            "GROUP BY a.id, a.balance HAVING a.balance <> COALESCE(SUM(e.amount), 0)) d"
        )
        expect("points accounts whose balance differs from their entries", drift, 0)
        expect(
            "member points accounts below zero",
            one("SELECT count(*) FROM points_account WHERE kind = 'member' AND balance < 0"),
            0,
        )
        expect(
            "points operations whose entries do not sum to zero",
            one(
                "SELECT count(*) FROM (SELECT txn_id FROM points_entry GROUP BY txn_id "
                "HAVING SUM(amount) <> 0) t"
            ),
            0,
        )
        # stock: every level is its moves in minus its moves out, never negative
        problems += _stock_problems(conn, seeded)
        # rows written = requests that succeeded
        expect(
            "accounts",
            one("SELECT count(*) FROM registration_account"),
            seeded.accounts + ok("register 201 -"),
        )
        expect(
            "memberships",
            one("SELECT count(*) FROM core_membership"),
            seeded.memberships + ok("register 201 -"),
        )
        expect(
            "sign-in sessions",
            one("SELECT count(*) FROM registration_session"),
            ok("sign-in 200 -"),
        )
        expect(
            "awards (a retried key counted once)",
            one(
                f"SELECT count(*) FROM points_txn WHERE kind = 'award' AND {key} LIKE 'load-award:%'"
            ),
            ok("award 201 -"),
        )
        expect(
            "awards retried that made a second transaction",
            ok("award (retry) 201 not-idempotent"),
            0,
        )
        expect(
            "issues",
            one(
                "SELECT count(DISTINCT group_id) FROM inventory_move "
                "WHERE kind = 'issue' AND recipient_ref LIKE 'load-household-%'"
            ),
            ok("issue 201 -"),
        )
        redeemed = ok("redeem 201 -")
        expect("redemptions", one("SELECT count(*) FROM points_redemption"), redeemed)
        expect(
            "redemptions fulfilled from stock",
            one("SELECT count(*) FROM points_redemption WHERE status = 'fulfilled'"),
            redeemed,
        )
        expect(
            "stock issues for redemptions",
            one(
                "SELECT count(DISTINCT group_id) FROM inventory_move "
                f"WHERE kind = 'issue' AND {key} LIKE 'rewards_stock:%'"
            ),
            redeemed,
        )
        expect(
            "shift sign-ups",
            one("SELECT count(*) FROM volunteer_signup WHERE status = 'confirmed'"),
            ok("shift sign-up 201 -"),
        )
        expect(
            "shifts over capacity",
            one("SELECT count(*) FROM volunteer_shift WHERE taken > capacity"),
            0,
        )
        expect(
            "shifts whose places taken differ from their sign-ups",
            one(
                "SELECT count(*) FROM volunteer_shift s WHERE s.taken <> (SELECT count(*) "
                "FROM volunteer_signup u WHERE u.shift_id = s.id AND u.status = 'confirmed')"
            ),
            0,
        )
        # messages: one verification email per registration, each delivered, none lost
        messages = seeded.messages + ok("register 201 -")
        expect("outbox messages", one("SELECT count(*) FROM core_outbox"), messages)
        expect(
            "outbox messages sent",
            one("SELECT count(*) FROM core_outbox WHERE status = 'sent'"),
            messages,
        )
        received, distinct = sink.counts()
        expect("distinct emails received by the SMTP server", distinct, messages)
        # email is delivered at most once: a pass that failed after sending never sends again
        expect("emails received more than once", received - distinct, 0)
    return problems


def _stock_problems(conn: sa.Connection, seeded: Seeded) -> list[str]:
    problems: list[str] = []
    levels: defaultdict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for org, item, location, quantity in conn.execute(
        sa.text("SELECT org_id, item_id, location_id, quantity FROM inventory_stock")
    ):
        levels[(str(org), str(item), str(location))] += Decimal(quantity)
        if Decimal(quantity) < 0:
            problems.append(f"stock below zero: item {item} at {location}")
    moved: defaultdict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for org, item, frm, to, quantity in conn.execute(
        sa.text(
            "SELECT org_id, item_id, from_location_id, to_location_id, SUM(quantity) "
            "FROM inventory_move GROUP BY org_id, item_id, from_location_id, to_location_id"
        )
    ):
        moved[(str(org), str(item), str(to))] += Decimal(quantity)
        moved[(str(org), str(item), str(frm))] -= Decimal(quantity)
    holding = {
        str(i)
        for (i,) in conn.execute(
            sa.text("SELECT id FROM inventory_location WHERE kind IN ('internal', 'transit')")
        )
    }
    for key in set(levels) | {k for k in moved if k[2] in holding}:
        if levels[key] != moved[key]:
            problems.append(f"stock {key}: level {levels[key]}, moves {moved[key]}")
    return problems


# --- the run --------------------------------------------------------------------------------


def settings_env(url: str, smtp_port: int, args: argparse.Namespace) -> dict[str, str]:
    """The ``NGO_KIT_*`` environment of every process of the run: production, as deployed."""
    return {
        "NGO_KIT_DATABASE_URL": url,
        "NGO_KIT_ENVIRONMENT": "production",
        "NGO_KIT_SECRET_KEYS": secrets.token_urlsafe(48),
        "NGO_KIT_SMTP_HOST": "127.0.0.1",
        "NGO_KIT_SMTP_PORT": str(smtp_port),
        "NGO_KIT_SMTP_TLS": "none",
        "NGO_KIT_SMTP_FROM": "Relief Hub <noreply@relief-hub.example.org>",
        "NGO_KIT_OUTBOX_DISPATCH_AFTER_COMMIT": "false" if args.outbox_workers else "true",
        "NGO_KIT_POOL_SIZE": str(args.pool_size),
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add = parser.add_argument
    add("--database-url", default=os.environ.get("NGO_KIT_LOAD_DATABASE_URL", DEFAULT_DATABASE))
    add("-u", "--users", type=int, default=50, help="locust users")
    add("-r", "--spawn-rate", type=float, default=5.0, help="users started per second")
    add("-t", "--run-time", default="3m", help="locust -t (e.g. 3m, 90s)")
    add("--workers", type=int, default=2, help="uvicorn worker processes")
    add("--outbox-workers", type=int, default=1, help="0: deliver after each commit instead")
    add("--pool-size", type=int, default=5, help="NGO_KIT_POOL_SIZE per process")
    add("--members", type=int, default=150, help="members per organisation")
    add("--staff", type=int, default=4, help="staff per organisation")
    add("--member-points", type=int, default=300)
    add("--reward-price", type=int, default=120)
    add("--reward-stock", type=int, default=30, help="goods behind the reward, per organisation")
    add("--scarce-stock", type=int, default=60, help="units of the scarce item per organisation")
    add("--shifts", type=int, default=120, help="shifts per organisation, one an hour")
    add("--shift-capacity", type=int, default=2)
    add("--timeout", type=float, default=900, help="seconds before everything is killed")
    add(
        "--app",
        choices=("auto", "relief_hub", "kit"),
        default="auto",
        help="auto: relief_hub if present",
    )
    add("--keep", action="store_true", help="keep the scratch database and the work folder")
    add("--json", type=Path, help="also write the figures as JSON here")
    return parser.parse_args(argv)


@contextmanager
def watchdog(seconds: float, on_expiry: Callable[[], None]) -> Iterator[None]:
    """Call ``on_expiry`` once ``seconds`` have passed, unless the block finished first."""
    timer = threading.Timer(seconds, on_expiry)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="ngo_kit_load_"))
    database = ScratchDatabase(args.database_url)
    processes = Processes()
    sink = MailSink()
    kit: Kit | None = None
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        processes.kill_all()

    load_before = os.getloadavg()
    keep_logs = args.keep
    os.environ["LOAD_APP"] = args.app
    print("app: examples/relief_hub" if relief_hub() else "app: ngo_kit.web.create_app", MODULES)
    try:
        with watchdog(args.timeout, expire):
            database.create()
            sink.start()
            env = settings_env(database.url, sink.port, args)
            os.environ.update(env)
            kit = build_kit(database.url)
            kit.upgrade()
            t0 = time.monotonic()
            seeded = seed(kit, args)
            print(f"seeded in {time.monotonic() - t0:.1f} s ({seeded.accounts} accounts)")
            seed_file = workdir / "seed.json"
            seed_file.write_text(json.dumps(seeded.doc), encoding="utf-8")
            child_env = {
                **os.environ,
                **env,
                "PYTHONPATH": os.pathsep.join([str(BENCHMARKS), str(ROOT)]),
            }
            modules = [arg for m in MODULES for arg in ("--module", m)]
            outbox = [
                processes.start(
                    [NGO_KIT, *modules, "outbox", "work", "--forever", "--interval", "0.2"],
                    child_env,
                    workdir / f"outbox{n}.log",
                )
                for n in range(args.outbox_workers)
            ]
            port = free_port()
            host = f"http://127.0.0.1:{port}"
            app = processes.start(
                [*UVICORN, "--port", str(port), "--workers", str(args.workers)],
                child_env,
                workdir / "app.log",
            )
            wait_until_up(f"{host}/api/health", app, timeout=60)
            time.sleep(2)  # every worker process up, not only the first
            load_start = os.getloadavg()
            meter = CpuMeter({"app": [app], "outbox workers": outbox})
            meter.start()
            locust_cpu = _children_cpu()
            prefix = workdir / "locust"
            tally_file = workdir / "tally.json"
            locust = processes.start(
                [
                    *LOCUST,
                    *("-u", str(args.users), "-r", str(args.spawn_rate), "-t", args.run_time),
                    *("--host", host, "--csv", str(prefix)),
                ],
                {**child_env, "LOAD_SEED": str(seed_file), "LOAD_TALLY": str(tally_file)},
                workdir / "locust.log",
            )
            remaining = args.timeout - (time.monotonic() - started)
            try:
                locust.wait(timeout=max(1.0, remaining))
            except subprocess.TimeoutExpired:
                expired.set()
            if expired.is_set():
                print(f"TIMEOUT: the run took over {args.timeout:.0f} s", file=sys.stderr)
                keep_logs = True
                return 2
            load_end = os.getloadavg()
            cpu = meter.stop()
            cpu["locust"] = _children_cpu() - locust_cpu  # the one child reaped meanwhile
            _drain_outbox(kit, args, sink)
            processes.stop(app)
            for proc in list(processes.running):
                processes.stop(proc)
            tally: dict[str, int] = json.loads(tally_file.read_text(encoding="utf-8"))
            rows, total = read_stats(prefix, tally)
            failures = read_failures(prefix)
            problems = check(kit, seeded, tally, sink)
        title = (
            f"{dt.date.today().isoformat()}, {os.cpu_count()} cores, "
            f"{_database_label(kit)}, {args.workers} app process(es), "
            f"{args.outbox_workers} outbox worker(s), {args.users} users for {args.run_time}, "
            f"load average {load_before[0]:.1f} before, {load_start[0]:.1f} at start, "
            f"{load_end[0]:.1f} at end"
        )
        print()
        print(markdown(rows, total, title))
        print()
        outcomes = sorted(tally.items())
        print("outcomes: " + ", ".join(f"{k} = {v}" for k, v in outcomes))
        print(cpu_line(cpu, total.count))
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "title": title,
                        "rows": [r.__dict__ for r in [*rows, total]],
                        "tally": tally,
                        "problems": problems,
                        "failures": failures,
                        "cpu_seconds": cpu,
                    },
                    indent=1,
                ),
                encoding="utf-8",
            )
        for line in failures:
            print(f"FAILED request: {line}")
        for problem in problems:
            print(f"INVARIANT BROKEN: {problem}")
        if failures or problems or total.failures:
            keep_logs = True
            return 1
        print(f"ok: 0 errors, every invariant holds ({time.monotonic() - started:.0f} s)")
        return 0
    except Exception:
        keep_logs = True
        raise
    finally:
        processes.kill_all()
        sink.stop()
        if kit is not None:
            kit.dispose()
        if args.keep:
            print(f"kept the database {database.url}")
        else:
            database.drop()
        if keep_logs:
            print(f"logs and locust's CSV files in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _drain_outbox(kit: Kit, args: argparse.Namespace, sink: MailSink, timeout: float = 60) -> None:
    """Let the workers deliver what is left; without workers, deliver it here (as cron would)."""
    deadline = time.monotonic() + timeout
    if not args.outbox_workers:
        kit.outbox.work()
    while kit.outbox.pending() and time.monotonic() < deadline:
        time.sleep(0.5)


def _database_label(kit: Kit | None) -> str:
    if kit is None:
        return "?"
    with kit.engine.connect() as conn:
        dialect = conn.dialect.name
        if dialect == "postgresql":
            version = str(conn.execute(sa.text("SHOW server_version")).scalar()).split()[0]
            return f"PostgreSQL {version}"
        if dialect == "mysql":
            return f"MariaDB/MySQL {conn.execute(sa.text('SELECT VERSION()')).scalar()}"
    return "SQLite (WAL)"


if __name__ == "__main__":
    sys.exit(main())
