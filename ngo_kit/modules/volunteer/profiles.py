"""Volunteer profiles: the skill list, a member's profile, approval, the name index, imports."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import AlreadyExists, NotFound, ValidationFailed
from ngo_kit.modules.volunteer.base import SQL, ZERO, VolunteerBase, _rows, name_keys
from ngo_kit.modules.volunteer.errors import WrongState
from ngo_kit.modules.volunteer.models import Certification, NameIndex, Profile, ProfileSkill, Skill
from ngo_kit.modules.volunteer.schemas import ImportReport, ProfileIn, ProfileRead, SkillRead
from ngo_kit.operations import operation
from ngo_kit.schemas import Name, check, coerce
from ngo_kit.tenancy import Membership


class Profiles(VolunteerBase):
    """Profiles and the organisation's skill list."""

    @operation("POST /skills", permission="volunteer.manage", status=201, errors=(AlreadyExists,))
    def add_skill(self, code: str, name: str) -> SkillRead:
        """Put a skill on the organisation's list (``volunteer.manage``)."""
        tx = self.tx
        tx.require("volunteer.manage")
        from ngo_kit.modules.volunteer.schemas import _code

        name = check("name", Name, name)
        try:
            _code(code)
        except Exception:
            raise ValidationFailed("code", "invalid_skill_code") from None
        with tx.translate_integrity(AlreadyExists("Skill", code)):
            tx.session.execute(
                sa.insert(Skill).values(id=new_id(), org_id=tx.org_id, code=code, name=name)
            )
        tx.audit("volunteer.skill_added", "skill", code, f"skill {code} added")
        return SkillRead(code=code, name=name)

    @operation("GET /skills")
    def skills(self) -> list[SkillRead]:
        """The organisation's skill list."""
        rows = self.tx.session.execute(
            sa.select(Skill.code, Skill.name)
            .where(Skill.org_id == self.tx.org_id)
            .order_by(Skill.code)
        )
        return [SkillRead(code=c, name=n) for c, n in rows]

    @operation(
        "POST /profiles",
        permission="volunteer.manage",
        own=True,
        status=201,
        custom=True,
        errors=(AlreadyExists,),
    )
    def save_profile(
        self, data: ProfileIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> ProfileRead:
        """Create or update a member's volunteer profile (the member, or ``volunteer.manage``).

        A new profile starts as ``applicant``. Skills must be on the organisation's list.
        Raises ``NotFound`` ("Member") for someone who is not a member of the organisation.
        """
        tx = self.tx
        spec = coerce(ProfileIn, data, kwargs)
        self._for_self_or(spec.user_id, "volunteer.manage")
        if not self._is_member(spec.user_id):
            raise NotFound("Member", spec.user_id)
        self._check_skills(spec.skills)
        custom = self._validate_custom_fields(spec.custom_fields)
        values: dict[str, Any] = {
            "languages": spec.languages,
            "city": spec.city,
            "district": spec.district,
            "latitude": spec.latitude,
            "longitude": spec.longitude,
            "availability": [w.model_dump() for w in spec.availability],
            "unavailable_dates": sorted({d.isoformat() for d in spec.unavailable_dates}),
            "emergency_contact_name": spec.emergency_contact_name,
            "emergency_contact_phone": spec.emergency_contact_phone,
            "custom_fields": custom,
        }
        session = tx.session
        existing = session.scalar(
            sa.select(Profile.id).where(
                Profile.org_id == tx.org_id, Profile.user_id == spec.user_id
            )
        )
        if existing is None:
            with tx.translate_integrity(AlreadyExists("Volunteer", spec.user_id)):
                session.execute(
                    sa.insert(Profile).values(
                        id=new_id(),
                        org_id=tx.org_id,
                        user_id=spec.user_id,
                        status="applicant",
                        created_at=utcnow(),
                        hours_total=ZERO,
                        attended_count=0,
                        no_show_count=0,
                        **values,
                    )
                )
            action = "volunteer.profile_created"
        else:
            session.execute(sa.update(Profile).where(Profile.id == existing).values(**values))
            action = "volunteer.profile_updated"
        self._replace_skills(spec.user_id, spec.skills)
        self._replace_certifications(spec.user_id, spec.certifications)
        self._index_names([spec.user_id])
        tx.audit(action, "volunteer", spec.user_id, action.split(".")[1].replace("_", " "))
        return self.profile(spec.user_id)

    def _check_skills(self, skills: Mapping[str, int]) -> None:
        if not skills:
            return
        known = set(
            self.tx.session.scalars(
                sa.select(Skill.code).where(
                    Skill.org_id == self.tx.org_id, Skill.code.in_(list(skills))
                )
            )
        )
        unknown = sorted(set(skills) - known)
        if unknown:
            raise ValidationFailed(
                "skills",
                "unknown_skill",
                "is not on the organisation's skill list: {skill}",
                skill=unknown[0],
            )

    def _validate_custom_fields(self, values: dict[str, Any]) -> dict[str, Any]:
        if not values:
            return values
        checked = self.tx.registration.validate_fields("volunteer", values, prefix="custom_fields")
        return dict(checked)

    def _replace_skills(self, user_id: uuid.UUID, skills: Mapping[str, int]) -> None:
        tx = self.tx
        tx.session.execute(
            sa.delete(ProfileSkill).where(
                ProfileSkill.org_id == tx.org_id, ProfileSkill.user_id == user_id
            )
        )
        if skills:
            tx.session.execute(
                sa.insert(ProfileSkill),
                [
                    {
                        "id": new_id(),
                        "org_id": tx.org_id,
                        "user_id": user_id,
                        "skill": s,
                        "level": lvl,
                    }
                    for s, lvl in sorted(skills.items())
                ],
            )

    def _replace_certifications(
        self, user_id: uuid.UUID, certs: Mapping[str, dt.date | None]
    ) -> None:
        tx = self.tx
        tx.session.execute(
            sa.delete(Certification).where(
                Certification.org_id == tx.org_id, Certification.user_id == user_id
            )
        )
        if certs:
            tx.session.execute(
                sa.insert(Certification),
                [
                    {
                        "id": new_id(),
                        "org_id": tx.org_id,
                        "user_id": user_id,
                        "kind": k,
                        "valid_until": v,
                    }
                    for k, v in sorted(certs.items())
                ],
            )

    def _index_names(self, ids: Sequence[uuid.UUID]) -> None:
        people = self._people(ids)
        if not people:
            return
        tx = self.tx
        tx.session.execute(
            sa.delete(NameIndex).where(
                NameIndex.org_id == tx.org_id, NameIndex.user_id.in_(list(people))
            )
        )
        rows = []
        for uid, person in people.items():
            key, full, initials = name_keys(str(getattr(person, "display_name", "") or ""))
            rows.append(
                {
                    "org_id": tx.org_id,
                    "user_id": uid,
                    "name_key": key,
                    "pinyin": full,
                    "initials": initials,
                }
            )
        tx.session.execute(sa.insert(NameIndex), rows)

    @operation("POST /profiles/reindex-names", permission="volunteer.manage")
    def reindex_names(self) -> int:
        """Rebuild the name search index from the registration module (``volunteer.manage``)."""
        self.tx.require("volunteer.manage")
        ids = list(
            self.tx.session.scalars(
                sa.select(Profile.user_id).where(Profile.org_id == self.tx.org_id)
            )
        )
        for start in range(0, len(ids), 1000):
            self._index_names(ids[start : start + 1000])
        return len(ids)

    @operation("GET /me/profile", permission="volunteer.view", own=True, custom=True)
    def profile(self, user_id: uuid.UUID | None = None) -> ProfileRead:
        """A volunteer's profile (their own, or anyone's with ``volunteer.view``)."""
        tx = self.tx
        user_id = self._for_self_or(user_id, "volunteer.view")
        row = tx.session.scalar(
            sa.select(Profile).where(Profile.org_id == tx.org_id, Profile.user_id == user_id)
        )
        if row is None:
            raise NotFound("Volunteer", user_id)
        return self._profile_read(row)

    def _profile_read(self, row: Profile) -> ProfileRead:
        tx = self.tx
        skills = dict(
            tx.session.execute(
                sa.select(ProfileSkill.skill, ProfileSkill.level).where(
                    ProfileSkill.org_id == tx.org_id, ProfileSkill.user_id == row.user_id
                )
            ).all()
        )
        certs = dict(
            tx.session.execute(
                sa.select(Certification.kind, Certification.valid_until).where(
                    Certification.org_id == tx.org_id, Certification.user_id == row.user_id
                )
            ).all()
        )
        return ProfileRead(
            id=row.id,
            user_id=row.user_id,
            status=row.status,
            skills=skills,
            certifications=certs,
            languages=list(row.languages or []),
            city=row.city,
            district=row.district,
            latitude=row.latitude,
            longitude=row.longitude,
            availability=list(row.availability or []),
            unavailable_dates=[dt.date.fromisoformat(d) for d in row.unavailable_dates or []],
            emergency_contact_name=row.emergency_contact_name,
            emergency_contact_phone=row.emergency_contact_phone,
            custom_fields=dict(row.custom_fields or {}),
            hours_total=row.hours_total,
            attended_count=row.attended_count,
            no_show_count=row.no_show_count,
            approved_at=row.approved_at,
        )

    @operation(
        "POST /profiles/{user_id}/approve",
        permission="volunteer.manage",
        custom=True,
        errors=(WrongState,),
    )
    def approve(self, user_id: uuid.UUID) -> ProfileRead:
        """Approve an applicant (``volunteer.manage``); fires ``ngo_kit_volunteer_approved``."""
        tx = self.tx
        tx.require("volunteer.manage")
        result = tx.session.execute(
            sa.update(Profile)
            .where(
                Profile.org_id == tx.org_id,
                Profile.user_id == user_id,
                Profile.status != "approved",
            )
            .values(status="approved", approved_at=utcnow())
        )
        if _rows(result) != 1:
            current = self.profile(user_id)  # NotFound when there is no profile
            raise WrongState(kind="Volunteer", state=current.status, needed="applicant or inactive")
        tx.audit("volunteer.approved", "volunteer", user_id, "volunteer approved")
        profile = self.profile(user_id)
        tx.emit("ngo_kit_volunteer_approved", profile=profile)
        return profile

    @operation("POST /profiles/{user_id}/deactivate", permission="volunteer.manage")
    def deactivate(self, user_id: uuid.UUID) -> ProfileRead:
        """Mark a volunteer inactive (``volunteer.manage``): no new sign-ups."""
        tx = self.tx
        tx.require("volunteer.manage")
        result = tx.session.execute(
            sa.update(Profile)
            .where(Profile.org_id == tx.org_id, Profile.user_id == user_id)
            .values(status="inactive")
        )
        if _rows(result) != 1:
            raise NotFound("Volunteer", user_id)
        tx.audit("volunteer.deactivated", "volunteer", user_id, "volunteer inactive")
        return self.profile(user_id)

    @operation(
        not_http="a check the other operations run before they act; it checks no permission",
        changes=False,
    )
    def profile_exists(self, user_id: uuid.UUID) -> None:
        """Raise ``NotFound`` ("Volunteer") unless ``user_id`` has a profile here."""
        found = self.tx.session.scalar(
            sa.select(Profile.id).where(
                Profile.org_id == self.tx.org_id, Profile.user_id == user_id
            )
        )
        if found is None:
            raise NotFound("Volunteer", user_id)

    @operation(
        not_http="takes a stream of rows and Python callbacks: "
        "`ngo-kit volunteer import` reads the file",
        changes=True,
        permission="volunteer.manage",
        cli="import",
    )
    def import_profiles(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        batch_size: int = 2000,
        on_batch: Callable[[int], None] | None = None,
        on_refused: Callable[[int, str], None] | None = None,
    ) -> ImportReport:
        """Create volunteer profiles from rows (dicts from a CSV or XLSX file, ``volunteer.manage``).

        Columns: ``user_id`` (a member's account id, required), ``status``, ``skills``
        (``first_aid:3;driving``), ``languages`` (``zh;en``), ``city``, ``district``,
        ``latitude``, ``longitude``, ``emergency_contact_name``, ``emergency_contact_phone``.
        Rows are read as a stream and written in batches; a refused row is reported with its
        number and reason and the others are imported. Every refused row is reported: to
        ``on_refused(line, reason)`` as it is found when given (memory then stays flat however
        many are refused), else in ``report.errors``. ``report.rows`` is always
        ``report.imported + report.refused``.
        """
        from ngo_kit.modules.volunteer import files

        self.tx.require("volunteer.manage")
        known_skills = {s.code for s in self.skills()}
        count = imported = refused = 0
        kept: list[tuple[int, str]] = []

        def refuse(line: int, reason: str) -> None:
            nonlocal refused
            refused += 1
            if on_refused is not None:
                on_refused(line, reason)
            else:
                kept.append((line, reason))

        for chunk in _chunks(rows, batch_size):
            start = count
            count += len(chunk)
            parsed: list[dict[str, Any]] = []
            for offset, raw in enumerate(chunk):
                line = start + offset + 1
                try:
                    parsed.append(files.parse_profile_row(raw, known_skills, line))
                except ValueError as exc:
                    refuse(line, str(exc))
            imported += self._write_profiles(parsed, refuse)
            if on_batch is not None:
                on_batch(len(chunk))
        self.tx.audit(
            "volunteer.imported",
            "volunteer",
            "import",
            f"{imported} of {count} rows imported",
            data={"rows": count, "imported": imported, "refused": refused},
        )
        return ImportReport(rows=count, imported=imported, refused=refused, errors=tuple(kept))

    def _write_profiles(
        self, parsed: list[dict[str, Any]], refuse: Callable[[int, str], None]
    ) -> int:
        if not parsed:
            return 0
        tx = self.tx
        session, org_id = tx.session, tx.org_id
        ids = [p["user_id"] for p in parsed]
        members = set(
            session.scalars(
                sa.select(Membership.actor_id).where(
                    Membership.org_id == org_id, Membership.actor_id.in_(ids)
                )
            )
        )
        existing = set(
            session.scalars(
                sa.select(Profile.user_id).where(Profile.org_id == org_id, Profile.user_id.in_(ids))
            )
        )
        now = utcnow()
        profiles: list[dict[str, Any]] = []
        skills: list[dict[str, Any]] = []
        seen: set[uuid.UUID] = set()
        for p in parsed:
            uid = p["user_id"]
            line = p.pop("_line")
            problem = (
                "not a member of the organisation"
                if uid not in members
                else "a profile exists already"
                if uid in existing or uid in seen
                else None
            )
            if problem is not None:
                refuse(line, f"user_id: {problem}")
                continue
            seen.add(uid)
            for code, level in p.pop("skills").items():
                skills.append({"id": new_id(), "user_id": uid, "skill": code, "level": level})
            p["id"] = new_id()
            p["approved_at"] = now if p["status"] == "approved" else None
            profiles.append(p)
        if profiles:
            same = {
                "org_id": org_id,
                "created_at": now,
                "availability": [],
                "unavailable_dates": [],
                "custom_fields": {},
                "hours_total": ZERO,
                "attended_count": 0,
                "no_show_count": 0,
            }
            SQL(tx, "insert_profiles").run_many(tx, profiles, same)
        if skills:
            SQL(tx, "insert_skills").run_many(tx, skills, {"org_id": org_id})
        if profiles:
            self._index_names([p["user_id"] for p in profiles])
        return len(profiles)


def _chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
