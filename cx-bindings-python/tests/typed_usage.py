"""Uses the whole API with the stubs: `mypy --strict` must pass on it (test_typing.py).
It is also run, so the stubs cannot drift from what the module does."""

from __future__ import annotations

import datetime as dt

import pandas as pd

import cx

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)


def main(url: str | None = None) -> None:
    engine: cx.Engine = cx.Engine.postgres(url, pool_size=2, now=NOW) if url else (
        cx.Engine.in_memory(now=NOW))
    backend: str = engine.backend
    assert backend in ("memory", "postgres")
    now: dt.datetime = engine.now()
    engine.set_now(now)
    version: int = engine.load_catalog({
        "owners": [{"id": "growth", "name": "Growth"}],
        "offers": [{"id": "o", "name": "O", "category": "c", "channels": ["sms"], "value": 1}],
        "kpis": [{"id": "n", "name": "N", "owner": "growth", "measure": {"type": "count"},
                  "window": "7d"}],
        "journeys": [{"id": "j", "name": "J", "owner": "growth", "stages": [
            {"id": "s", "name": "S", "owner": "growth", "entry": {"kinds": ["page_view"]}}]}],
    })
    assert version >= 1
    up: dict[str, int] = engine.upsert_customers(pd.DataFrame([{"id": "c", "plan": "S"}]))
    got: dict[str, int] = engine.ingest(
        [{"id": "t", "customer_id": "c", "channel": "web", "kind": "page_view",
          "occurred_at": NOW - dt.timedelta(minutes=1)}],
        batch_size=10,
    )
    assert up["inserted"] == 1 and got["inserted"] == 1
    customers: pd.DataFrame = engine.customers(ids=["c"])
    touchpoints: pd.DataFrame = engine.touchpoints(customer_id="c", start=NOW - dt.timedelta(1),
                                                   end=NOW)
    assert len(customers) == 1 and len(touchpoints) == 1
    decision: cx.Decision = engine.decide("c", channel="sms", context={"page": "/"}, k=1,
                                          placement=None, seed=1, explain=True)
    offers: list[cx.SelectedOffer] = decision.offers
    ids: list[str] = [o.offer_id for o in offers]
    ranks: list[int] = [o.rank for o in offers]
    scores: list[float] = [o.score * o.probability for o in offers]
    assert len(ids) == len(ranks) == len(scores)
    when: dt.datetime = decision.at
    text: str = decision.why_not("o") + decision.id + decision.customer_id + decision.channel
    assert when == NOW and text
    explained: pd.DataFrame = decision.explain()
    batch: pd.DataFrame = engine.decide_batch(["c"], channel="sms", record=False)
    assert len(explained) == 1 and len(batch) >= 1
    if ids:
        recorded: bool = engine.record_outcome(decision.id, ids[0], "shown")
        assert recorded
    card: pd.DataFrame = engine.kpis.scorecard(NOW - dt.timedelta(days=1), NOW)
    series: pd.DataFrame = engine.kpis.series("n", freq="D", start=NOW - dt.timedelta(days=2),
                                              end=NOW)
    funnel: pd.DataFrame = engine.journeys.funnel("j", start=None, end=None, by="channel")
    moments: pd.DataFrame = engine.journeys.moments("j", "nps")
    assert len(card) == 1 and len(series) == 2 and len(funnel) >= 1 and len(moments) == 0
    try:
        engine.decide("nobody", channel="sms")
    except cx.NotFound as e:
        kind: str = e.kind
        assert kind == "customer"
    except cx.CxError:
        raise
    gone: dict[str, int | bool] = engine.forget("c")
    assert gone["profile"] is True
    world: cx.synthetic.World = cx.synthetic.world(customers=5, touchpoints=20)
    assert len(world.touchpoints) == 20 and world.end > world.start
    telco: cx.synthetic.Telco = cx.synthetic.telco(customers=2, touchpoints=5, contacts=1)
    assert telco.k == 3 and isinstance(telco.catalog, dict)


if __name__ == "__main__":
    main()
