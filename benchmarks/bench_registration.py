"""Registration and sign-in against a bare argon2id hash / verify with the same parameters.

Both figures use OWASP's parameters (m=19 MiB, t=2, p=1), set before the kit is built. The
kit side is the whole call through ``kit.begin()``: validation (common-password list
included), the account, membership, audit and outbox rows for ``register``; the lookup,
verification, throttle and session rows for ``authenticate``. The baseline is argon2-cffi's
``PasswordHasher`` alone, with the same parameters, interleaved in the same run. The settings
are the defaults: the verification message is delivered after the commit, inside the call, to a
channel that accepts it at once (as a mail gateway on the same network would), not printed.

Each line gives the medians, their ratio (the figure, target 1.15x), their difference (what
the kit adds to the hash, in ms) and the median of the ratios of calls timed side by side. A
last line times a one-row ``INSERT`` and ``COMMIT`` on the same database through the driver:
what a durable commit costs on the machine at that moment, which every sign-up and sign-in
pays once (on a loaded machine PostgreSQL's commit alone can exceed the 15% the target
leaves).

The database is ``--database-url`` or ``NGO_KIT_BENCH_DATABASE_URL`` (default: a temporary
SQLite file, removed at the end); on PostgreSQL each run uses new schemas, dropped at the end.

With ``--fastapi-users`` registration is also compared, in the same run, on the same database
and at the same argon2 parameters, with fastapi-users' ``UserManager.create`` (fastapi-users is
installed in the bench environment only: see ``fastapi_users_line``).

Usage: ``python benchmarks/bench_registration.py [--database-url URL] [--repeat N]
[--fastapi-users]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from argon2 import PasswordHasher, Type
from harness import OWASP_ARGON2, Comparison, compare, use_owasp_argon2, verdict

from ngo_kit import Kit, hookimpl
from ngo_kit.outbox import OutboxMessage
from ngo_kit.testing import DatabaseProvider, settings_for_tests

TARGET = 1.15
REPEAT = int(os.environ.get("NGO_KIT_BENCH_REPEAT", "60"))
MEMORY_KIB, TIME_COST, PARALLELISM = OWASP_ARGON2
PASSWORD = "correct horse battery staple"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("NGO_KIT_BENCH_DATABASE_URL"))
    parser.add_argument("--repeat", type=int, default=REPEAT)
    parser.add_argument("--fastapi-users", action="store_true")
    args = parser.parse_args(argv)
    use_owasp_argon2()
    workdir = Path(tempfile.mkdtemp(prefix="ngo_kit_bench_registration_"))
    databases = DatabaseProvider(args.database_url or None, workdir)
    try:
        run(databases, args.repeat, with_fastapi_users=args.fastapi_users)
    finally:
        databases.drop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return verdict()


class Gateway:
    """A channel that accepts every message at once: delivery is timed, printing is not."""

    ngo_kit_plugin_name = "bench-gateway"

    @hookimpl(tryfirst=True)
    def ngo_kit_deliver_message(self, message: OutboxMessage) -> str:
        return "accepted"


def run(databases: DatabaseProvider, repeat: int, *, with_fastapi_users: bool) -> None:
    """Build a kit on a new database and print each comparison's line."""
    kit = Kit(
        settings=settings_for_tests(databases.empty_url()),
        modules=["registration"],
        plugins=[Gateway()],
        autoload=False,
    )
    kit.upgrade()
    org = kit.create_organisation("bench", "Bench", settings={"phone_region": "CN"})
    bare = PasswordHasher(
        time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM, type=Type.ID
    )
    stored = bare.hash(PASSWORD)
    counter = iter(range(10**9))

    def kit_register() -> None:
        n = next(counter)
        with kit.begin(org=org.slug) as tx:
            tx.registration.register(
                email=f"person{n}@example.org", password=PASSWORD, display_name=f"志愿者 {n}"
            )

    def bare_hash() -> None:
        bare.hash(PASSWORD)

    with kit.begin(org=org.slug) as tx:
        tx.registration.register(email="known@example.org", password=PASSWORD, display_name="K")

    def kit_sign_in() -> None:
        with kit.begin() as tx:
            tx.registration.authenticate(email="known@example.org", password=PASSWORD)

    def bare_verify() -> None:
        bare.verify(stored, PASSWORD)

    backend = kit.engine.url.get_backend_name()
    print(f"argon2id m={MEMORY_KIB} KiB t={TIME_COST} p={PARALLELISM}, database: {backend}")
    for name, kit_op, bare_op in (
        ("register vs bare argon2id hash", kit_register, bare_hash),
        ("authenticate vs bare argon2id verify", kit_sign_in, bare_verify),
    ):
        print(line(compare(name, kit_op, bare_op, repeat=repeat, warmup=5), TARGET))
    print(commit_line(kit))
    if with_fastapi_users:
        print(fastapi_users_line(kit_register, databases.empty_url()))
    kit.dispose()


