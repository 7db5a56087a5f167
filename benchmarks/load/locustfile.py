"""The load mix for relief_hub's API (run by ``run.py``; see docs/performance.md, "Load").

Three kinds of people use the API at once, over bearer-token sessions:

* members (most users): sign in once (argon2id), then read their points balance and the day's
  shifts, sign up to shifts (``waitlist: false``: a full shift or a place already held is the
  expected 409), redeem a reward backed by stock (not enough points or goods is the expected
  409), and now and then sign in again, as from a second device;
* staff: award points (one award in ten is resent with the same ``key``, as a client retrying
  after a timeout, and must return the same transaction), issue goods (from plentiful items,
  and from one scarce item whose running out is the expected 409), read stock and a member's
  standing;
* newcomers: register (argon2id), sign in, read their account.

Every answer is checked: the expected status, or a 409 whose problem ``code`` is one this
request may meet; anything else is a failure. The outcome of every request is tallied by name,
status and code, and written to ``LOAD_TALLY`` when the test stops, so ``run.py`` can match the
database's rows against the requests that succeeded. The seed (organisations, accounts, shift
and reward ids) is read from ``LOAD_SEED``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, events, task
from locust.contrib.fasthttp import ResponseContextManager

SEED: dict[str, Any] = json.loads(Path(os.environ["LOAD_SEED"]).read_text(encoding="utf-8"))
API: str = SEED["api"]
PASSWORD: str = SEED["password"]
ORGS: list[str] = sorted(SEED["orgs"])

#: Outcomes by "request status code" (code: the problem's code for 4xx, "-" otherwise); each
#: failure is also counted under "FAILED request status code". Locust's own CSV misses the
#: requests that finish while the users stop; this tally has every one.
TALLY: Counter[str] = Counter()
_TALLY_LOCK = threading.Lock()


def _tally(name: str, status: int, code: str = "-") -> None:
    with _TALLY_LOCK:
        TALLY[f"{name} {status} {code}"] += 1


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def _write_tally(**_: Any) -> None:
    """Hand the outcomes to run.py."""
    target = os.environ.get("LOAD_TALLY")
    if target:
        Path(target).write_text(json.dumps(dict(TALLY), indent=1, sort_keys=True), "utf-8")


def _problem_code(resp: ResponseContextManager) -> str:
    try:
        body = resp.json()
    except ValueError:
        return "?"
    return str(body.get("code", "?")) if isinstance(body, dict) else "?"


def _check(
    resp: ResponseContextManager,
    name: str,
    ok: int,
    expected_conflicts: frozenset[str] = frozenset(),
) -> bool:
    """Mark ``resp`` a success when it is ``ok``, or a 409 with one of ``expected_conflicts``."""
    status = resp.status_code
    if status == ok:
        _tally(name, status)
        resp.success()  # type: ignore[no-untyped-call]
        return True
    code = _problem_code(resp) if 400 <= status < 500 else "-"
    _tally(name, status, code)
    if status == 409 and code in expected_conflicts:
        resp.success()  # type: ignore[no-untyped-call]  # expected: a contested action
    else:
        _tally(f"FAILED {name}", status, code)
        resp.failure(f"{status} {code}: {(resp.text or '')[:200]}")  # type: ignore[no-untyped-call]
    return False


class Person(FastHttpUser):
    """Shared by the three kinds: an organisation, a session and the paths under it."""

    abstract = True
    org: str
    token: str | None = None

    def url(self, path: str) -> str:
        return f"{API}/orgs/{self.org}/{path}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def sign_in(self, email: str) -> None:
        with self.client.post(
            self.url("registration/sign-in"),
            json={"email": email, "password": PASSWORD},
            name="sign-in",
            catch_response=True,
        ) as resp:
            if _check(resp, "sign-in", 200):
                self.token = resp.json()["token"]


class Member(Person):
    """A seeded member and approved volunteer with points."""

    weight = 6
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        self.org = random.choice(ORGS)
        seed = SEED["orgs"][self.org]
        self.email = random.choice(seed["members"])["email"]
        self.shifts: list[str] = seed["shifts"]
        self.reward: str = seed["reward"]
        self.sign_in(self.email)

    @task(6)
    def balance(self) -> None:
        with self.client.get(
            self.url("points/me"), headers=self.auth, name="balance", catch_response=True
        ) as resp:
            _check(resp, "balance", 200)

    @task(4)
    def shifts_of_a_day(self) -> None:
        first = dt.datetime.fromisoformat(SEED["shifts_from"])
        start = first + dt.timedelta(days=random.randrange(SEED["shift_days"]))
        with self.client.get(
            self.url("volunteer/shifts"),
            params={
                "starts_after": start.isoformat(),
                "starts_before": (start + dt.timedelta(days=1)).isoformat(),
                "open_only": "true",
            },
            headers=self.auth,
            name="shifts",
            catch_response=True,
        ) as resp:
            _check(resp, "shifts", 200)

    @task(3)
    def sign_up(self) -> None:
        shift = random.choice(self.shifts)
        with self.client.post(
            self.url(f"volunteer/shifts/{shift}/sign-up"),
            json={"waitlist": False},
            headers=self.auth,
            name="shift sign-up",
            catch_response=True,
        ) as resp:
            _check(resp, "shift sign-up", 201, frozenset({"shift_full", "already_exists"}))

    @task(1)
    def redeem(self) -> None:
        with self.client.post(
            self.url("points/redemptions"),
            json={"reward_id": self.reward, "key": f"load-redeem:{uuid.uuid4()}"},
            headers=self.auth,
            name="redeem",
            catch_response=True,
        ) as resp:
            _check(resp, "redeem", 201, frozenset({"insufficient_points", "insufficient_stock"}))

    @task(1)
    def sign_in_again(self) -> None:
        self.sign_in(self.email)


class Staff(Person):
    """A coordinator: awards points and issues goods."""

    weight = 2
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        self.org = random.choice(ORGS)
        seed = SEED["orgs"][self.org]
        self.members: list[dict[str, str]] = seed["members"]
        self.plenty: list[str] = seed["items"]["plenty"]
        self.scarce: str = seed["items"]["scarce"]
        self.location: str = seed["location"]
        self.last_award: tuple[dict[str, Any], str] | None = None
        self.sign_in(random.choice(seed["staff"]))

    @task(4)
    def award(self) -> None:
        retry = self.last_award is not None and random.random() < 0.1
        if retry and self.last_award is not None:
            body, first_id = self.last_award
        else:
            member = random.choice(self.members)["id"]
            body = {
                "member_id": member,
                "points": random.randint(5, 50),
                "reason": "helped at the distribution point",
                "key": f"load-award:{uuid.uuid4()}",
            }
            first_id = ""
        name = "award (retry)" if retry else "award"
        with self.client.post(
            self.url("points/awards"), json=body, headers=self.auth, name=name, catch_response=True
        ) as resp:
            if not _check(resp, name, 201):
                return
            txn = str(resp.json()["id"])
            if retry and txn != first_id:
                resp.failure(f"a retried award made a second transaction {txn}")
                _tally(f"FAILED {name}", 201, "not-idempotent")
            self.last_award = (body, txn)

    @task(3)
    def issue(self) -> None:
        scarce = random.random() < 0.25
        item = self.scarce if scarce else random.choice(self.plenty)
        with self.client.post(
            self.url("inventory/issues"),
            json={
                "item": item,
                "quantity": str(random.randint(1, 3)),
                "from_": self.location,
                "recipient": f"load-household-{random.randrange(10_000)}",
                "recipient_kind": "household",
                "key": f"load-issue:{uuid.uuid4()}",
            },
            headers=self.auth,
            name="issue",
            catch_response=True,
        ) as resp:
            # only the scarce item may run out
            expected = frozenset({"insufficient_stock"}) if scarce else frozenset()
            _check(resp, "issue", 201, expected)

    @task(2)
    def stock(self) -> None:
        with self.client.get(
            self.url("inventory/stock"),
            params={"location": self.location},
            headers=self.auth,
            name="stock",
            catch_response=True,
        ) as resp:
            _check(resp, "stock", 200)

    @task(2)
    def member_standing(self) -> None:
        member = random.choice(self.members)["id"]
        with self.client.get(
            self.url(f"points/members/{member}"),
            headers=self.auth,
            name="member standing",
            catch_response=True,
        ) as resp:
            _check(resp, "member standing", 200)


class Newcomer(Person):
    """Someone who registers, signs in and looks at their account."""

    weight = 1
    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        self.org = random.choice(ORGS)

    @task
    def register_and_sign_in(self) -> None:
        email = f"new-{uuid.uuid4().hex}@load.example.org"
        with self.client.post(
            self.url("registration/register"),
            json={"email": email, "password": PASSWORD, "display_name": "New Volunteer"},
            name="register",
            catch_response=True,
        ) as resp:
            if not _check(resp, "register", 201):
                return
        self.sign_in(email)
        with self.client.get(
            self.url("registration/me"), headers=self.auth, name="me", catch_response=True
        ) as resp:
            _check(resp, "me", 200)
