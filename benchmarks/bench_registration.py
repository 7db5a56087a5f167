"""Registration and sign-in against a bare argon2id hash / verify with the same parameters.

Both figures use OWASP's parameters (m=19 MiB, t=2, p=1), set before the kit is built. The
kit side is the whole call through ``kit.begin()``: validation (common-password list
included), the account, membership, audit and outbox rows for ``register``; the lookup,
verification, throttle and session rows for ``authenticate``. The baseline is argon2-cffi's
``PasswordHasher`` alone, with the same parameters, interleaved in the same run. Messages are
left for the outbox worker (``outbox_dispatch_after_commit=False``) so the console channel's
printing is not timed.

With ``--fastapi-users`` (and fastapi-users, fastapi-users-db-sqlalchemy and aiosqlite
installed in the bench environment only) registration is also compared with fastapi-users'
``UserManager.create`` hashing with the same argon2 parameters.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from argon2 import PasswordHasher, Type
from harness import compare, fresh_database

from ngo_kit import Kit
from ngo_kit.testing import settings_for_tests

TARGET = 1.15
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
    print(compare("register vs bare argon2id hash", kit_register, bare_hash, repeat=60, warmup=5).line(TARGET))
    print(compare("authenticate vs bare argon2id verify", kit_sign_in, bare_verify, repeat=60, warmup=5).line(TARGET))
    if "--fastapi-users" in sys.argv:
        print(fastapi_users_line(kit_register))
    kit.dispose()


def fastapi_users_line(kit_register: object) -> str:
    """fastapi-users' registration (SQLite via aiosqlite), same argon2 parameters."""
    import asyncio
    import tempfile
    import uuid as _uuid

    from fastapi_users import schemas
    from fastapi_users.db import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
    from fastapi_users.manager import BaseUserManager, UUIDIDMixin
    from fastapi_users.password import PasswordHelper
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from sqlalchemy.orm import DeclarativeBase

    class Base(DeclarativeBase):
        pass

    class User(SQLAlchemyBaseUserTableUUID, Base):
        pass

    class UserCreate(schemas.BaseUserCreate):
        pass

    helper = PasswordHelper(
        PasswordHash(
            (Argon2Hasher(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM),)
        )
    )

    class Manager(UUIDIDMixin, BaseUserManager[User, _uuid.UUID]):
        reset_password_token_secret = verification_token_secret = "bench"

    path = Path(tempfile.mkdtemp()) / "fastapi_users.sqlite"
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    loop = asyncio.new_event_loop()

    async def setup() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    loop.run_until_complete(setup())
    counter = iter(range(10**9))

    async def create() -> None:
        async with sessions() as session:
            manager = Manager(SQLAlchemyUserDatabase(session, User), helper)
            await manager.create(UserCreate(email=f"u{next(counter)}@example.org", password=PASSWORD))

    def fastapi_register() -> None:
        loop.run_until_complete(create())

    result = compare(
        "register vs fastapi-users UserManager.create",
        kit_register,  # type: ignore[arg-type]
        fastapi_register,
        repeat=40,
        warmup=5,
    )
    return result.line()


if __name__ == "__main__":
    main()