def line(result: Comparison, limit: float | None = None) -> str:
    """The harness's line, with what the kit adds to the baseline in ms and the paired ratio.

    The paired ratio is the median of each kit call's time over the baseline call timed next
    to it: a machine whose load changes during the run moves both calls of a pair alike, so it
    strays less than the ratio of the two medians when the load moves (shown for context; the
    ratio of medians stays the figure).
    """
    added = (result.kit_median - result.raw_median) * 1e3
    pairs = zip(result.kit_seconds, result.raw_seconds, strict=True)
    paired = statistics.median(kit / raw for kit, raw in pairs)
    return f"{result.line(limit)}  ({added:+.2f} ms, paired {paired:.2f}x)"


def commit_line(kit: Kit, repeat: int = 200) -> str:
    """The median of a one-row INSERT and COMMIT through the driver on the bench database."""
    with kit.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE bench_commit_probe (n INTEGER)")
    times = []
    with kit.engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        marker = "?" if kit.engine.dialect.paramstyle == "qmark" else "%s"
        for n in range(repeat):
            start = time.perf_counter()
            cursor.execute(f"INSERT INTO bench_commit_probe (n) VALUES ({marker})", (n,))
            conn.connection.dbapi_connection.commit()  # type: ignore[union-attr]
            times.append(time.perf_counter() - start)
        cursor.close()
    median = statistics.median(times) * 1e3
    return f"{'(context) one-row INSERT + COMMIT, raw driver':<48} {median:9.3f} ms"


def fastapi_users_line(kit_register: Callable[[], object], url: str) -> str:
    """fastapi-users' ``UserManager.create`` on the bench's database, same argon2 parameters.

    Its packages live outside the project's environment: install them with
    ``pip install --target DIR --no-deps fastapi-users fastapi-users-db-sqlalchemy pwdlib
    aiosqlite makefun pyjwt`` and set ``NGO_KIT_BENCH_EXTRA_PATH=DIR``. SQLite goes through
    aiosqlite, PostgreSQL through psycopg's async connection (the kit's own driver).
    """
    import asyncio
    import importlib

    extra = os.environ.get("NGO_KIT_BENCH_EXTRA_PATH")
    if extra:
        sys.path.append(extra)  # after the project's own packages, which take precedence
    fu_schemas: Any = importlib.import_module("fastapi_users.schemas")
    fu_db: Any = importlib.import_module("fastapi_users_db_sqlalchemy")
    fu_manager: Any = importlib.import_module("fastapi_users.manager")
    fu_password: Any = importlib.import_module("fastapi_users.password")
    pwdlib: Any = importlib.import_module("pwdlib")
    argon2_hasher: Any = importlib.import_module("pwdlib.hashers.argon2")
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from sqlalchemy.orm import DeclarativeBase

    base: Any = type("Base", (DeclarativeBase,), {})
    user_table: Any = type("User", (fu_db.SQLAlchemyBaseUserTableUUID, base), {})
    helper = fu_password.PasswordHelper(
        pwdlib.PasswordHash(
            (
                argon2_hasher.Argon2Hasher(
                    time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM
                ),
            )
        )
    )
    manager_class: Any = type(
        "Manager",
        (fu_manager.UUIDIDMixin, fu_manager.BaseUserManager),
        {"reset_password_token_secret": "bench", "verification_token_secret": "bench"},
    )
    target = make_url(url)
    if target.get_backend_name() == "sqlite":
        target = target.set(drivername="sqlite+aiosqlite")
    engine = create_async_engine(target)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    loop = asyncio.new_event_loop()

    async def setup() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(base.metadata.create_all)

    loop.run_until_complete(setup())
    counter = iter(range(10**9))

    async def create() -> None:
        async with sessions() as session:
            manager = manager_class(fu_db.SQLAlchemyUserDatabase(session, user_table), helper)
            payload = fu_schemas.BaseUserCreate(
                email=f"u{next(counter)}@example.org", password=PASSWORD
            )
            await manager.create(payload)

    def fastapi_register() -> None:
        loop.run_until_complete(create())

    result = compare(
        "register vs fastapi-users UserManager.create",
        kit_register,
        fastapi_register,
        repeat=40,
        warmup=5,
    )
    loop.run_until_complete(engine.dispose())
    loop.close()
    return line(result)


if __name__ == "__main__":
    raise SystemExit(main())
