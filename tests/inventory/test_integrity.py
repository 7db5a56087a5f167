"""``ngo-kit verify``: the move chain, stock == sum of moves, layers == sum of allocations."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from ngo_kit import SYSTEM, Kit
from ngo_kit.modules.inventory.models import Layer, Move, Stock
from ngo_kit.modules.inventory.testing import Worked
from ngo_kit.tenancy import OrgRead


def test_verify_passes_on_the_worked_example(kit: Kit, worked: Worked) -> None:
    names = {getattr(c, "name", "") for c in kit.checks}
    assert {"inventory_move", "inventory_stock", "inventory_layer"} <= names
    assert kit.verify() == []


def test_verify_names_an_altered_move(kit: Kit, catalogue: OrgRead, worked: Worked) -> None:
    target = worked.ops[6].moves[0].id
    with kit.engine.begin() as conn:
        conn.execute(sa.update(Move).where(Move.id == target).values(quantity=Decimal(2)))
    problems = kit.verify()
    chain = [p for p in problems if p.check == "inventory_move"]
    assert len(chain) == 1 and "altered" in chain[0].message and str(target) in chain[0].message
    assert any(p.check == "inventory_stock" for p in problems)


def test_verify_finds_a_stock_row_that_drifted_from_its_moves(
    kit: Kit, catalogue: OrgRead, worked: Worked
) -> None:
    with kit.engine.begin() as conn:
        conn.execute(
            sa.update(Stock).values(quantity=Stock.quantity + 1).where(Stock.quantity == 7)
        )
    problems = [p for p in kit.verify() if p.check == "inventory_stock"]
    assert len(problems) == 1
    assert "is 8.0000, but its moves sum to 7" in problems[0].message


def test_verify_finds_a_layer_that_drifted_from_its_allocations(
    kit: Kit, catalogue: OrgRead, worked: Worked
) -> None:
    with kit.engine.begin() as conn:
        conn.execute(
            sa.update(Layer).values(quantity=Layer.quantity - 1).where(Layer.quantity == 7)
        )
    problems = [p for p in kit.verify() if p.check == "inventory_layer"]
    assert len(problems) == 1


def test_deleting_a_move_breaks_the_chain(kit: Kit, catalogue: OrgRead) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        for n in range(3):
            tx.inventory.receive(item="kit", quantity=1, to="wh", donation=f"D-{n}")
    with kit.engine.begin() as conn:
        conn.execute(
            sa.text(
                "DELETE FROM inventory_allocation WHERE move_id IN (SELECT id FROM inventory_move WHERE seq = 2)"
            )
        )
        conn.execute(sa.delete(Move).where(Move.seq == 2))
    problems = [p for p in kit.verify() if p.check == "inventory_move"]
    assert problems and "deleted" in problems[0].message


def test_the_verify_command_runs_the_inventory_checks(
    kit: Kit, worked: Worked, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from ngo_kit import cli as cli_module

    monkeypatch.setattr(cli_module.CliState, "kit", property(lambda self: kit))
    result = CliRunner().invoke(cli_module.cli, ["verify"])
    assert result.exit_code == 0, result.output
    assert "inventory_move" in result.output and "inventory_stock" in result.output
    with kit.engine.begin() as conn:
        conn.execute(
            sa.update(Stock).values(quantity=Stock.quantity + 1).where(Stock.quantity == 7)
        )
    result = CliRunner().invoke(cli_module.cli, ["verify"])
    assert result.exit_code == 1
