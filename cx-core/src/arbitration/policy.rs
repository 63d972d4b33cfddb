//! Contact policy: what each rule means over one customer's contact history, and when a cap
//! lifts.
//!
//! An event counts for a window of length `w` from the instant it happened until just before
//! `t + w`: at `now`, the window holds the events with `now - w < t <= now`. Events after `now`
//! do not count.
//!
//! - `cap` (at most `max` of `outcome` in `scope` per sliding `window`): the offer is excluded
//!   while the window holds `max` or more matching events. With events `t0 <= ... <= t(n-1)`
//!   in the window, the count drops below `max` when `t(n-max)` leaves it: the cap lifts at
//!   `t(n-max) + window`. `max: 0` never lifts.
//! - `suppress` (for `duration` after `after` of `outcome` within `within`): every instant `tj`
//!   at which the last `after` matching events fit in a span shorter than `within`
//!   (`tj - t(j-after+1) < within`) starts a suppression `[tj, tj + duration)`; the offer is
//!   excluded while `now` is in one, and the suppression lifts at the latest such end.

use crate::model::{ContactRule, ContactScope, OutcomeKind};
use std::sync::Arc;

/// A contact-policy rule, ready for decisions.
#[derive(Debug, Clone)]
pub struct CompiledContactRule {
    /// The definition.
    pub rule: ContactRule,
    /// How explanations name it.
    pub(crate) label: Arc<str>,
    pub(crate) scope: ContactScope,
    pub(crate) outcome: OutcomeKind,
    limit: Limit,
}

#[derive(Debug, Clone, Copy)]
enum Limit {
    Cap {
        max: u32,
        window: i64,
    },
    Suppress {
        after: u32,
        within: i64,
        duration: i64,
    },
}

fn micros(span: crate::model::Span) -> i64 {
    span.as_delta().num_microseconds().unwrap_or(i64::MAX)
}

impl CompiledContactRule {
    pub(crate) fn new(rule: &ContactRule) -> Self {
        let (scope, outcome, limit) = match rule {
            ContactRule::Cap {
                scope,
                outcome,
                max,
                window,
                ..
            } => (
                *scope,
                *outcome,
                Limit::Cap {
                    max: *max,
                    window: micros(*window),
                },
            ),
            ContactRule::Suppress {
                scope,
                outcome,
                after,
                within,
                duration,
                ..
            } => (
                *scope,
                *outcome,
                Limit::Suppress {
                    after: *after,
                    within: micros(*within),
                    duration: micros(*duration),
                },
            ),
        };
        CompiledContactRule {
            label: Arc::from(rule.to_string()),
            rule: rule.clone(),
            scope,
            outcome,
            limit,
        }
    }

    /// How far back the rule looks, in microseconds.
    pub(crate) fn lookback(&self) -> i64 {
        match self.limit {
            Limit::Cap { window, .. } => window,
            Limit::Suppress {
                within, duration, ..
            } => within.saturating_add(duration),
        }
    }

    /// The instant at or before which no event changes what the rule blocks at `now`: `now`
    /// minus the lookback. For a cap of zero, none: in the offer and category scopes an event
    /// of any age puts its key among those the rule blocks.
    pub(crate) fn horizon(&self, now: i64) -> i64 {
        match self.limit {
            Limit::Cap { max: 0, .. } => i64::MIN,
            _ => now.saturating_sub(self.lookback()),
        }
    }

    /// Whether the events at `times` (ascending, none after `now`, already restricted to this
    /// rule's outcome and scope key) exclude the offer at `now`; if so, when the exclusion lifts
    /// (`None`: never).
    pub(crate) fn blocks(&self, times: &[i64], now: i64) -> Option<Lift> {
        match self.limit {
            Limit::Cap { max, window } => {
                let start = now.saturating_sub(window);
                let first = times.partition_point(|&t| t <= start);
                let in_window = times.get(first..).unwrap_or(&[]);
                let max = max as usize;
                if in_window.len() < max {
                    return None;
                }
                if max == 0 {
                    return Some(Lift::Never);
                }
                in_window
                    .get(in_window.len() - max)
                    .map(|t| Lift::At(t.saturating_add(window)))
            }
            Limit::Suppress {
                after,
                within,
                duration,
            } => {
                let after = after as usize;
                let mut lift: Option<i64> = None;
                for j in after.saturating_sub(1)..times.len() {
                    let (Some(&last), Some(&first)) = (times.get(j), times.get(j + 1 - after))
                    else {
                        continue;
                    };
                    let end = last.saturating_add(duration);
                    if last - first < within && end > now {
                        lift = Some(lift.map_or(end, |l| l.max(end)));
                    }
                }
                lift.map(Lift::At)
            }
        }
    }
}

/// When an exclusion lifts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lift {
    /// At this instant (microseconds since the epoch).
    At(i64),
    /// Never (a cap of zero).
    Never,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Span;

    const H: i64 = 3_600_000_000;
    const D: i64 = 24 * H;

    fn cap(max: u32, days: i64) -> CompiledContactRule {
        CompiledContactRule::new(&ContactRule::cap(
            ContactScope::Offer,
            OutcomeKind::Shown,
            max,
            Span::days(days),
        ))
    }

    #[test]
    fn a_cap_lifts_when_the_oldest_counted_event_leaves_the_window() {
        let rule = cap(3, 7);
        let now = 100 * D;
        // Four events in the last 7 days: the cap of 3 holds until the second one ages out.
        let times = [now - 10 * D, now - 6 * D, now - 5 * D, now - 2 * D, now - H];
        assert_eq!(
            rule.blocks(&times, now),
            Some(Lift::At(now - 5 * D + 7 * D))
        );
        // Two in the window: not capped.
        assert_eq!(rule.blocks(&times[3..], now), None);
        // An event exactly 7 days old has left a 7-day window; one at `now` is in it.
        assert_eq!(rule.blocks(&[now - 7 * D, now - D, now - H], now), None);
        assert_eq!(
            rule.blocks(&[now - D, now - H, now], now),
            Some(Lift::At(now - D + 7 * D))
        );
        assert_eq!(cap(0, 7).blocks(&[], now), Some(Lift::Never));
    }

    #[test]
    fn a_suppression_runs_from_the_event_that_completes_the_count() {
        let rule = CompiledContactRule::new(&ContactRule::suppress_after_rejections(
            ContactScope::All,
            2,
            Span::days(30),
            Span::days(14),
        ));
        let now = 100 * D;
        // Two rejections 20 days apart, the second 3 days ago: suppressed until 11 days from now.
        let times = [now - 23 * D, now - 3 * D];
        assert_eq!(rule.blocks(&times, now), Some(Lift::At(now + 11 * D)));
        // 40 days apart: never two within 30 days.
        assert_eq!(rule.blocks(&[now - 43 * D, now - 3 * D], now), None);
        // Suppression over: the second rejection was 20 days ago.
        assert_eq!(rule.blocks(&[now - 25 * D, now - 20 * D], now), None);
        // One rejection is not enough.
        assert_eq!(rule.blocks(&[now - D], now), None);
        assert_eq!(rule.lookback(), 44 * D);
    }
}
