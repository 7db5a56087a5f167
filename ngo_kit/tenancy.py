"""Organisations, roles, memberships and permission checks.

An organisation is a tenant. A member is an actor (an account id) with a membership holding one
role in that organisation; a role is a named set of permission grants, stored as data, so each
organisation can shape its own roles. ``*`` grants every permission.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.orm import Mapped, mapped_column

from ngo_kit.audit import AUDIT_CHAIN, lock_head
from ngo_kit.db import (
    Base,
    IdMixin,
    OrgMixin,
    TimestampMixin,
    UTCDateTime,
    insert_ignore,
    new_id,
    utcnow,
)
from ngo_kit.errors import AlreadyExists, ConfigurationError, NotFound, ValidationFailed
from ngo_kit.i18n import SUPPORTED_LOCALES, normalise_locale
from ngo_kit.schemas import InputModel, Name, ReadModel, Text, coerce, no_control_characters

if TYPE_CHECKING:
    from ngo_kit.context import Context

ALL_PERMISSIONS = "*"
DEFAULT_ROLES: dict[str, str] = {
    "owner": "Owner",
    "admin": "Administrator",
    "staff": "Staff",
    "volunteer": "Volunteer",
    "member": "Member",
}
#: Roles that are granted every permission, current and future.
SUPERUSER_ROLES = ("owner", "admin")
#: Organisation setting (``org.settings``): the permissions a member may use on themselves
#: (separation of duties: by default nobody awards, approves or certifies themselves).
SELF_ACTION_SETTING = "self_action_allowed"
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])$")


class SystemActor:
    """The actor for bootstrap, migrations and scheduled jobs: passes every permission check."""

    id = uuid.UUID(int=0)

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM = SystemActor()


@dataclass(frozen=True)
class KeyActor:
    """An organisation's API key acting (``Authorization: Bearer ngk_...``): a machine client.

    It holds the ``scopes`` it may use in ``org_id`` only, as they stood when the request began
    (``ngo_kit.api_keys.authenticate``). It is not a person: ``tx.actor_id`` is ``None`` for it,
    so it never acts "for itself"; audit rows name it ``key:<id>``.
    """

    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def audit_label(self) -> str:
        """How audit rows name it (``key:<id>``, within the 40 characters of the column)."""
        return f"key:{self.id}"

    def __repr__(self) -> str:
        return f"API key {self.name}"


Actor = uuid.UUID | SystemActor | KeyActor | None


# --- models -----------------------------------------------------------------------------


class Organisation(IdMixin, TimestampMixin, Base):
    """A tenant: an NGO, or a project on a shared deployment."""

    __tablename__ = "core_organisation"

    slug: Mapped[str] = mapped_column(sa.String(63), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    locale: Mapped[str] = mapped_column(sa.String(16), default="en")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Role(IdMixin, OrgMixin, Base):
    """A named role in one organisation."""

    __tablename__ = "core_role"
    __table_args__ = (sa.UniqueConstraint("org_id", "name"),)

    name: Mapped[str] = mapped_column(sa.String(63))
    label: Mapped[str] = mapped_column(sa.String(200), default="")


class RoleGrant(IdMixin, OrgMixin, Base):
    """One permission granted to one role."""

    __tablename__ = "core_role_grant"
    __table_args__ = (sa.UniqueConstraint("org_id", "role_id", "permission"),)

    role_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("core_role.id", ondelete="CASCADE"))
    permission: Mapped[str] = mapped_column(sa.String(100))


class Membership(IdMixin, OrgMixin, TimestampMixin, Base):
    """An actor's membership of an organisation, with one role."""

    __tablename__ = "core_membership"
    __table_args__ = (sa.UniqueConstraint("org_id", "actor_id"),)

    actor_id: Mapped[uuid.UUID] = mapped_column(index=True)
    role_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("core_role.id", ondelete="RESTRICT"))


# --- schemas ----------------------------------------------------------------------------


