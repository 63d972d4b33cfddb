//! Real-time triggers, compiled: which fresh touchpoints are candidates (kind, channel,
//! freshness: no store read), and whether a candidate fires (the rule over the touchpoint, the
//! customer and their features, and the repeat pattern over their recent touchpoints).

use crate::arbitration::CompiledCatalog;
use crate::arbitration::features::{FeatureScratch, compute, touchpoint_slots};
use crate::error::Result;
use crate::model::{Customer, DecisionRequest, Touchpoint, Trigger, TriggerAction, TriggerId};
use crate::rules::{CompiledRule, Env, Namespace, compile_rule};
use chrono::TimeDelta;

/// Names trigger rules may read.
const TRIGGER_RULE: &[Namespace] = &[
    Namespace::Touchpoint,
    Namespace::Customer,
    Namespace::Feature,
];

/// A trigger, compiled.
#[derive(Debug, Clone)]
struct CompiledTrigger {
    trigger: Trigger,
    rule: Option<CompiledRule>,
    fresh_for: TimeDelta,
}

/// Every trigger of a catalogue, compiled against its vocabulary.
#[derive(Debug, Clone, Default)]
pub struct CompiledTriggers {
    triggers: Box<[CompiledTrigger]>,
    /// How far back a firing needs the customer's touchpoints.
    lookback: TimeDelta,
}

impl CompiledTriggers {
    /// Compiles the triggers of `catalog`'s catalogue. A rule that does not compile is an
    /// [`Error::InvalidRule`](crate::Error::InvalidRule) naming the trigger and the position.
    pub fn compile(catalog: &CompiledCatalog) -> Result<Self> {
        let vocabulary = catalog.vocabulary();
        let mut lookback = catalog.touchpoint_lookback().as_delta();
        let triggers = catalog
            .catalog()
            .triggers
            .iter()
            .map(|t| {
                let item = format!("trigger {:?} on.rule", t.id.as_str());
                let rule =
                    t.on.rule
                        .as_ref()
                        .map(|r| compile_rule(r.as_str(), vocabulary, TRIGGER_RULE, &item))
                        .transpose()?;
                if let Some(repeat) = &t.repeat {
                    lookback = lookback.max(repeat.within.as_delta());
                }
                Ok(CompiledTrigger {
                    rule,
                    fresh_for: t.fresh_for.as_delta(),
                    trigger: t.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CompiledTriggers {
            triggers: triggers.into_boxed_slice(),
            lookback,
        })
    }

    /// Whether there is any trigger.
    pub fn is_empty(&self) -> bool {
        self.triggers.is_empty()
    }

    /// How far back [`fires`](Self::fires) needs the customer's touchpoints.
    pub fn lookback(&self) -> TimeDelta {
        self.lookback
    }

    /// Whether `t` could fire a trigger at `now`: its kind and channel match and it is fresh.
    pub fn is_candidate(&self, t: &Touchpoint, now: crate::model::Timestamp) -> bool {
        self.triggers.iter().any(|c| {
            let on = &c.trigger.on;
            let age = now - t.occurred_at;
            age <= c.fresh_for
                && age >= -c.fresh_for
                && (on.kinds.is_empty() || on.kinds.contains(&t.kind))
                && (on.channels.is_empty() || on.channels.contains(&t.channel))
        })
    }

    /// The decisions `t` fires for `customer`, whose touchpoints up to now (oldest first,
    /// including `t`) are `history`: one request per trigger that fires, in catalogue order.
    pub fn fires(
        &self,
        catalog: &CompiledCatalog,
        customer: &Customer,
        t: &Touchpoint,
        history: &[Touchpoint],
        now: crate::model::Timestamp,
    ) -> Vec<(TriggerId, DecisionRequest)> {
        let vocabulary = catalog.vocabulary();
        let now_micros = now.timestamp_micros() + 1;
        let mut customer_slots = Vec::new();
        vocabulary
            .customer
            .resolve(&customer.attributes, &mut customer_slots);
        let mut features = Vec::new();
        compute(
            &catalog.features,
            vocabulary,
            history,
            now_micros,
            &mut FeatureScratch::default(),
            &mut features,
        );
        let mut touchpoint = Vec::new();
        touchpoint_slots(vocabulary, t, &mut touchpoint);
        let env = Env {
            customer: &customer_slots,
            touchpoint: &touchpoint,
            features: &features,
            ..Env::empty(now)
        };
        let mut out = Vec::new();
        for c in self.triggers.iter() {
            let on = &c.trigger.on;
            let age = now - t.occurred_at;
            if age > c.fresh_for
                || age < -c.fresh_for
                || !(on.kinds.is_empty() || on.kinds.contains(&t.kind))
                || !(on.channels.is_empty() || on.channels.contains(&t.channel))
            {
                continue;
            }
            if c.rule.as_ref().is_some_and(|r| !r.eval(&env).holds()) {
                continue;
            }
            if let Some(repeat) = &c.trigger.repeat {
                let Some(value) = t.attributes.get(repeat.attribute.as_str()) else {
                    continue;
                };
                let since = t.occurred_at - repeat.within.as_delta();
                let seen = history
                    .iter()
                    .filter(|h| {
                        h.kind == t.kind
                            && h.occurred_at > since
                            && h.occurred_at <= t.occurred_at
                            && h.attributes.get(repeat.attribute.as_str()) == Some(value)
                    })
                    .count();
                if seen < repeat.at_least as usize {
                    continue;
                }
            }
            let TriggerAction::Decide {
                channel,
                placement,
                k,
            } = &c.trigger.action;
            let mut request = DecisionRequest::new(customer.id.clone(), channel.clone())
                .context("trigger", c.trigger.id.as_str());
            if let Some(p) = placement {
                request = request.placement(p.clone());
            }
            if let Some(k) = k {
                request = request.k(*k);
            }
            out.push((c.trigger.id.clone(), request));
        }
        out
    }
}
