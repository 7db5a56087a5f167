"""Volunteer: a sign-up through the kit against raw SQL writing the same rows; matching one shift
over 10,000 and 100,000 volunteers; importing 100,000 volunteers from CSV against a raw
``executemany`` of the same rows, with the import's peak memory at two file sizes.

The raw sign-up does what the service does, in one transaction: read the shift, lock and read
the volunteer's profile, look for an existing place and an overlapping one, number the arrival
(guarded UPDATE of the shift row), take a place (guarded UPDATE), insert the sign-up, touch the
profile and append the hashed audit row. The raw import reads the same CSV with ``csv`` and
inserts the same profile and skill rows with ``executemany``; it skips what the kit checks
(membership, existing profiles, skill list, field rules), which is the kit's price.

Set ``VOLUNTEER_BENCH_BIG`` (default 100000) for a smaller run.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

from bench_core import raw_connection
from harness import compare, fresh_database, kit_problems, load_average, miss, verdict

from ngo_kit import SYSTEM, Kit
from ngo_kit.audit import AUDIT_FIELDS, GENESIS, chain_hash
from ngo_kit.db import new_id, utcnow
from ngo_kit.modules.volunteer import files
from ngo_kit.modules.volunteer.models import Profile, ProfileSkill
from ngo_kit.tenancy import Membership, Role
from ngo_kit.testing import settings_for_tests

TARGET_SIGNUP = 2.0
TARGET_MATCH_SCALING = 12.0
TARGET_IMPORT_RATE = 0.30
#: interleaved rounds of the matching scale comparison
ROUNDS = 7
BIG = int(os.environ.get("VOLUNTEER_BENCH_BIG", "100000"))
SMALL = BIG // 10
SKILLS = ("first_aid", "driving", "cooking", "knitting", "teaching")


def add_volunteers(
    kit: Kit, org_id: uuid.UUID, count: int, *, members: bool = False
) -> list[uuid.UUID]:
    """Approved volunteers (and, if asked, only memberships) written in bulk through Core."""
    ids = [new_id() for _ in range(count)]
    now = utcnow()
    with kit.engine.begin() as conn:
        if members:
            role_id = conn.scalar(
                sa.select(Role.id).where(Role.org_id == org_id, Role.name == "member")
            )
            for start in range(0, count, 5000):
                conn.execute(
                    sa.insert(Membership),
                    [
                        {
                            "id": new_id(),
                            "org_id": org_id,
                            "actor_id": i,
                            "role_id": role_id,
                            "created_at": now,
                        }
                        for i in ids[start : start + 5000]
                    ],
                )
            return ids
        for start in range(0, count, 5000):
            chunk = ids[start : start + 5000]
            conn.execute(
                sa.insert(Profile),
                [
                    {
                        "id": new_id(), "org_id": org_id, "user_id": uid, "status": "approved",
                        "languages": ["zh"], "city": "上海", "district": f"区{n % 16}",
                        "latitude": Decimal("31.2") + Decimal(n % 100) / 1000,
                        "longitude": Decimal("121.4") + Decimal(n % 37) / 1000,
                        "availability": [{"weekday": n % 7, "start": "09:00", "end": "18:00"}],
                        "unavailable_dates": [], "emergency_contact_name": "",
                        "emergency_contact_phone": "", "custom_fields": {}, "created_at": now,
                        "approved_at": now, "hours_total": Decimal(0), "attended_count": n % 9,
                        "no_show_count": n % 3, "last_signed_up_at": None,
                    }
                    for n, uid in enumerate(chunk, start)
                ],
            )  # fmt: skip
            conn.execute(
                sa.insert(ProfileSkill),
                [
                    {"id": new_id(), "org_id": org_id, "user_id": uid, "skill": SKILLS[n % len(SKILLS)],
                     "level": 1 + n % 5}
                    for n, uid in enumerate(chunk, start)
                ],
            )  # fmt: skip
    return ids


def new_org(kit: Kit, slug: str) -> Any:
    org = kit.create_organisation(slug, slug, timezone="Asia/Shanghai")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        for code in SKILLS:
            tx.volunteer.add_skill(code, code)
    return org


def a_shift(kit: Kit, org: Any, capacity: int, **fields: Any) -> Any:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    with kit.begin(org=org, actor=SYSTEM) as tx:
        activity = tx.volunteer.create_activity(title="bench")
        return tx.volunteer.create_shift(
            activity_id=activity.id, starts_at=start, ends_at=start + dt.timedelta(hours=3),
            capacity=capacity, city="上海", district="区1", latitude="31.25", longitude="121.45",
            **fields,
        )  # fmt: skip


# --- sign-up -------------------------------------------------------------------------------


def bench_signup(kit: Kit) -> None:
    rounds, warmup = 300, 30
    org, raw_org = new_org(kit, "bench-signup"), new_org(kit, "bench-signup-raw")
    kit_people = iter(add_volunteers(kit, org.id, rounds + warmup))
    raw_people = iter(add_volunteers(kit, raw_org.id, rounds + warmup))
    shift = a_shift(kit, org, capacity=rounds // 2)  # half confirmed, half waitlisted
    raw_shift = a_shift(kit, raw_org, capacity=rounds // 2)
    conn, style = raw_connection(kit)
    sqlite = style == "qmark"
    p = "?" if sqlite else "%s"

    def key(value: Any) -> Any:
        return value.hex if sqlite else value

    def when(value: dt.datetime) -> Any:
        return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ") if sqlite else value

    org_key, shift_key = key(raw_org.id), key(raw_shift.id)

    def kit_signup() -> None:
        person = next(kit_people)
        with kit.begin(org=org.slug, actor=person) as tx:
            tx.volunteer.sign_up(shift.id)

    def raw_signup() -> None:
        person = key(next(raw_people))
        cur = conn.cursor()
        if sqlite:
            cur.execute("BEGIN IMMEDIATE")
        lock = "" if sqlite else " FOR UPDATE"  # SQLite writers are serialised by BEGIN IMMEDIATE
        cur.execute(
            f"SELECT id, status, starts_at, ends_at, required_skills, required_certifications, min_age"
            f" FROM volunteer_shift WHERE org_id = {p} AND id = {p}",
            (org_key, shift_key),
        )
        _sid, _status, starts, ends, _skills, _certs, _age = cur.fetchone()
        cur.execute(
            f"SELECT id FROM volunteer_shift_role WHERE org_id = {p} AND shift_id = {p}",
            (org_key, shift_key),
        )
        cur.fetchall()
        now = utcnow()
        cur.execute(  # lock, touch and read the profile in one statement, as the kit does
            f"UPDATE volunteer_profile SET last_signed_up_at = {p} WHERE org_id = {p}"
            f" AND user_id = {p} RETURNING status",
            (when(now), org_key, person),
        )
        assert cur.fetchone()[0] == "approved"
        cur.execute(
            f"SELECT id, status FROM volunteer_signup WHERE org_id = {p} AND shift_id = {p} AND user_id = {p}",
            (org_key, shift_key, person),
        )
        assert cur.fetchone() is None
        cur.execute(
            f"SELECT shift_id FROM volunteer_signup WHERE org_id = {p} AND user_id = {p}"
            f" AND status IN ('confirmed', 'waitlisted') AND starts_at < {p} AND ends_at > {p}"
            f" AND shift_id != {p} LIMIT 1",
            (org_key, person, ends, starts, shift_key),
        )
        assert cur.fetchone() is None
        cur.execute(
            f"UPDATE volunteer_shift SET arrivals = arrivals + 1 WHERE id = {p} AND status = 'open'"
            " RETURNING arrivals",
            (shift_key,),
        )
        seq = cur.fetchone()[0]
        cur.execute(
            f"UPDATE volunteer_shift SET taken = taken + 1 WHERE id = {p} AND taken < capacity",
            (shift_key,),
        )
        status = "confirmed" if cur.rowcount == 1 else "waitlisted"
        cur.execute(
            "INSERT INTO volunteer_signup (id, org_id, shift_id, role_id, user_id, status, seq, starts_at,"
            " ends_at, created_at, key, checked_in_at, checked_out_at, cancelled_at, promoted_at)"
            f" VALUES ({', '.join([p] * 10)}, NULL, NULL, NULL, NULL, NULL)",
            (key(new_id()), org_key, shift_key, None, person, status, seq, starts, ends, when(now)),
        )
        if status == "waitlisted":  # the place in the waitlist, which the kit returns
            cur.execute(
                f"SELECT count(*) FROM volunteer_signup WHERE shift_id = {p}"
                f" AND status = 'waitlisted' AND seq < {p}",
                (shift_key, seq),
            )
            cur.fetchone()
        cur.execute(
            f"SELECT seq, hash FROM core_chain_head WHERE org_id = {p} AND chain = 'audit'{lock}",
            (org_key,),
        )
        head = cur.fetchone()
        last, prev = head if head is not None else (0, GENESIS)
        row = {
            "id": new_id(), "org_id": raw_org.id, "seq": last + 1, "at": now,
            "actor": str(person), "action": "volunteer.signed_up", "target_type": "shift",
            "target_id": str(raw_shift.id), "summary": f"{status} ({seq})",
            "data": {"user_id": str(person), "status": status, "seq": seq},
        }  # fmt: skip
        digest = chain_hash(prev, {f: row[f] for f in AUDIT_FIELDS})
        cur.execute(
            "INSERT INTO core_audit (id, org_id, seq, at, actor, action, target_type, target_id,"
            f" summary, data, prev_hash, hash) VALUES ({', '.join([p] * 12)})",
            (key(row["id"]), org_key, last + 1, when(now), row["actor"], row["action"], "shift",
             row["target_id"], row["summary"], json.dumps(row["data"]), prev, digest),
        )  # fmt: skip
        cur.execute(
            f"UPDATE core_chain_head SET seq = {p}, hash = {p} WHERE org_id = {p} AND chain = 'audit'",
            (last + 1, digest, org_key),
        )
        cur.execute("COMMIT") if sqlite else conn.commit()

    result = compare(
        "sign-up (half confirmed, half waitlisted)",
        kit_signup,
        raw_signup,
        repeat=rounds,
        warmup=warmup,
    )
    print(result.line(TARGET_SIGNUP))
    conn.close()


# --- matching ------------------------------------------------------------------------------


def bench_matching(kit: Kit) -> None:
    runs: dict[int, Callable[..., None]] = {}
    for size in (SMALL, BIG):
        org = new_org(kit, f"bench-match-{size}")
        add_volunteers(kit, org.id, size)
        shift = a_shift(kit, org, capacity=10)

        def run(org: Any = org, shift: Any = shift) -> None:
            with kit.begin(org=org.slug, actor=SYSTEM) as tx:
                found = tx.volunteer.match(shift.id, limit=20)
            assert len(found) == 20

        runs[size] = run
    # Interleaved rounds, both sizes in each (in turn first), the median of the rounds' ratios:
    # the machine is shared, so both sizes see the same load.
    times: dict[int, list[float]] = {size: [] for size in runs}
    ratios = []
    for round_ in range(ROUNDS):
        order = list(runs.items()) if round_ % 2 else list(reversed(runs.items()))
        for size, run in order:
            start = time.perf_counter()
            run()
            times[size].append(time.perf_counter() - start)
        ratios.append(times[BIG][-1] / times[SMALL][-1])
    for size in runs:
        label = f"match one shift over {size:,} volunteers"
        print(f"{label:<48} {statistics.median(times[size]) * 1e3:9.1f} ms (median)")
    ratio = statistics.median(ratios)
    outcome = "ok" if ratio <= TARGET_MATCH_SCALING else f"OVER the {TARGET_MATCH_SCALING}x goal"
    if ratio > TARGET_MATCH_SCALING:
        miss(f"matching scale {ratio:.2f}x > {TARGET_MATCH_SCALING}x")
    label = f"matching scale {BIG:,} / {SMALL:,}"
    print(
        f"{label:<48} ratio {ratio:5.2f}x [{min(ratios):.2f}-{max(ratios):.2f}, {ROUNDS} rounds,"
        f" load {load_average():.1f}] (goal <= {TARGET_MATCH_SCALING}x)  {outcome}"
    )


# --- import --------------------------------------------------------------------------------


def write_csv(path: Path, ids: list[uuid.UUID]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "user_id",
                "status",
                "skills",
                "languages",
                "city",
                "district",
                "latitude",
                "longitude",
            ]
        )
        for n, uid in enumerate(ids):
            writer.writerow(
                [
                    uid,
                    "approved",
                    f"{SKILLS[n % 5]}:{1 + n % 5}",
                    "zh;en",
                    "上海",
                    f"区{n % 16}",
                    "31.2",
                    "121.4",
                ]
            )


def kit_import(kit: Kit, org: Any, path: Path) -> int:
    with kit.begin(org=org.slug, actor=SYSTEM) as tx:
        report = tx.volunteer.import_profiles(files.read_rows(path))
    assert report.errors == (), report.errors[:3]
    imported: int = report.imported
    return imported


def raw_import(kit: Kit, org_id: uuid.UUID, path: Path) -> None:
    conn, style = raw_connection(kit)
    sqlite = style == "qmark"
    p = "?" if sqlite else "%s"

    def key(value: Any) -> Any:
        return value.hex if sqlite else value

    now = utcnow()
    at: Any = now.replace(tzinfo=None).isoformat(sep=" ") if sqlite else now
    org_key = key(org_id)
    profile_sql = (
        "INSERT INTO volunteer_profile (id, org_id, user_id, status, languages, city, district, latitude,"
        " longitude, availability, unavailable_dates, emergency_contact_name, emergency_contact_phone,"
        " custom_fields, created_at, approved_at, hours_total, attended_count, no_show_count)"
        f" VALUES ({', '.join([p] * 19)})"
    )
    skill_sql = f"INSERT INTO volunteer_profile_skill (id, org_id, user_id, skill, level) VALUES ({', '.join([p] * 5)})"
    cur = conn.cursor()
    if sqlite:
        cur.execute("BEGIN IMMEDIATE")
    with path.open(newline="", encoding="utf-8") as fh:
        profiles: list[tuple[Any, ...]] = []
        skills: list[tuple[Any, ...]] = []
        for row in csv.DictReader(fh):
            uid = key(uuid.UUID(row["user_id"]))
            code, _, level = row["skills"].partition(":")
            profiles.append(
                (key(new_id()), org_key, uid, row["status"], json.dumps(row["languages"].split(";")),
                 row["city"], row["district"], row["latitude"], row["longitude"], "[]", "[]", "", "",
                 "{}", at, at, 0, 0, 0)
            )  # fmt: skip
            skills.append((key(new_id()), org_key, uid, code, int(level)))
            if len(profiles) >= 2000:
                cur.executemany(profile_sql, profiles)
                cur.executemany(skill_sql, skills)
                profiles, skills = [], []
        if profiles:
            cur.executemany(profile_sql, profiles)
            cur.executemany(skill_sql, skills)
    cur.execute("COMMIT") if sqlite else conn.commit()
    conn.close()


def bench_import(kit: Kit) -> None:
    folder = Path(tempfile.mkdtemp(prefix="ngo_kit_bench_import_"))
    kit_times: list[float] = []
    raw_times: list[float] = []
    rates = []
    for attempt in range(3):  # alternating which goes first: the machine is shared
        org, raw_org = new_org(kit, f"bench-import-{attempt}"), new_org(kit, f"bench-raw-{attempt}")
        ids = add_volunteers(kit, org.id, BIG, members=True)
        path, raw_path = folder / f"kit{attempt}.csv", folder / f"raw{attempt}.csv"
        write_csv(path, ids)
        write_csv(raw_path, [new_id() for _ in range(BIG)])
        for side in ("raw", "kit") if attempt % 2 == 0 else ("kit", "raw"):
            start = time.perf_counter()
            if side == "raw":
                raw_import(kit, raw_org.id, raw_path)
                raw_times.append(time.perf_counter() - start)
            else:
                imported = kit_import(kit, org, path)
                kit_times.append(time.perf_counter() - start)
                assert imported == BIG
        rates.append(raw_times[-1] / kit_times[-1])
    rate = statistics.median(rates)
    outcome = "ok" if rate >= TARGET_IMPORT_RATE else f"UNDER the {TARGET_IMPORT_RATE:.0%} goal"
    if rate < TARGET_IMPORT_RATE:
        miss(f"import at {rate:.0%} of raw < {TARGET_IMPORT_RATE:.0%}")
    label = f"import {BIG:,} volunteers from CSV"
    print(
        f"{label:<48} kit {statistics.median(kit_times):7.2f} s"
        f"  raw {statistics.median(raw_times):7.2f} s  rate {rate:5.0%} of raw"
        f" [{min(rates):.0%}-{max(rates):.0%}, load {load_average():.1f}]"
        f" (goal >= {TARGET_IMPORT_RATE:.0%})  {outcome}"
    )
    peaks = {}
    for size in (BIG // 4, BIG):
        mem_org = new_org(kit, f"bench-import-mem-{size}")
        mem_ids = add_volunteers(kit, mem_org.id, size, members=True)
        mem_path = folder / f"mem-{size}.csv"
        write_csv(mem_path, mem_ids)
        tracemalloc.start()
        kit_import(kit, mem_org, mem_path)
        peaks[size] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(
            f"{'import peak memory, ' + format(size, ',') + ' rows':<48} {peaks[size] / 2**20:7.1f} MiB"
        )
    growth = peaks[BIG] / peaks[BIG // 4]
    print(f"{'import memory growth for 4x the rows':<48} {growth:5.2f}x (flat means ~1x)")


def main() -> None:
    url = fresh_database("volunteer")
    kit = Kit(
        settings=settings_for_tests(url), modules=["registration", "volunteer"], autoload=False
    )
    kit.upgrade()
    print(f"database: {kit.engine.dialect.name}")
    only = set(sys.argv[1:]) or {"signup", "match", "import"}
    if "signup" in only:
        bench_signup(kit)
    if "match" in only:
        bench_matching(kit)
    if "import" in only:
        bench_import(kit)
    problems = kit_problems(kit)
    print("verify:", problems or "ok")
    kit.dispose()


if __name__ == "__main__":
    main()
    raise SystemExit(verdict())
    raise SystemExit(verdict())
