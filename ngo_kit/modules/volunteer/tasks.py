"""Tasks and assignments: work that is not a shift, split among people, done and reviewed."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import SelfActionRefused, ValidationFailed
from ngo_kit.modules.volunteer.base import HOURS_PLACES, ZERO, VolunteerBase, _actor, _rows
from ngo_kit.modules.volunteer.errors import TaskOverAssigned, WrongState
from ngo_kit.modules.volunteer.models import Activity, Assignment, Task
from ngo_kit.modules.volunteer.schemas import AssignmentRead, TaskIn, TaskRead
from ngo_kit.operations import operation
from ngo_kit.schemas import Amount, Prose, check, coerce


class Tasks(VolunteerBase):
    """Tasks and their assignments."""

    @operation("POST /tasks", permission="volunteer.manage", status=201)
    def create_task(
        self, data: TaskIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> TaskRead:
        """A task to split among volunteers or workers (``volunteer.manage``)."""
        tx = self.tx
        tx.require("volunteer.manage")
        spec = coerce(TaskIn, data, kwargs)
        if spec.activity_id is not None:
            tx.get_owned(Activity, spec.activity_id, "Activity")
        values = {
            "id": new_id(),
            "org_id": tx.org_id,
            "created_at": utcnow(),
            "assigned": ZERO,
            "done": ZERO,
            "status": "open",
            **spec.model_dump(),
        }
        tx.session.execute(sa.insert(Task).values(**values))
        tx.audit("volunteer.task_created", "task", values["id"], spec.title)
        return self.task(values["id"])

    @operation("GET /tasks/{task_id}")
    def task(self, task_id: uuid.UUID) -> TaskRead:
        """One task."""
        return TaskRead.model_validate(self.tx.get_owned(Task, task_id, "Task"))

    @operation(
        "POST /tasks/{task_id}/assignments",
        permission="volunteer.manage",
        status=201,
        errors=(TaskOverAssigned, WrongState),
    )
    def assign(
        self, task_id: uuid.UUID, user_id: uuid.UUID, quantity: Decimal | int | str
    ) -> AssignmentRead:
        """Offer a share of a task to someone (``volunteer.manage``).

        ``TaskOverAssigned`` when open assignments would exceed the task's quantity.
        """
        tx = self.tx
        tx.require("volunteer.manage")
        amount = self._positive_quantity(quantity)
        task = tx.get_owned(Task, task_id, "Task")
        self._require_volunteer(user_id)
        if task.status != "open":
            raise WrongState(kind="Task", state=task.status, needed="open")
        result = tx.session.execute(
            sa.update(Task)
            .where(Task.id == task.id, Task.assigned + amount <= Task.quantity)
            .values(assigned=Task.assigned + amount)
        )
        if _rows(result) != 1:
            left = tx.session.scalar(
                sa.select(Task.quantity - Task.assigned).where(Task.id == task.id)
            )
            raise TaskOverAssigned(available=str(left))
        values = {
            "id": new_id(),
            "org_id": tx.org_id,
            "task_id": task.id,
            "user_id": user_id,
            "quantity": amount,
            "progress": ZERO,
            "status": "offered",
            "note": "",
            "created_at": utcnow(),
        }
        tx.session.execute(sa.insert(Assignment).values(**values))
        tx.audit(
            "volunteer.assigned",
            "task",
            task.id,
            f"{amount} assigned",
            data={"user_id": str(user_id)},
        )
        return self.assignment(values["id"])

    @staticmethod
    def _positive_quantity(quantity: Decimal | int | str) -> Decimal:
        amount: Decimal = check("quantity", Amount, quantity)
        if amount <= 0:
            raise ValidationFailed("quantity", "not_positive_amount")
        return amount.quantize(Decimal("0.0001"))

    @operation("GET /assignments/{assignment_id}", permission="volunteer.view", own=True)
    def assignment(self, assignment_id: uuid.UUID) -> AssignmentRead:
        """One assignment (its holder, or ``volunteer.view``)."""
        row = self.tx.get_owned(Assignment, assignment_id, "Assignment")
        if row.user_id != self.tx.actor_id:
            self.tx.require("volunteer.view")
        return AssignmentRead.model_validate(row)

    def _own_assignment(self, assignment_id: uuid.UUID, states: tuple[str, ...]) -> Assignment:
        row: Assignment = self.tx.get_owned(Assignment, assignment_id, "Assignment")
        if row.user_id != self.tx.actor_id:
            self.tx.require("volunteer.manage")
        if row.status not in states:
            raise WrongState(kind="Assignment", state=row.status, needed=" or ".join(states))
        return row

    def _set_assignment(self, row: Assignment, expected: str, **values: Any) -> AssignmentRead:
        tx = self.tx
        result = tx.session.execute(
            sa.update(Assignment)
            .where(Assignment.id == row.id, Assignment.status == expected)
            .values(**values)
        )
        if _rows(result) != 1:
            raise WrongState(kind="Assignment", state="changed", needed=expected)
        tx.audit(
            "volunteer.assignment_" + str(values.get("status", "updated")),
            "assignment",
            row.id,
            f"assignment {values.get('status', 'updated')}",
        )
        return AssignmentRead.model_validate(
            tx.session.get(Assignment, row.id, populate_existing=True)
        )

    @operation(
        "POST /assignments/{assignment_id}/accept",
        permission="volunteer.manage",
        own=True,
        errors=(WrongState,),
    )
    def accept_assignment(self, assignment_id: uuid.UUID) -> AssignmentRead:
        """The assignee takes the offered share."""
        row = self._own_assignment(assignment_id, ("offered",))
        return self._set_assignment(row, "offered", status="accepted")

    @operation(
        "POST /assignments/{assignment_id}/decline",
        permission="volunteer.manage",
        own=True,
        errors=(WrongState,),
    )
    def decline_assignment(self, assignment_id: uuid.UUID, *, note: str = "") -> AssignmentRead:
        """The assignee turns the offer down; the quantity returns to the task."""
        note = check("note", Prose, note)
        row = self._own_assignment(assignment_id, ("offered", "accepted"))
        read = self._set_assignment(row, row.status, status="declined", note=note[:500])
        self.tx.session.execute(
            sa.update(Task)
            .where(Task.id == row.task_id)
            .values(assigned=Task.assigned - row.quantity)
        )
        return read

    @operation(
        "POST /assignments/{assignment_id}/progress",
        permission="volunteer.manage",
        own=True,
        errors=(WrongState,),
    )
    def report_progress(
        self, assignment_id: uuid.UUID, progress: Decimal | int | str, *, note: str = ""
    ) -> AssignmentRead:
        """The assignee reports how much is done so far (at most the assigned quantity)."""
        row = self._own_assignment(assignment_id, ("accepted",))
        amount: Decimal = check("progress", Amount, progress)
        note = check("note", Prose, note)
        if amount < 0 or amount > row.quantity:
            raise ValidationFailed("progress", "less_than_equal", le=str(row.quantity))
        return self._set_assignment(row, "accepted", progress=amount, note=note[:500])

    @operation(
        "POST /assignments/{assignment_id}/submit",
        permission="volunteer.manage",
        own=True,
        errors=(WrongState,),
    )
    def submit_assignment(self, assignment_id: uuid.UUID, *, note: str = "") -> AssignmentRead:
        """The assignee says the share is done; a reviewer checks it next."""
        row = self._own_assignment(assignment_id, ("accepted",))
        note = check("note", Prose, note)
        return self._set_assignment(row, "accepted", status="submitted", note=note[:500])

    @operation(
        "POST /assignments/{assignment_id}/review",
        permission="volunteer.manage",
        errors=(SelfActionRefused, WrongState),
    )
    def review_assignment(
        self,
        assignment_id: uuid.UUID,
        *,
        accepted_quantity: Decimal | int | str | None = None,
        approve: bool = True,
        note: str = "",
    ) -> AssignmentRead:
        """A reviewer (``volunteer.manage``) checks a submitted share.

        Approving records the accepted pieces (default: all) on the task, and for an hours
        task the hours in the ledger; it fires ``ngo_kit_task_completed``. Refusing sends the
        share back to ``accepted`` for rework. Reviewers cannot check their own work.
        """
        tx = self.tx
        tx.require("volunteer.manage")
        note = check("note", Prose, note)
        row = tx.get_owned(Assignment, assignment_id, "Assignment")
        tx.refuse_self("volunteer.manage", row.user_id)
        if row.status != "submitted":
            raise WrongState(kind="Assignment", state=row.status, needed="submitted")
        if not approve:
            return self._set_assignment(row, "submitted", status="accepted", note=note[:500])
        amount = (
            row.quantity
            if accepted_quantity is None
            else self._positive_quantity(accepted_quantity)
        )
        if amount > row.quantity:
            raise ValidationFailed("accepted_quantity", "less_than_equal", le=str(row.quantity))
        read = self._set_assignment(
            row,
            "submitted",
            status="completed",
            accepted_quantity=amount,
            progress=amount,
            reviewed_by=_actor(tx),
            reviewed_at=utcnow(),
            note=note[:500],
        )
        # Unaccepted pieces return to the pool; the task is done once everything is.
        tx.session.execute(
            sa.update(Task)
            .where(Task.id == row.task_id)
            .values(done=Task.done + amount, assigned=Task.assigned - (row.quantity - amount))
        )
        tx.session.execute(
            sa.update(Task)
            .where(Task.id == row.task_id, Task.done >= Task.quantity)
            .values(status="done")
        )
        task = self.task(row.task_id)
        if task.unit == "hours":
            self._service._record_hours(
                user_id=row.user_id,
                hours=amount.quantize(HOURS_PLACES),
                source="task",
                served_on=utcnow().astimezone(self.zone).date(),
                activity_id=task.activity_id,
                assignment_id=row.id,
            )
        tx.emit("ngo_kit_task_completed", task=task, assignment=read)
        return read

    @operation("GET /assignments", permission="volunteer.view", own=True)
    def assignments(
        self, *, task_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None
    ) -> list[AssignmentRead]:
        """Assignments of a task or of a person (their own, or ``volunteer.view``)."""
        tx = self.tx
        if user_id is None or user_id != tx.actor_id:
            tx.require("volunteer.view")
        stmt = sa.select(Assignment).where(Assignment.org_id == tx.org_id)
        if task_id is not None:
            stmt = stmt.where(Assignment.task_id == task_id)
        if user_id is not None:
            stmt = stmt.where(Assignment.user_id == user_id)
        return [
            AssignmentRead.model_validate(r)
            for r in tx.session.scalars(stmt.order_by(Assignment.created_at))
        ]
