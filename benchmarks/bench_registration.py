"""Registration and sign-in against a bare argon2id hash / verify with the same parameters.

Both figures use OWASP's parameters (m=19 MiB, t=2, p=1), set before the kit is built. The
kit side is the whole call through ``kit.begin()``: validation (common-password list
included), the account, membership, audit and outbox rows for ``register``; the lookup,
verification, throttle and session rows for ``authenticate``. The baseline is argon2-cffi's
``PasswordHasher`` alone, with the same parameters, interleaved in the same run. Messages are
left for the outbox worker (``outbox_dispatch_after_commit=False``) so the console channel's
printing is not timed.

With ``--fastapi-users`` registration is also compared, in the same run, with fastapi-users'
``UserManager.create`` hashing with the same argon2 parameters (fastapi-users is installed
in the bench environment only: see ``fastapi_users_line``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from argon2 import PasswordHasher, Type
from harness import compare, fresh_database

from ngo_kit import Kit
from ngo_kit.testing import settings_for_tests

TARGET = 1.15
REPEAT = int(os.environ.get("NGO_KIT_BENCH_REPEAT", "60"))
MEMORY_KIB, TIME_COST, PARALLELISM = 19456, 2, 1
PASSWORD = "correct horse battery staple"


def main() -> None:
    os.environ.update(
        NGO_KIT_REGISTRATION_ARGON2_MEMORY_KIB=str(MEMORY_KIB),
        NGO_KIT_REGISTRATION_ARGON2_TIME_COST=str(TIME_COST),
        NGO_KIT_REGISTRATION_ARGON2_PARALLELISM=str(PARALLELISM),
    )
    url = fresh_database("registration")
    kit = Kit(
        settings=settings_for_tests(url, outbox_dispatch_after_commit=False),
        modules=["registration"],
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
        print(compare(name, kit_op, bare_op, repeat=REPEAT, warmup=5).line(TARGET))
    if "--fastapi-users" in sys.argv:
        print(fastapi_users_line(kit_register))
    kit.dispose()


def fastapi_users_line(kit_register: Callable[[], object]) -> str:
    """fastapi-users' ``UserManager.create`` (SQLite via aiosqlite), same argon2 parameters.

    Its packages live outside the project's environment: install them with
    ``pip install --target DIR --no-deps fastapi-users fastapi-users-db-sqlalchemy pwdlib
    aiosqlite makefun pyjwt`` and set ``NGO_KIT_BENCH_EXTRA_PATH=DIR``.
    """
    import asyncio
    import importlib
    import tempfile

    extra = os.environ.get("NGO_KIT_BENCH_EXTRA_PATH")
    if extra:
        sys.path.append(extra)  # after the project's own packages, which take precedence
    fu_schemas: Any = importlib.import_module("fastapi_users.schemas")
    fu_db: Any = importlib.import_module("fastapi_users_db_sqlalchemy")
    fu_manager: Any = importlib.import_module("fastapi_users.manager")
    fu_password: Any = importlib.import_module("fastapi_users.password")
    pwdlib: Any = importlib.import_module("pwdlib")
    argon2_hasher: Any = importlib.import_module("pwdlib.hashers.argon2")
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
    path = Path(tempfile.mkdtemp()) / "fastapi_users.sqlite"
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
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
    loop.close()
    return result.line()


if __name__ == "__main__":
    main()
