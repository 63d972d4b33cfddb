# %% [markdown]
# # `cx` in a notebook
#
# The synthetic world of the tour (a mobile operator: customers, and their touchpoints on the
# web, in the app, on calls, in stores, in surveys), loaded into an in-memory `cx` engine from
# pandas DataFrames. Then: the KPI scorecard by owner, a journey funnel and its worst moments,
# decisions for a few customers with their explanations, a dry run of arbitration over a few
# thousand customers, and a plot saved to PNG.
#
# It runs top to bottom as a script (`python examples/notebook.py`, `--small` for a smaller
# world) and opens as a notebook in Jupyter or VS Code (percent cells).

# %%
import sys
import time
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")  # a script: no display
import matplotlib.pyplot as plt
import pandas as pd

import cx

SMALL = "--small" in sys.argv
ROOT = Path(__file__).resolve().parent.parent if "__file__" in globals() else Path.cwd()
CATALOG = ROOT / "examples" / "catalog" / "telecom.yaml"
OUT = ROOT / "target" / "notebook"
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## Load the world
# `cx.synthetic.world` returns DataFrames; `ingest` reads them through Arrow, without a Python
# loop. The catalogue holds the owners, offers, contact policy, journeys, segments and KPIs.

# %%
world = cx.synthetic.world(
    customers=5_000 if SMALL else 50_000,
    touchpoints=100_000 if SMALL else 1_000_000,
)
engine = cx.Engine.in_memory(now=world.end)
engine.load_catalog(CATALOG)
engine.upsert_customers(world.customers)
started = time.perf_counter()
report = engine.ingest(world.touchpoints)
took = time.perf_counter() - started
print(
    f"ingested {report['inserted']:,} touchpoints in {took:.2f} s "
    f"({report['journey_events']:,} journey events, {report['cases_opened']:,} follow-ups opened)"
)
world.touchpoints.head()

# %% [markdown]
# ## The scorecard, by owner
# Every KPI over its own window ending now: value, sample size, status against the target,
# and a 95% interval for survey measures and shares.

# %%
card = engine.kpis.scorecard()
pd.set_option("display.width", 120)
for owner, rows in card.groupby("owner", sort=False):
    print(f"\n{owner}")
    print(rows[["name", "value", "n", "status", "ci_low", "ci_high", "target"]].to_string(index=False))

# %% [markdown]
# ## A funnel, and the moments of truth
# Exact distinct customers per stage of the e-commerce journey (`overdue`: customers in the stage
# for longer than its `max_time`, here carts left for more than a day); the onboarding journey's
# stages ranked by the NPS answers given in them (the worst moment last).

# %%
funnel = engine.journeys.funnel("purchase")
print(funnel[["stage", "reached", "dropped", "conversion", "gap_median_s", "overdue"]].to_string(index=False))
moments = engine.journeys.moments("onboarding", "nps")
print(moments.to_string(index=False))
if len(moments):
    worst = moments.iloc[-1]
    print(f"worst moment of truth: {worst.stage} (mean NPS answer {worst['mean']:.2f}, n={worst.responses})")

# %% [markdown]
# ## Decisions, explained
# For three customers on sms: what was chosen, where every other offer stopped and why.

# %%
for customer_id in world.customers.id[:3]:
    decision = engine.decide(customer_id, channel="sms", seed=1)
    chosen = [o.offer_id for o in decision.offers] or ["nothing"]
    print(f"\n{customer_id}: {', '.join(chosen)}")
    explained = decision.explain()
    print(explained[["offer_id", "stage", "reason"]].to_string(index=False, max_colwidth=100))
    print("why not upgrade-plan-l?", decision.why_not("upgrade-plan-l"))

# %% [markdown]
# ## Offline evaluation: a dry run over many customers
# `decide_batch` decides in parallel without recording anything or consuming budgets.

# %%
sample = list(world.customers.id[: 1_000 if SMALL else 10_000])
started = time.perf_counter()
batch = engine.decide_batch(sample, channel="sms", seed=7)
took = time.perf_counter() - started
print(f"{len(sample):,} decisions in {took:.2f} s")
print(batch.offer_id.value_counts(dropna=False).to_string())

# %% [markdown]
# ## Plot: the funnel and a KPI trend

# %%
weekly = engine.kpis.series("relationship-nps", freq="W", start=world.start, end=world.end)
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
left.bar(funnel.stage, funnel.reached, color="#4C72B0")
left.set_title("E-commerce funnel: customers reaching each stage")
left.set_ylabel("customers")
right.plot(weekly.window_start, weekly.value, marker="o", color="#DD8452")
right.set_title("Relationship NPS, weekly")
right.set_ylabel("NPS")
right.tick_params(axis="x", rotation=30)
fig.tight_layout()
png = OUT / "notebook.png"
fig.savefig(png, dpi=100)
print(f"saved {png}")
