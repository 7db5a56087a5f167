"""Sign-up and claim keys are scoped to who uses them; a key reused for another request is refused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from volunteer_helpers import World

from ngo_kit import KeyReused

DAY = dt.date(2026, 11, 2)


def test_someone_sending_anothers_key_signs_up_themselves(world: World) -> None:
    ann, bo = world.person("Ann"), world.person("Bo")
    shift, later = world.shift(), world.shift(48)
    with world.as_(ann) as tx:
        first = tx.volunteer.sign_up(shift.id, key="k1")
    with world.as_(bo) as tx:
        mine = tx.volunteer.sign_up(shift.id, key="k1")
        assert mine.id != first.id and mine.user_id == bo
    with world.as_(ann) as tx:
        assert tx.volunteer.sign_up(shift.id, key="k1").id == first.id
        with pytest.raises(KeyReused) as refused:
            tx.volunteer.sign_up(later.id, key="k1")
        assert refused.value.code == "idempotency_key_reused"
    with world.as_() as tx:
        assert {s.user_id for s in tx.volunteer.signups(shift.id)} == {ann, bo}


def test_claims_are_keyed_per_person_and_a_repeat_returns_the_first(world: World) -> None:
    ann, bo = world.person("Ann"), world.person("Bo")
    with world.as_(ann) as tx:
        first = tx.volunteer.claim_hours(served_on=DAY, hours=Decimal(3), key="c")
    with world.as_(bo) as tx:
        mine = tx.volunteer.claim_hours(served_on=DAY, hours=Decimal(3), key="c")
        assert mine.id != first.id and mine.user_id == bo
    with world.as_() as tx:
        tx.tenancy.remove_member(ann)
    with world.as_(ann) as tx:  # whatever changed since
        assert tx.volunteer.claim_hours(served_on=DAY, hours=Decimal(3), key="c").id == first.id
    with world.as_(bo) as tx, pytest.raises(KeyReused):
        tx.volunteer.claim_hours(served_on=DAY, hours=Decimal(4), key="c")
