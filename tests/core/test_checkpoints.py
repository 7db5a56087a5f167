"""Signed checkpoints: ``kit.anchor`` keeps the chain heads outside the database, and
``kit.verify(against=...)`` catches history rewritten or cut off before them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from chain_forgery import chain_rows, rewrite

from ngo_kit import SYSTEM, Kit
from ngo_kit.audit import AUDIT_CHECK, AuditEntry
from ngo_kit.checkpoints import load
from ngo_kit.cli import main
from ngo_kit.errors import CheckpointRefused, IntegrityFailed
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import TEST_SECRET, MessageCatcher


def write_audit(kit: Kit, org: OrgRead, count: int) -> None:
    for i in range(count):
        with kit.begin(org=org, actor=SYSTEM) as tx:
            tx.audit("test.wrote", "thing", i, f"entry {i}")


Run = Callable[..., tuple[int, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """``run(kit, *args)``: ``ngo-kit ARGS`` on ``kit``'s database, with the test kits' chain
    keys; returns the exit status and what it printed (stdout and stderr)."""
    monkeypatch.setenv("NGO_KIT_SECRET_KEYS", TEST_SECRET)

    def run_(kit: Kit, *args: str) -> tuple[int, str]:
        url = kit.engine.url.render_as_string(hide_password=False)
        capsys.readouterr()
        try:
            main(["--database-url", url, "--no-autoload", "--module", "core", *args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out + err

    return run_


def test_cutting_the_newest_rows_and_moving_the_head_back_is_caught_against_a_checkpoint(
    kit: Kit, org: OrgRead, tmp_path: Path
) -> None:
    write_audit(kit, org, 4)
    checkpoint = tmp_path / "checkpoint.json"
    kit.anchor(to=checkpoint)
    write_audit(kit, org, 2)  # after the checkpoint
    rows = chain_rows(kit, AUDIT_CHECK, org.id)
    anchored_seq = len(rows) - 2
    # the writer deletes the newest rows, from before the checkpoint on, and moves the head to
    # the row now last: the chain alone is whole again
    rewrite(kit, AUDIT_CHECK, org.id, lambda r: r[: anchored_seq - 2])
    assert kit.verify() == []
    [problem] = kit.verify(against=checkpoint)
    assert problem.check == "audit" and problem.org_id == org.id
    assert (
        f"the chain ends at row {anchored_seq - 2}, but the checkpoint of "
        f"{load(checkpoint, kit.chain_keys).label} recorded row {anchored_seq}" in problem.message
    )


def test_history_rewritten_with_the_chain_key_is_caught_against_a_checkpoint(
    kit: Kit, org: OrgRead, tmp_path: Path
) -> None:
    # Even someone holding the chain key cannot change what a checkpoint recorded.
    write_audit(kit, org, 3)
    checkpoint = kit.anchor(to=tmp_path / "checkpoint.json")
    write_audit(kit, org, 1)
    victim = chain_rows(kit, AUDIT_CHECK, org.id)[1]
    rewrite(
        kit,
        AUDIT_CHECK,
        org.id,
        lambda rows: [
            {**r, "summary": "nothing to see"} if r["id"] == victim["id"] else r for r in rows
        ],
        keys=kit.chain_keys,
    )
    assert kit.verify() == []
    problems = kit.verify(against=checkpoint)
    assert len(problems) == 1
    anchored = checkpoint.heads_of("audit")[org.id][0]
    assert f"row {anchored} " in problems[0].message
    assert f"does not match the checkpoint of {checkpoint.label}" in problems[0].message


def test_a_checkpoint_with_a_bad_signature_is_refused(
    kit: Kit, org: OrgRead, tmp_path: Path, run: Run
) -> None:
    write_audit(kit, org, 2)
    path = tmp_path / "checkpoint.json"
    kit.anchor(to=path)
    assert kit.verify(against=path) == []
    document = json.loads(path.read_text())
    document["chains"][0]["seq"] = 1  # as if the chain had been shorter then
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    with pytest.raises(CheckpointRefused) as refused:
        kit.verify(against=forged)
    assert refused.value.code == "checkpoint_refused"
    assert "its signature does not match: it was altered or forged" in refused.value.message
    assert "签名不匹配" in refused.value.message_in("zh_CN")
    code, output = run(kit, "verify", "--against", str(forged))
    assert code == 2
    assert "error [checkpoint_refused]" in output


def test_a_checkpoint_signed_with_another_key_or_not_a_checkpoint_is_refused(
    kit: Kit, org: OrgRead, tmp_path: Path
) -> None:
    write_audit(kit, org, 1)
    document = json.loads(kit.anchor().to_json())
    document["key_id"] = "elsewhere"
    with pytest.raises(CheckpointRefused, match="chain key 'elsewhere', which is not among"):
        kit.verify(against=_written(tmp_path / "other-key.json", document))
    with pytest.raises(CheckpointRefused, match="it is not an ngo-kit checkpoint"):
        kit.verify(against=_written(tmp_path / "other.json", {"hello": "world"}))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(CheckpointRefused, match="cannot be read as JSON"):
        kit.verify(against=tmp_path / "broken.json")


def _written(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    return path


def test_anchor_records_every_chain_head_and_a_directory_keeps_one_file_per_run(
    kit: Kit, org: OrgRead, other_org: OrgRead, tmp_path: Path
) -> None:
    write_audit(kit, org, 2)
    first = kit.anchor(to=tmp_path)
    write_audit(kit, other_org, 1)
    second = kit.anchor(to=tmp_path)
    files = sorted(tmp_path.glob("checkpoint-*.json"))
    assert len(files) == 2
    heads = {(h.chain, h.org_id): (h.seq, h.last_id) for h in second.heads}
    for o in (org, other_org):
        newest = chain_rows(kit, AUDIT_CHECK, o.id)[-1]
        assert heads[("audit", o.id)] == (newest["seq"], str(newest["id"]))
    assert load(tmp_path, kit.chain_keys) == second  # a directory: its newest checkpoint
    assert load(files[0], kit.chain_keys) == first
    assert kit.verify(against=tmp_path) == []


def test_anchor_sends_the_checkpoint_through_the_outbox(
    kit: Kit, org: OrgRead, message_catcher: MessageCatcher
) -> None:
    write_audit(kit, org, 1)
    checkpoint = kit.anchor(send=[("email", "auditor@example.org")])
    [message] = message_catcher.to("auditor@example.org")
    assert message.subject == f"ngo-kit checkpoint {checkpoint.label}"
    assert load(json.loads(message.body), kit.chain_keys) == checkpoint


def test_anchor_refuses_to_sign_chains_that_fail_verification(
    kit: Kit, org: OrgRead, tmp_path: Path, run: Run
) -> None:
    write_audit(kit, org, 2)
    with kit.engine.begin() as conn:
        conn.execute(
            sa.update(AuditEntry)
            .where(AuditEntry.org_id == org.id, AuditEntry.seq == 1)
            .values(summary="rewritten")
        )
    with pytest.raises(IntegrityFailed) as refused:
        kit.anchor(to=tmp_path / "checkpoint.json")
    assert "row 1" in refused.value.message
    assert not (tmp_path / "checkpoint.json").exists()
    code, output = run(kit, "anchor", "--to", str(tmp_path / "checkpoint.json"))
    assert code == 1 and "FAILED audit" in output
    assert not (tmp_path / "checkpoint.json").exists()


def test_the_anchor_and_verify_commands(kit: Kit, org: OrgRead, tmp_path: Path, run: Run) -> None:
    write_audit(kit, org, 2)
    code, output = run(kit, "anchor", "--to", str(tmp_path))
    assert code == 0, output
    assert "checkpoint of" in output and str(tmp_path) in output
    code, output = run(kit, "verify", "--against", str(tmp_path))
    assert code == 0, output
    assert output.startswith("ok:") and "against the checkpoint" in output
    rewrite(kit, AUDIT_CHECK, org.id, lambda rows: rows[:-1])
    code, output = run(kit, "verify", "--against", str(tmp_path))
    assert code == 1
    assert "FAILED audit" in output and "were deleted" in output
    code, output = run(kit, "anchor")
    assert code == 2 and "--to PATH and/or --send" in output
    code, output = run(kit, "anchor", "--send", "no-recipient")
    assert code == 2 and "is not CHANNEL:RECIPIENT" in output
