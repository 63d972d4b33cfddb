"""Every exception mapping, and that a failed call loses nothing already stored."""

from __future__ import annotations

import copy
import datetime as dt
import pathlib

import pytest

import cx
from conftest import NOW, catalog, touchpoints


def test_hierarchy() -> None:
    assert issubclass(cx.ValidationError, cx.CxError)
    assert issubclass(cx.ValidationError, ValueError)
    assert issubclass(cx.RuleError, cx.ValidationError)
    assert issubclass(cx.ParseError, cx.ValidationError)
    assert issubclass(cx.NotFound, cx.CxError) and issubclass(cx.NotFound, LookupError)
    assert issubclass(cx.ConflictError, cx.CxError)
    assert issubclass(cx.StorageError, cx.CxError)


def test_validation_error_names_the_row_and_nothing_is_stored(loaded: cx.Engine) -> None:
    before = len(loaded.touchpoints())
    bad = touchpoints()
    for i, row in enumerate(bad):
        row["id"] = f"new-{i}"
    bad[3]["survey_question"] = "nps"
    bad[3]["survey_score"] = 11.0  # outside 0-10
    bad[3]["survey_scale_min"] = 0.0
    bad[3]["survey_scale_max"] = 10.0
    with pytest.raises(cx.ValidationError) as e:
        loaded.ingest(bad)
    assert e.value.field == "survey.score"
    assert "new-3" in e.value.item and "#3" in e.value.item
    assert isinstance(e.value, ValueError)
    assert len(loaded.touchpoints()) == before  # the batch is atomic


def test_validation_error_for_a_missing_column(engine: cx.Engine) -> None:
    rows = touchpoints()
    for row in rows:
        del row["occurred_at"]
    with pytest.raises(cx.ValidationError) as e:
        engine.ingest(rows)
    assert e.value.field == "occurred_at"
    with pytest.raises(cx.ValidationError):
        engine.decide("c-1", channel="no such channel")
    with pytest.raises(cx.ValidationError):
        engine.ingest(42)


def test_rule_error_has_offer_and_position(loaded: cx.Engine) -> None:
    bad = copy.deepcopy(catalog())
    bad["offers"][1]["eligibility"] = "features.views_7d >= 1 && customer.nope == 2"
    with pytest.raises(cx.RuleError) as e:
        loaded.load_catalog(bad)
    assert e.value.offer_id == "boost"
    assert e.value.line == 1 and e.value.column > 20
    assert "nope" in str(e.value)
    # The catalogue in use stays.
    assert [o.offer_id for o in loaded.decide("c-1", channel="sms").offers] == [
        "upgrade", "boost"]


def test_parse_error(tmp_path: pathlib.Path, engine: cx.Engine) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("offers: [unclosed\n")
    with pytest.raises(cx.ParseError) as e:
        engine.load_catalog(path)
    assert e.value.format == "yaml"


def test_not_found(loaded: cx.Engine) -> None:
    with pytest.raises(cx.NotFound) as e:
        loaded.decide("nobody", channel="sms")
    assert (e.value.kind, e.value.id) == ("customer", "nobody")
    with pytest.raises(LookupError):
        loaded.kpis.series("no-such-kpi")
    with pytest.raises(cx.NotFound) as e:
        loaded.record_outcome("d-unknown", "upgrade", "accepted")
    assert e.value.kind == "decision"


def test_not_found_without_catalog(engine: cx.Engine) -> None:
    with pytest.raises(cx.NotFound) as e:
        engine.kpis.scorecard()
    assert e.value.kind == "catalog"


def test_conflict(loaded: cx.Engine) -> None:
    stolen = {"id": "c-9", "identities": [{"kind": "email", "value": "ann@example.com"}]}
    with pytest.raises(cx.ConflictError) as e:
        loaded.upsert_customers([stolen])
    assert (e.value.kind, e.value.id) == ("customer", "c-9")
    assert "email identity" in e.value.reason and '"c-1"' in e.value.reason
    assert "ann@example.com" not in str(e.value)  # never the identity's value
    assert len(loaded.customers()) == 3


def test_storage_error_for_an_unreachable_server() -> None:
    with pytest.raises(cx.StorageError) as e:
        cx.Engine.postgres("postgres://cx:secret@127.0.0.1:1/nowhere", pool_size=1)
    assert e.value.backend == "postgres"
    assert "127.0.0.1" in str(e.value) and "secret" not in str(e.value)


def test_storage_error_for_a_missing_file(engine: cx.Engine) -> None:
    with pytest.raises(cx.StorageError) as e:
        engine.load_catalog("/no/such/catalog.yaml")
    assert e.value.backend == "file"


def test_invalid_outcome_and_offer(loaded: cx.Engine) -> None:
    d = loaded.decide("c-1", channel="sms")
    with pytest.raises(cx.ValidationError):
        loaded.record_outcome(d.id, "upgrade", "loved")  # type: ignore[arg-type]
    with pytest.raises(cx.ValidationError):
        loaded.record_outcome(d.id, "not-chosen", "accepted")


def test_a_panic_is_a_cx_error_not_a_crash() -> None:
    with pytest.raises(cx.CxError) as e:
        cx._native.panic_for_test()
    assert "internal error" in str(e.value)
    # The runtime still works afterwards.
    engine = cx.Engine.in_memory(now=NOW)
    assert engine.now() == NOW


def test_bad_datetime_argument(loaded: cx.Engine) -> None:
    with pytest.raises(cx.ValidationError):
        loaded.kpis.scorecard(end="yesterday")  # type: ignore[arg-type]
    with pytest.raises(cx.ValidationError):
        loaded.kpis.scorecard(NOW, NOW - dt.timedelta(days=1))