class OrgIn(InputModel):
    """A new organisation."""

    slug: Text = Field(min_length=2, max_length=63)
    name: Name = Field(min_length=1, max_length=200)
    timezone: Text = Field(default="UTC", max_length=64)
    locale: Text = Field(default="en", max_length=16)
    settings: dict[Text, Any] = Field(default_factory=dict)

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise PydanticCustomError(
                "invalid_slug", "must be lowercase letters, digits or hyphens"
            )
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return no_control_characters(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        return check_locale(value)


class OrgUpdate(InputModel):
    """Changes to an organisation; fields left out stay as they are."""

    name: Name | None = Field(default=None, min_length=1, max_length=200)
    timezone: Text | None = Field(default=None, max_length=64)
    locale: Text | None = Field(default=None, max_length=16)
    settings: dict[Text, Any] | None = None

    _name = field_validator("name")(lambda cls, v: None if v is None else no_control_characters(v))
    _tz = field_validator("timezone")(lambda cls, v: None if v is None else check_timezone(v))
    _loc = field_validator("locale")(lambda cls, v: None if v is None else check_locale(v))


def check_timezone(value: str) -> str:
    """Accept an IANA zone name (``Asia/Shanghai``)."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise PydanticCustomError("unknown_timezone", "must be an IANA time zone") from exc
    return value


def check_locale(value: str) -> str:
    """Accept ``en`` or ``zh_CN`` (and spellings such as ``zh-CN``)."""
    if value.replace("-", "_") not in (*SUPPORTED_LOCALES, "zh", "en_US", "en_GB"):
        raise PydanticCustomError("unknown_locale", "must be en or zh_CN")
    return normalise_locale(value)


class OrgRead(ReadModel):
    """An organisation as services return it."""

    id: uuid.UUID
    slug: str
    name: str
    timezone: str
    locale: str
    settings: dict[str, Any]
    created_at: dt.datetime

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The organisation's time zone, for display."""
        return zoneinfo.ZoneInfo(self.timezone)


class MemberRead(ReadModel):
    """A membership: who, which role, since when."""

    actor_id: uuid.UUID
    role: str
    joined_at: dt.datetime


class RoleRead(ReadModel):
    """A role with its permissions."""

    name: str
    label: str
    permissions: tuple[str, ...]


# --- service ----------------------------------------------------------------------------


class TenancyService:
    """``tx.tenancy``: organisations, roles and memberships."""

    def __init__(self, tx: Context) -> None:
        self.tx = tx

    # organisations

    def create_organisation(
        self,
        data: OrgIn | dict[str, Any] | None = None,
        /,
        *,
        owner: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> OrgRead:
        """Create an organisation with the default roles and its first owner.

        The owner is ``owner``, else the actor when it is a person. Needs the system actor or
        ``tx.elevated()`` (``kit.create_organisation`` does this). The owner is a member before
        ``ngo_kit_org_created`` fires. Raises ``AlreadyExists`` for a taken slug,
        ``ValidationFailed`` for bad input.
        """
        tx = self.tx
        tx.require_system("org.create")
        spec = coerce(OrgIn, data, kwargs)
        session = tx.session
        taken = session.scalar(sa.select(Organisation.id).where(Organisation.slug == spec.slug))
        if taken is not None:
            raise AlreadyExists("Organisation", spec.slug)
        org_id = new_id()
        now = utcnow()
        with tx.translate_integrity(AlreadyExists("Organisation", spec.slug)):
            session.execute(
                sa.insert(Organisation).values(
                    id=org_id,
                    slug=spec.slug,
                    name=spec.name,
                    timezone=spec.timezone,
                    locale=spec.locale,
                    settings=spec.settings,
                    created_at=now,
                )
            )
        org = OrgRead(
            id=org_id,
            slug=spec.slug,
            name=spec.name,
            timezone=spec.timezone,
            locale=spec.locale,
            settings=spec.settings,
            created_at=now,
        )
        tx.bind_org(org)
        tx.on_commit(lambda: tx.kit.remember_org(org))
        self._seed_roles(org_id)
        tx.audit("org.created", "organisation", org_id, f"organisation {spec.slug} created")
        first_owner = owner if owner is not None else tx.actor_id
        if first_owner is not None:
            self._add(first_owner, "owner")
        tx.emit("ngo_kit_org_created", org=org)
        return org

    def _seed_roles(self, org_id: uuid.UUID) -> None:
        role_ids = {name: new_id() for name in DEFAULT_ROLES}
        self.tx.session.execute(
            sa.insert(Role),
            [
                {"id": role_ids[n], "org_id": org_id, "name": n, "label": lbl}
                for n, lbl in DEFAULT_ROLES.items()
            ],
        )
        grants: list[dict[str, Any]] = []
        for role in SUPERUSER_ROLES:
            grants.append({"role_id": role_ids[role], "permission": ALL_PERMISSIONS})
        for perm in self.tx.kit.permissions.values():
            for role in perm.default_roles:
                if role in role_ids and role not in SUPERUSER_ROLES:
                    grants.append({"role_id": role_ids[role], "permission": perm.name})
        self.tx.session.execute(
            sa.insert(RoleGrant), [{"id": new_id(), "org_id": org_id, **g} for g in grants]
        )

    def organisation(self) -> OrgRead:
        """The organisation this ``tx`` is bound to."""
        return self.tx.require_org()

    def list_organisations(self) -> list[OrgRead]:
        """Every organisation for the system actor; otherwise those the actor is a member of."""
        stmt = sa.select(Organisation).order_by(Organisation.slug)
        actor = self.tx.actor
        if isinstance(actor, KeyActor):
            stmt = stmt.where(Organisation.id == actor.org_id)
        elif not isinstance(actor, SystemActor):
            if actor is None:
                return []
            stmt = stmt.join(Membership, Membership.org_id == Organisation.id).where(
                Membership.actor_id == actor
            )
        return [OrgRead.model_validate(o) for o in self.tx.session.scalars(stmt)]

    def update_organisation(
        self, data: OrgUpdate | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> OrgRead:
        """Change the organisation's name, time zone, locale or settings (``org.manage``)."""
        tx = self.tx
        tx.require("org.manage")
        spec = coerce(OrgUpdate, data, kwargs)
        changes = spec.model_dump(exclude_none=True)
        org = tx.require_org()
        if changes:
            if tx.connection.dialect.name == "mysql":
                # InnoDB checks every foreign key to this row with a shared lock on it, also
                # while a unit of work holds the audit chain's head at commit: updating the row
                # first and waiting for the head after would deadlock with it. Here the head
                # comes first.
                lock_head(tx.connection, org.id, AUDIT_CHAIN)
            tx.session.execute(
                sa.update(Organisation).where(Organisation.id == org.id).values(**changes)
            )
            tx.audit("org.updated", "organisation", org.id, "organisation updated", data=changes)
        updated = org.model_copy(update=changes)
        tx.bind_org(updated)
        tx.on_commit(lambda: tx.kit.remember_org(updated))
        return updated

    def allow_self_action(self, permission: str, allowed: bool = True) -> OrgRead:
        """Let members use ``permission`` on themselves, or (``allowed=False``) stop it (``org.manage``).

        By default nobody awards points to, records or approves hours for, or certifies
        themselves (``SelfActionRefused``). A small organisation where one coordinator does
        everything may allow it, per permission (``points.award``, ``hours.approve``,
        ``certificates.issue``...). The choice is kept in the organisation's settings under
        ``self_action_allowed`` and audited. Raises ``ValidationFailed`` for an undeclared
        permission.
        """
        tx = self.tx
        tx.require("org.manage")
        if permission == ALL_PERMISSIONS:
            raise ValidationFailed("permission", "unknown_permission", permission=permission)
        self._check_declared(permission)
        org = tx.require_org()
        current = set(self_actions(org))
        wanted = current | {permission} if allowed else current - {permission}
        if wanted == current:
            return org
        settings = {**org.settings, SELF_ACTION_SETTING: sorted(wanted)}
        updated = self.update_organisation(settings=settings)
        tx.audit(
            "org.self_action_changed",
            "organisation",
            org.id,
            f"self-action with {permission} {'allowed' if allowed else 'refused'}",
            data={"permission": permission, "allowed": allowed},
        )
        return updated

    def self_action_allowed(self, permission: str) -> bool:
        """True when this organisation lets members use ``permission`` on themselves."""
        return permission in self_actions(self.tx.require_org())

    # members

    def add_member(self, actor_id: uuid.UUID, role: str = "member") -> MemberRead:
        """Make ``actor_id`` a member with ``role`` (``roles.manage``). ``AlreadyExists`` if one.

        A plugin may refuse through ``ngo_kit_refuse_member`` (registration does, for an
        account whose owner did not ask to join); its error is raised and nothing is written.
        """
        tx = self.tx
        tx.require("roles.manage")
        refusal = tx.decide("ngo_kit_refuse_member", tx=tx, actor_id=actor_id, role=role)
        if refusal is not None:
            raise refusal
        return self._add(actor_id, role)

    def _add(self, actor_id: uuid.UUID, role: str) -> MemberRead:
        tx = self.tx
        org = tx.require_org()
        now = utcnow()
        # One statement that looks the role up itself: a missing role or a taken (org, actor),
        # also under a concurrent add, inserts nothing.
        with_role = sa.select(
            sa.literal(new_id(), sa.Uuid()),
            Role.org_id,
            sa.literal(actor_id, sa.Uuid()),
            Role.id,
            sa.literal(now, UTCDateTime()),
        ).where(Role.org_id == org.id, Role.name == role)
        added = tx.connection.execute(
            insert_ignore(tx.connection, Membership)
            .from_select(["id", "org_id", "actor_id", "role_id", "created_at"], with_role)
            .execution_options(preserve_rowcount=True)
        )
        if added.rowcount != 1:
            self._role_id(role)  # NotFound when the role is what is missing
            raise AlreadyExists("Membership", actor_id)
        tx.forget_permissions()
        tx.audit("member.added", "member", actor_id, f"member added as {role}", data={"role": role})
        return MemberRead(actor_id=actor_id, role=role, joined_at=now)

    def set_role(self, actor_id: uuid.UUID, role: str) -> MemberRead:
        """Change a member's role (``roles.manage``). The last owner cannot be demoted."""
        tx = self.tx
        tx.require("roles.manage")
        current = self._membership(actor_id)
        if current is None:
            raise NotFound("Member", actor_id)
        if current.role == "owner" and role != "owner":
            self._keep_an_owner(actor_id)
        role_id = self._role_id(role)
        tx.session.execute(
            sa.update(Membership)
            .where(Membership.org_id == tx.org_id, Membership.actor_id == actor_id)
            .values(role_id=role_id)
        )
        tx.forget_permissions()
        tx.audit(
            "member.role_changed",
            "member",
            actor_id,
            f"role {current.role} -> {role}",
            data={"from": current.role, "to": role},
        )
        return current.model_copy(update={"role": role})

    def remove_member(self, actor_id: uuid.UUID) -> None:
        """End a membership (``roles.manage``, or the member themselves leaving)."""
        tx = self.tx
        if tx.actor != actor_id:
            tx.require("roles.manage")
        current = self._membership(actor_id)
        if current is None:
            raise NotFound("Member", actor_id)
        if current.role == "owner":
            self._keep_an_owner(actor_id)
        tx.session.execute(
            sa.delete(Membership).where(
                Membership.org_id == tx.org_id, Membership.actor_id == actor_id
            )
        )
        tx.forget_permissions()
        tx.audit(
            "member.removed", "member", actor_id, "membership ended", data={"role": current.role}
        )

    def member(self, actor_id: uuid.UUID) -> MemberRead:
        """One member of this organisation; ``NotFound`` for anyone else."""
        found = self._membership(actor_id)
        if found is None:
            raise NotFound("Member", actor_id)
        return found

    def members(self, *, limit: int = 100, offset: int = 0) -> list[MemberRead]:
        """Members of this organisation, oldest first (``members.view``)."""
        self.tx.require("members.view")
        rows = self.tx.session.execute(
            sa.select(Membership.actor_id, Role.name, Membership.created_at)
            .join(Role, Role.id == Membership.role_id)
            .where(Membership.org_id == self.tx.org_id)
            .order_by(Membership.created_at, Membership.actor_id)
            .limit(limit)
            .offset(offset)
        )
        return [MemberRead(actor_id=a, role=r, joined_at=j) for a, r, j in rows]

    def _membership(self, actor_id: uuid.UUID) -> MemberRead | None:
        row = self.tx.session.execute(
            sa.select(Membership.actor_id, Role.name, Membership.created_at)
            .join(Role, Role.id == Membership.role_id)
            .where(Membership.org_id == self.tx.org_id, Membership.actor_id == actor_id)
        ).first()
        return None if row is None else MemberRead(actor_id=row[0], role=row[1], joined_at=row[2])

    def _keep_an_owner(self, leaving: uuid.UUID) -> None:
        owners = self.tx.session.scalar(
            sa.select(sa.func.count())
            .select_from(Membership)
            .join(Role, Role.id == Membership.role_id)
            .where(
                Membership.org_id == self.tx.org_id,
                Role.name == "owner",
                Membership.actor_id != leaving,
            )
        )
        if not owners:
            raise ValidationFailed(
                "role", "last_owner", "the organisation must keep at least one owner"
            )

    # roles

    def roles(self) -> list[RoleRead]:
        """Every role of this organisation with its permissions."""
        rows = self.tx.session.execute(
            sa.select(Role.name, Role.label, RoleGrant.permission)
            .outerjoin(RoleGrant, RoleGrant.role_id == Role.id)
            .where(Role.org_id == self.tx.org_id)
            .order_by(Role.name, RoleGrant.permission)
        )
        grouped: dict[str, tuple[str, list[str]]] = {}
        for name, label, perm in rows:
            entry = grouped.setdefault(name, (label, []))
            if perm is not None:
                entry[1].append(perm)
        return [
            RoleRead(name=n, label=lbl, permissions=tuple(p)) for n, (lbl, p) in grouped.items()
        ]

    def create_role(
        self, name: str, label: str = "", permissions: tuple[str, ...] = ()
    ) -> RoleRead:
        """A new role for this organisation (``roles.manage``)."""
        tx = self.tx
        tx.require("roles.manage")
        if not _SLUG.match(name):
            raise ValidationFailed("name", "invalid_slug")
        for perm in permissions:
            self._check_declared(perm)
        if tx.session.scalar(sa.select(Role.id).where(Role.org_id == tx.org_id, Role.name == name)):
            raise AlreadyExists("Role", name)
        role_id = new_id()
        tx.session.execute(
            sa.insert(Role).values(id=role_id, org_id=tx.org_id, name=name, label=label)
        )
        if permissions:
            tx.session.execute(
                sa.insert(RoleGrant),
                [
                    {"id": new_id(), "org_id": tx.org_id, "role_id": role_id, "permission": p}
                    for p in permissions
                ],
            )
        tx.audit(
            "role.created",
            "role",
            role_id,
            f"role {name} created",
            data={"permissions": list(permissions)},
        )
        return RoleRead(name=name, label=label, permissions=tuple(sorted(permissions)))

    def grant(self, role: str, permission: str) -> None:
        """Grant ``permission`` to ``role`` (``roles.manage``); granting twice is harmless."""
        tx = self.tx
        tx.require("roles.manage")
        self._check_declared(permission)
        role_id = self._role_id(role)
        exists = tx.session.scalar(
            sa.select(RoleGrant.id).where(
                RoleGrant.role_id == role_id, RoleGrant.permission == permission
            )
        )
        if exists is None:
            tx.session.execute(
                sa.insert(RoleGrant).values(
                    id=new_id(), org_id=tx.org_id, role_id=role_id, permission=permission
                )
            )
            tx.forget_permissions()
            tx.audit("role.granted", "role", role_id, f"{permission} granted to {role}")

    def revoke(self, role: str, permission: str) -> None:
        """Take ``permission`` from ``role`` (``roles.manage``)."""
        tx = self.tx
        tx.require("roles.manage")
        role_id = self._role_id(role)
        tx.session.execute(
            sa.delete(RoleGrant).where(
                RoleGrant.role_id == role_id, RoleGrant.permission == permission
            )
        )
        tx.forget_permissions()
        tx.audit("role.revoked", "role", role_id, f"{permission} revoked from {role}")

    def permissions_of(self, actor_id: uuid.UUID) -> frozenset[str]:
        """The permissions ``actor_id`` holds in this organisation (``*`` means all)."""
        rows = self.tx.session.scalars(
            sa.select(RoleGrant.permission)
            .join(Membership, Membership.role_id == RoleGrant.role_id)
            .where(Membership.org_id == self.tx.org_id, Membership.actor_id == actor_id)
        )
        return frozenset(rows)

    def _role_id(self, role: str) -> uuid.UUID:
        role_id = self.tx.connection.scalar(
            sa.select(Role.id).where(Role.org_id == self.tx.org_id, Role.name == role)
        )
        if role_id is None:
            raise NotFound("Role", role)
        return role_id

    def _check_declared(self, permission: str) -> None:
        if permission != ALL_PERMISSIONS and permission not in self.tx.kit.permissions:
            raise ValidationFailed(
                "permission",
                "unknown_permission",
                "is not a declared permission: {permission}",
                permission=permission,
            )


def self_actions(org: OrgRead) -> tuple[str, ...]:
    """The permissions ``org`` lets members use on themselves (its ``self_action_allowed``)."""
    value = org.settings.get(SELF_ACTION_SETTING) or ()
    return tuple(p for p in value if isinstance(p, str)) if isinstance(value, list | tuple) else ()


def undeclared(permission: str) -> ConfigurationError:
    """The error for a service that checks a permission no plugin declared (a typo, usually)."""
    return ConfigurationError(
        "core.E006",
        "permission '{permission}' is checked but no plugin declares it",
        permission=permission,
    )
