//! A seeded, reproducible synthetic world: a mobile operator that also sells phones, accessories
//! and add-ons on its web site, in its app and in its stores.
//!
//! ```
//! use cx_core::testkit::world::WorldSpec;
//!
//! let world = WorldSpec::default().with_customers(200).with_touchpoints(4_000).generate();
//! assert_eq!(world.customers.len(), 200);
//! assert_eq!(world.touchpoints.len(), 4_000);
//! // Same spec, same world.
//! assert_eq!(world, world.spec.generate());
//! ```
//!
//! The default [`WorldSpec`] holds 50,000 customers and 1,000,000 touchpoints over the 90 days
//! from 2026-08-24 to 2026-11-22 (UTC), with seed 42; it takes about 1.5 s to generate in a
//! release build. The same spec gives the same world, run after run: the generator draws from
//! the named Xoshiro256++ algorithm (not `StdRng`, whose algorithm may change between `rand`
//! releases) and uses no hash-map iteration order and no clock. (It does use the platform's `ln`
//! and `powf`, so another platform's maths library could in principle round differently.)
//! Customers depend only on the seed, the customer count and the time window, so a world with
//! more touchpoints has the same customers.
//!
//! # Customers
//!
//! Ids `c-000000`, `c-000001`, ... Each customer has:
//!
//! | attribute | type | what |
//! |---|---|---|
//! | `plan` | string | `S` (5 GB, 15/month), `M` (20 GB, 25), `L` (50 GB, 35), `XL` (200 GB, 55) |
//! | `data_cap_gb`, `monthly_fee` | number | from the plan |
//! | `overage_usd_per_gb` | number | what data over the cap costs, from the plan: 10 (S, M), 8 (L), 6 (XL) |
//! | `data_used_gb` | number | used so far in the current billing cycle; about a quarter of the customers use data at over 80 % of their cap a month, 1 in 12 at over the cap |
//! | `billing_cycle_day` | number | 1 to 28 |
//! | `days_to_reset` | number | days left in the current 30-day billing cycle at the end of the window, 0 to 29 (0: it resets that day); consistent with `data_used_gb` |
//! | `region`, `home_store` | string | `north`, `south`, `east`, `west`, `central`; `store-<region>-<1..3>` |
//! | `tenure_months` | number | skewed: many recent customers, a long tail of loyal ones |
//! | `signed_up_at` | timestamp | consistent with `tenure_months`; about 4 % signed up inside the window |
//! | `age_band` | string | `18-24` ... `65+`; older customers call and visit stores more, use the app less |
//! | `devices` | list of strings | phone models owned (`nova-5`, `nova-6-pro`, `pulse-a3`...), sometimes a tablet or watch |
//! | `frequent_traveller` | bool | about 12 %; they roam and buy roaming passes |
//! | `name`, `email` | string | marked PII |
//!
//! Identities: every customer has an `email` and a `phone` identity; about 75 % have a `device`
//! (the app) and 55 % a `cookie` (the web site). Identities are unique across customers.
//!
//! Consent, one record per channel and purpose on `email`, `sms` and `app`: `marketing` is granted
//! by about 62 % (email), 48 % (sms) and 40 % (app) of customers, otherwise denied or, for about
//! a third of those, revoked at some point; some email grants expire two years after they were
//! given. `service` is granted by about 98 %.
//!
//! # Touchpoints
//!
//! Activity is skewed: per-customer activity follows a Pareto law (a few heavy users, a long
//! tail of light ones) and about 3 % of customers are dormant. Each customer's touchpoints come
//! in episodes, at hours that follow the channel's daily pattern (web and app peak in the
//! evening, calls and stores in business hours, fewer calls at weekends, more store visits):
//!
//! | episode | channel | kinds and attributes |
//! |---|---|---|
//! | web visit | `web` | `page_view` (`page`, `dwell_seconds`), `product_view` (`product`, `category`, `price`, `dwell_seconds`), sometimes `add_to_cart` then `purchase` (`product`, `category`, `amount`) |
//! | app session | `app` | `page_view` (screens `usage`, `bill`, `roaming`...), `product_view`, add-on `purchase` (data add-ons for customers near their cap, roaming passes for travellers) |
//! | usage record | `network` (a [`Channel::Other`]) | `usage` (`data_gb`, `roaming`) |
//! | message | `email`, `sms` | `message_sent` (`campaign`, `purpose`), sometimes `message_opened`; marketing only while consent is granted |
//! | support | `call`, `chat` | `support_contact` or `complaint` (`topic`, `handle_seconds`, `resolved`); unresolved contacts are sometimes repeated |
//! | store visit | `store` | `purchase` or `support_contact`, with `store` |
//! | survey | `survey` | `survey_response` with `trigger` and an answer |
//! | sign-up | `web`, `app`, `store` | `sign_up` (`plan`) for customers who joined in the window |
//!
//! Survey answers: `nps` on [`Scale::NPS`] (skewed towards 7-10, lower after complaints; the
//! default world's NPS is around +15), `csat_support` and `csat_purchase` on [`Scale::CSAT_5`],
//! `ces_support` on [`Scale::CES_7`] (7: very easy), all lower when the contact was unresolved.
//!
//! Touchpoint ids are `t-0000000`, `t-0000001`, ... in order of occurrence, so unique per
//! customer (and overall), and [`World::touchpoints`] is sorted by `occurred_at`, as a queue
//! would deliver it. A share of the web visits, app sessions and emails
//! ([`WorldSpec::identity_share`], 2 % by default: about 1 % of all touchpoints) name their
//! customer by an identity the customer has (`Subject::Identity`: cookie, device or email) rather
//! than by id, to exercise resolution at ingest. Every customer and touchpoint passes
//! `validate()`, and the customers can be upserted as one batch.
//!
//! Per customer over the window, support episodes, store visits, relationship surveys and
//! messages are capped (6, 4, 1 and 36), so heavy users are heavy on the web, in the app and on
//! the network, as in life.

use crate::model::{
    Attributes, Channel, Consent, ConsentStatus, Customer, CustomerId, Identity, Kind, Name,
    Purpose, Scale, Subject, SurveyAnswer, Text, TimeRange, Timestamp, Touchpoint, TouchpointId,
    Value,
};
use chrono::{DateTime, Datelike, TimeDelta, Utc};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::fmt;

/// What world to generate. Start from [`WorldSpec::default`] and change what you need.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WorldSpec {
    /// The seed: the same spec gives the same world.
    pub seed: u64,
    /// Number of customers.
    pub customers: usize,
    /// Number of touchpoints (exactly; none when there are no customers).
    pub touchpoints: usize,
    /// First instant of the window touchpoints occur in.
    pub start: Timestamp,
    /// Length of the window, in days (1 to 36,500; other values are clamped).
    pub days: u32,
    /// Share of web, app and email touchpoints whose subject is an identity (cookie, device,
    /// email) rather than the customer id; 0 to 1.
    pub identity_share: f64,
}

impl Default for WorldSpec {
    /// 50,000 customers, 1,000,000 touchpoints over the 90 days from 2026-08-24 (UTC), seed 42.
    fn default() -> Self {
        WorldSpec {
            seed: 42,
            customers: 50_000,
            touchpoints: 1_000_000,
            // 2026-08-24T00:00:00Z
            start: DateTime::from_timestamp(1_787_529_600, 0).unwrap_or(DateTime::UNIX_EPOCH),
            days: 90,
            identity_share: 0.02,
        }
    }
}

impl WorldSpec {
    /// Uses `seed`.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Generates `n` customers.
    #[must_use]
    pub fn with_customers(mut self, n: usize) -> Self {
        self.customers = n;
        self
    }

    /// Generates `n` touchpoints.
    #[must_use]
    pub fn with_touchpoints(mut self, n: usize) -> Self {
        self.touchpoints = n;
        self
    }

    /// Starts the window at `start`.
    #[must_use]
    pub fn with_start(mut self, start: Timestamp) -> Self {
        self.start = start;
        self
    }

    /// Makes the window `days` long.
    #[must_use]
    pub fn with_days(mut self, days: u32) -> Self {
        self.days = days;
        self
    }

    /// Sets the share of touchpoints that name their customer by an identity.
    #[must_use]
    pub fn with_identity_share(mut self, share: f64) -> Self {
        self.identity_share = share;
        self
    }

    /// The first instant after the window.
    pub fn end(&self) -> Timestamp {
        later(self.start, TimeDelta::days(self.window_days()))
    }

    /// The window, `[start, end)`.
    pub fn range(&self) -> TimeRange {
        TimeRange::new(self.start, self.end())
    }

    /// The window's length in days, as generated: `days` clamped to 1 to 36,500.
    fn window_days(&self) -> i64 {
        i64::from(self.days.clamp(1, MAX_DAYS))
    }

    /// Generates the world.
    pub fn generate(&self) -> World {
        World::generate(self)
    }
}

/// A generated world: customers and their touchpoints, ordered by `occurred_at`.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct World {
    /// The spec it was generated from.
    pub spec: WorldSpec,
    /// The customers, in id order.
    pub customers: Vec<Customer>,
    /// The touchpoints, ordered by `occurred_at`.
    pub touchpoints: Vec<Touchpoint>,
}

impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("World")
            .field("spec", &self.spec)
            .field("customers", &self.customers.len())
            .field("touchpoints", &self.touchpoints.len())
            .finish()
    }
}

impl World {
    /// Generates the world `spec` describes.
    pub fn generate(spec: &WorldSpec) -> World {
        let days = spec.window_days();
        let window = Window {
            start: spec.start,
            end_ms: days * DAY_MS,
            days,
            first_weekday: i64::from(spec.start.weekday().num_days_from_monday()),
        };
        let (customers, profiles) = generate_customers(spec, &window);
        let touchpoints = generate_touchpoints(spec, &window, &customers, &profiles);
        World {
            spec: spec.clone(),
            customers,
            touchpoints,
        }
    }

    /// The first instant after the window (a natural "now" for engines over this world).
    pub fn end(&self) -> Timestamp {
        self.spec.end()
    }

    /// The window touchpoints occur in.
    pub fn range(&self) -> TimeRange {
        self.spec.range()
    }

    /// The customer with id `id`.
    pub fn customer(&self, id: &str) -> Option<&Customer> {
        let i = self
            .customers
            .binary_search_by(|c| c.id.as_str().cmp(id))
            .ok()?;
        self.customers.get(i)
    }

    /// The touchpoints in slices of `size` (the last may be shorter); `size` 0 counts as 1.
    pub fn batches(&self, size: usize) -> std::slice::Chunks<'_, Touchpoint> {
        self.touchpoints.chunks(size.max(1))
    }
}

/// Splits `items` into owned batches of `size` (the last may be shorter) without copying:
/// `batches(world.touchpoints, 10_000)` feeds `Engine::ingest`. `size` 0 counts as 1.
pub fn batches<T>(items: Vec<T>, size: usize) -> Batches<T> {
    Batches {
        items: items.into_iter(),
        size: size.max(1),
    }
}

/// Owned batches of a vector; see [`batches`].
#[derive(Debug)]
pub struct Batches<T> {
    items: std::vec::IntoIter<T>,
    size: usize,
}

impl<T> Iterator for Batches<T> {
    type Item = Vec<T>;

    fn next(&mut self) -> Option<Vec<T>> {
        let batch: Vec<T> = self.items.by_ref().take(self.size).collect();
        (!batch.is_empty()).then_some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.items.len().div_ceil(self.size);
        (n, Some(n))
    }
}

impl<T> ExactSizeIterator for Batches<T> {}

// ---------------------------------------------------------------------------------------------
// Tables. Weights are relative; every table is non-empty.

/// Longest window, in days (a century).
const MAX_DAYS: u32 = 36_500;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;
/// Average month, for tenure.
const MONTH_MS: i64 = 2_629_746_000;

#[derive(Clone, Copy, Default)]
struct Plan {
    name: &'static str,
    cap_gb: f64,
    fee: f64,
    overage_per_gb: f64,
}

const fn plan(name: &'static str, cap_gb: f64, fee: f64, overage_per_gb: f64) -> Plan {
    Plan {
        name,
        cap_gb,
        fee,
        overage_per_gb,
    }
}

const PLANS: &[(Plan, f64)] = &[
    (plan("S", 5.0, 15.0, 10.0), 30.0),
    (plan("M", 20.0, 25.0, 10.0), 35.0),
    (plan("L", 50.0, 35.0, 8.0), 25.0),
    (plan("XL", 200.0, 55.0, 6.0), 10.0),
];

const REGIONS: &[(&str, f64)] = &[
    ("north", 18.0),
    ("south", 22.0),
    ("east", 20.0),
    ("west", 21.0),
    ("central", 19.0),
];

/// Age band, and how digital the band is (0 to 1).
const AGE_BANDS: &[((&str, f64), f64)] = &[
    (("18-24", 0.95), 12.0),
    (("25-34", 0.9), 20.0),
    (("35-44", 0.8), 20.0),
    (("45-54", 0.65), 18.0),
    (("55-64", 0.45), 16.0),
    (("65+", 0.3), 14.0),
];

const PHONES: &[(&str, f64)] = &[
    ("nova-5", 14.0),
    ("nova-6", 18.0),
    ("nova-6-pro", 12.0),
    ("pulse-a3", 20.0),
    ("pulse-a5", 22.0),
    ("orbit-fold", 4.0),
];

const OTHER_DEVICES: &[(&str, f64)] = &[("tab-s9", 1.0), ("pulse-watch", 1.0)];

const FIRST_NAMES: &[&str] = &[
    "Ada", "Aisha", "Alex", "Amara", "Ana", "Ben", "Carlos", "Chen", "Chloe", "Daniel", "Elena",
    "Emma", "Fatima", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jack", "James", "Jin",
    "Kai", "Laura", "Leo", "Liam", "Lucia", "Maya", "Mehmet", "Mia", "Noah", "Nora", "Olga",
    "Omar", "Priya", "Rafael", "Rosa", "Sam", "Sara", "Sofia", "Tariq", "Theo", "Una", "Victor",
    "Wei", "Yara", "Yusuf", "Zoe",
];

const LAST_NAMES: &[&str] = &[
    "Abebe", "Ahmed", "Andersen", "Brown", "Costa", "Dubois", "Garcia", "Hansen", "Hoang",
    "Ivanova", "Jones", "Kim", "Kowalski", "Kumar", "Lee", "Lopez", "Martin", "Meyer", "Moreau",
    "Mueller", "Nakamura", "Nguyen", "Novak", "Okafor", "Olsen", "Patel", "Perez", "Rossi",
    "Santos", "Schmidt", "Silva", "Singh", "Smith", "Suzuki", "Tanaka", "Taylor", "Walker", "Wang",
    "Williams", "Wilson", "Yilmaz", "Zhang",
];

const EMAIL_DOMAINS: &[&str] = &["example.com", "example.net", "example.org"];

#[derive(Clone, Copy, Default)]
struct Product {
    id: &'static str,
    category: &'static str,
    price: f64,
}

const fn product(id: &'static str, category: &'static str, price: f64) -> Product {
    Product {
        id,
        category,
        price,
    }
}

const NOVA_6_PRO: Product = product("nova-6-pro", "phone", 899.0);
const NOVA_6: Product = product("nova-6", "phone", 699.0);
const PULSE_A5: Product = product("pulse-a5", "phone", 349.0);
const PULSE_A3: Product = product("pulse-a3", "phone", 229.0);
const ORBIT_FOLD: Product = product("orbit-fold", "phone", 1499.0);
const CASE: Product = product("case", "accessory", 29.0);
const CHARGER: Product = product("charger-65w", "accessory", 39.0);
const EARBUDS: Product = product("earbuds-pro", "accessory", 129.0);
const SCREEN_GUARD: Product = product("screen-guard", "accessory", 15.0);
const PLAN_M: Product = product("plan-m", "plan", 25.0);
const PLAN_L: Product = product("plan-l", "plan", 35.0);
const PLAN_XL: Product = product("plan-xl", "plan", 55.0);
const DATA_ADDON: Product = product("data-addon-5gb", "addon", 10.0);
const ROAMING_PASS: Product = product("roaming-pass-7d", "addon", 15.0);
const INSURANCE: Product = product("device-insurance", "addon", 9.0);

const WEB_PRODUCTS: &[(Product, f64)] = &[
    (NOVA_6_PRO, 14.0),
    (NOVA_6, 16.0),
    (PULSE_A5, 14.0),
    (PULSE_A3, 10.0),
    (ORBIT_FOLD, 6.0),
    (CASE, 6.0),
    (CHARGER, 4.0),
    (EARBUDS, 6.0),
    (SCREEN_GUARD, 3.0),
    (PLAN_M, 6.0),
    (PLAN_L, 6.0),
    (PLAN_XL, 4.0),
    (DATA_ADDON, 3.0),
    (ROAMING_PASS, 3.0),
    (INSURANCE, 2.0),
];

const APP_PRODUCTS: &[(Product, f64)] = &[
    (DATA_ADDON, 10.0),
    (ROAMING_PASS, 6.0),
    (INSURANCE, 4.0),
    (CASE, 4.0),
    (EARBUDS, 3.0),
    (NOVA_6, 3.0),
    (PULSE_A5, 3.0),
];

const STORE_PRODUCTS: &[(Product, f64)] = &[
    (NOVA_6_PRO, 10.0),
    (NOVA_6, 14.0),
    (PULSE_A5, 14.0),
    (PULSE_A3, 12.0),
    (ORBIT_FOLD, 3.0),
    (CASE, 18.0),
    (CHARGER, 12.0),
    (EARBUDS, 8.0),
    (SCREEN_GUARD, 12.0),
];

const WEB_PAGES: &[(&str, f64)] = &[
    ("home", 30.0),
    ("plans", 14.0),
    ("phones", 16.0),
    ("support", 10.0),
    ("billing", 10.0),
    ("coverage", 5.0),
    ("roaming", 4.0),
    ("account", 8.0),
];

const APP_SCREENS: &[(&str, f64)] = &[
    ("usage", 30.0),
    ("bill", 18.0),
    ("plans", 10.0),
    ("roaming", 4.0),
    ("shop", 10.0),
    ("support", 8.0),
    ("profile", 5.0),
];

const SUPPORT_TOPICS: &[(&str, f64)] = &[
    ("billing", 30.0),
    ("network", 20.0),
    ("device", 15.0),
    ("plan_change", 15.0),
    ("roaming", 6.0),
    ("cancellation", 5.0),
    ("other", 9.0),
];

const STORE_TOPICS: &[(&str, f64)] = &[("device", 50.0), ("billing", 20.0), ("plan_change", 30.0)];

const MARKETING_CAMPAIGNS: &[(&str, f64)] = &[
    ("autumn-upgrade", 25.0),
    ("nova-6-launch", 20.0),
    ("roaming-bundle", 10.0),
    ("loyalty-bonus", 20.0),
    ("black-friday", 25.0),
];

const SERVICE_CAMPAIGNS: &[(&str, f64)] = &[
    ("bill-ready", 45.0),
    ("payment-reminder", 20.0),
    ("outage-notice", 10.0),
    ("plan-renewal", 10.0),
    ("data-cap-80", 15.0),
];

/// Hour-of-day weights, 00:00 to 23:00 UTC.
type Hours = [f64; 24];

const DIGITAL_HOURS: Hours = [
    2.0, 1.0, 0.6, 0.4, 0.4, 1.0, 3.0, 6.0, 8.0, 9.0, 9.0, 10.0, 12.0, 11.0, 10.0, 10.0, 10.0,
    11.0, 13.0, 15.0, 16.0, 14.0, 9.0, 5.0,
];
const CONTACT_HOURS: Hours = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 8.0, 12.0, 12.0, 11.0, 9.0, 10.0, 11.0, 10.0, 9.0, 8.0,
    5.0, 2.0, 1.0, 0.5, 0.0, 0.0,
];
const STORE_HOURS: Hours = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 4.0, 7.0, 9.0, 12.0, 12.0, 9.0, 8.0, 9.0, 11.0,
    12.0, 7.0, 0.0, 0.0, 0.0, 0.0,
];
const CAMPAIGN_HOURS: Hours = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 4.0, 12.0, 14.0, 10.0, 6.0, 5.0, 5.0, 5.0, 6.0, 10.0,
    12.0, 8.0, 4.0, 0.0, 0.0, 0.0,
];

/// Per customer over the window: support episodes, store visits, relationship surveys, messages.
const MAX_CONTACTS: u32 = 6;
const MAX_VISITS: u32 = 4;
const MAX_SURVEYS: u32 = 1;
const MAX_MESSAGES: u32 = 36;

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Episode {
    #[default]
    Web,
    App,
    Usage,
    Message,
    Support,
    Store,
    Survey,
}

// Sources (the system that reported a touchpoint).
const SRC_WEB: &str = "web-analytics";
const SRC_APP: &str = "app-sdk";
const SRC_NETWORK: &str = "network-mediation";
const SRC_ESP: &str = "email-platform";
const SRC_SMS: &str = "sms-gateway";
const SRC_CONTACT: &str = "contact-center";
const SRC_POS: &str = "store-pos";
const SRC_SURVEY: &str = "survey-tool";
const SRC_CRM: &str = "crm";

// Attribute names.
const AMOUNT: Name = Name::from_static("amount");
const CAMPAIGN: Name = Name::from_static("campaign");
const CATEGORY: Name = Name::from_static("category");
const DATA_GB: Name = Name::from_static("data_gb");
const DWELL: Name = Name::from_static("dwell_seconds");
const HANDLE: Name = Name::from_static("handle_seconds");
const PAGE: Name = Name::from_static("page");
const PLAN: Name = Name::from_static("plan");
const PRICE: Name = Name::from_static("price");
const PRODUCT: Name = Name::from_static("product");
const PURPOSE: Name = Name::from_static("purpose");
const RESOLVED: Name = Name::from_static("resolved");
const ROAMING: Name = Name::from_static("roaming");
const STORE: Name = Name::from_static("store");
const TOPIC: Name = Name::from_static("topic");
const TRIGGER: Name = Name::from_static("trigger");

/// A string value from a constant, without allocating.
fn text(s: &'static str) -> Value {
    Value::String(Text::const_new(s))
}

/// `prefix` followed by `n` in decimal, zero-padded to `width` digits; inline, no allocation.
fn numbered(prefix: &str, n: usize, width: usize) -> Text {
    // Digits are written right to left at the end of the buffer.
    let mut buf = [b'0'; 32];
    let end = buf.len();
    let mut start = end;
    let mut rest = n;
    while start > 0 && (rest > 0 || end - start < width.max(1)) {
        start -= 1;
        if let Some(d) = buf.get_mut(start) {
            *d = b'0' + (rest % 10) as u8;
        }
        rest /= 10;
    }
    let digits = buf
        .get(start..)
        .and_then(|d| std::str::from_utf8(d).ok())
        .unwrap_or("");
    let mut out = Text::with_capacity(prefix.len() + digits.len());
    out.push_str(prefix);
    out.push_str(digits);
    out
}

/// `t + by`, saturating at the ends of time (the generator never panics, whatever the spec).
fn later(t: Timestamp, by: TimeDelta) -> Timestamp {
    t.checked_add_signed(by)
        .unwrap_or(if by < TimeDelta::zero() {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
}

/// SplitMix64's finaliser: a bijection on `u64`, so distinct inputs give distinct outputs.
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn round_to(x: f64, step: f64) -> f64 {
    (x / step).round() * step
}

// ---------------------------------------------------------------------------------------------
// Randomness.

/// The generator's random source, with helpers that never panic.
struct Dice(Xoshiro256PlusPlus);

impl Dice {
    /// Stream number `stream` of `seed`: streams are independent of each other.
    fn new(seed: u64, stream: u64) -> Self {
        Dice(Xoshiro256PlusPlus::seed_from_u64(mix64(
            seed ^ mix64(stream.wrapping_add(0x9e37_79b9_7f4a_7c15)),
        )))
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `[0, n)`; 0 when `n` is 0 or less.
    fn below(&mut self, n: i64) -> i64 {
        if n <= 0 { 0 } else { self.0.random_range(0..n) }
    }

    fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Exponentially distributed with mean `mean`.
    fn exp(&mut self, mean: f64) -> f64 {
        -(1.0 - self.unit()).ln() * mean
    }

    /// Number of successes before the first failure, each step continuing with `p`; at most `max`.
    fn geometric(&mut self, p: f64, max: u32) -> u32 {
        let mut n = 0;
        while n < max && self.chance(p) {
            n += 1;
        }
        n
    }

    /// An index drawn with the given weights (the last index if they sum to zero).
    fn index(&mut self, weights: impl Iterator<Item = f64> + Clone) -> usize {
        let total: f64 = weights.clone().sum();
        let mut r = self.unit() * total;
        let mut last = 0;
        for (i, w) in weights.enumerate() {
            if r < w {
                return i;
            }
            r -= w;
            last = i;
        }
        last
    }

    /// An item drawn from a weighted table.
    fn pick<T: Copy + Default>(&mut self, table: &[(T, f64)]) -> T {
        let i = self.index(table.iter().map(|(_, w)| *w));
        table.get(i).map(|(t, _)| *t).unwrap_or_default()
    }

    /// An item drawn uniformly.
    fn one_of<T: Copy + Default>(&mut self, items: &[T]) -> T {
        let i = self.below(items.len() as i64) as usize;
        items.get(i).copied().unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Customers.

/// The window, in milliseconds from its start.
struct Window {
    start: Timestamp,
    end_ms: i64,
    days: i64,
    first_weekday: i64,
}

impl Window {
    fn at(&self, ms: i64) -> Timestamp {
        later(self.start, TimeDelta::milliseconds(ms))
    }
}

/// What the touchpoint generator needs to know about a customer beyond its profile.
struct Profile {
    /// Earliest instant of activity: the sign-up for customers who joined in the window.
    first_ms: i64,
    joined_in_window: bool,
    plan: &'static str,
    daily_gb: f64,
    near_cap: bool,
    /// 0 to 1: how much the customer prefers digital channels.
    digital: f64,
    /// 0 to 1: latent satisfaction, which drives survey answers and complaints.
    satisfaction: f64,
    traveller: bool,
    home_store: Text,
    /// Relative activity (0 for dormant customers).
    activity: f64,
    email: Identity,
    device: Option<Identity>,
    cookie: Option<Identity>,
}

fn generate_customers(spec: &WorldSpec, window: &Window) -> (Vec<Customer>, Vec<Profile>) {
    let mut dice = Dice::new(spec.seed, 1);
    let end = window.at(window.end_ms);
    let mut customers = Vec::with_capacity(spec.customers);
    let mut profiles = Vec::with_capacity(spec.customers);
    // Wide enough that ids sort in generation order.
    let width = 6.max(spec.customers.saturating_sub(1).to_string().len());
    for i in 0..spec.customers {
        let id = CustomerId::new(numbered("c-", i, width));
        let plan = dice.pick(PLANS);
        let region = dice.pick(REGIONS);
        let (age_band, band_digital) = dice.pick(AGE_BANDS);
        let digital = (band_digital + dice.uniform(-0.15, 0.15)).clamp(0.05, 1.0);
        let satisfaction = 0.35 + 0.65 * (dice.unit() + dice.unit() + dice.unit()) / 3.0;
        let traveller = dice.chance(0.12);

        // Sign-up: most customers joined before the window, with a long tail of loyal ones.
        let joined_in_window = dice.chance(0.04);
        let signup_ms = if joined_in_window {
            dice.below(window.end_ms - DAY_MS)
        } else {
            let months = dice.exp(30.0).min(240.0);
            -(dice.below(DAY_MS) + (months * MONTH_MS as f64) as i64)
        };
        let signed_up_at = window.at(signup_ms);
        let tenure_months = ((window.end_ms - signup_ms) / MONTH_MS) as f64;

        // Monthly usage as a share of the cap: most well under it, some near it, a few over.
        let usage_ratio = match dice.unit() {
            u if u < 0.72 => dice.uniform(0.15, 0.8),
            u if u < 0.92 => dice.uniform(0.8, 1.0),
            _ => dice.uniform(1.0, 1.35),
        };
        let usage_ratio = if plan.name == "XL" {
            usage_ratio * 0.5
        } else {
            usage_ratio
        };
        let daily_gb = plan.cap_gb * usage_ratio / 30.0;
        let billing_cycle_day = 1 + dice.below(28);
        let days_into_cycle = (i64::from(end.day()) - billing_cycle_day).rem_euclid(30) + 1;
        let data_used_gb = round_to(daily_gb * days_into_cycle as f64, 0.1);

        let mut devices = vec![text(dice.pick(PHONES))];
        if dice.chance(0.2) {
            devices.push(text(dice.pick(OTHER_DEVICES)));
            if dice.chance(0.25) {
                devices.push(text(dice.pick(PHONES)));
            }
        }
        let home_store = {
            let mut store = Text::const_new("store-");
            store.push_str(region);
            store.push('-');
            store.push(char::from(b'1' + dice.below(3) as u8));
            store
        };

        let first = dice.one_of(FIRST_NAMES);
        let last = dice.one_of(LAST_NAMES);
        let domain = dice.one_of(EMAIL_DOMAINS);
        let email = format!(
            "{}.{}{}@{domain}",
            first.to_ascii_lowercase(),
            last.to_ascii_lowercase(),
            i
        );
        let email_identity = Identity::email(&email);
        // Distinct inputs to a bijection: device and cookie ids are unique without a set.
        let device = dice.chance(0.75).then(|| {
            Identity::device(&format!(
                "dev-{:016x}",
                mix64(spec.seed.wrapping_mul(3).wrapping_add(i as u64))
            ))
        });
        let cookie = dice.chance(0.55).then(|| {
            Identity::cookie(&format!(
                "ck-{:016x}",
                mix64(spec.seed.wrapping_mul(5).wrapping_add(i as u64))
            ))
        });
        let mut identities = vec![
            email_identity.clone(),
            Identity::phone(&format!("+1555{i:07}")),
        ];
        identities.extend(device.iter().cloned());
        identities.extend(cookie.iter().cloned());

        let consents = consents(&mut dice, signed_up_at, end);

        let attributes = Attributes::new()
            .with("age_band", age_band)
            .with("billing_cycle_day", billing_cycle_day as f64)
            .with("data_cap_gb", plan.cap_gb)
            .with("data_used_gb", data_used_gb)
            .with("days_to_reset", (30 - days_into_cycle) as f64)
            .with("devices", Value::List(devices))
            .with("email", email)
            .with("frequent_traveller", traveller)
            .with("home_store", home_store.clone())
            .with("monthly_fee", plan.fee)
            .with("name", format!("{first} {last}"))
            .with("overage_usd_per_gb", plan.overage_per_gb)
            .with("plan", plan.name)
            .with("region", region)
            .with("signed_up_at", signed_up_at)
            .with("tenure_months", tenure_months);

        // Pareto activity: a few heavy users, a long tail of light ones; some are dormant.
        let activity = if dice.chance(0.03) {
            0.0
        } else {
            let pareto = (1.0 - dice.unit()).powf(-1.0 / 1.25).min(300.0);
            let active_share = (window.end_ms - signup_ms.max(0)) as f64 / window.end_ms as f64;
            pareto * active_share * (0.6 + 0.8 * digital)
        };

        customers.push(Customer {
            id,
            attributes,
            identities,
            consents,
            pii: vec![Name::from_static("email"), Name::from_static("name")],
        });
        profiles.push(Profile {
            first_ms: signup_ms.max(0),
            joined_in_window,
            plan: plan.name,
            daily_gb,
            near_cap: usage_ratio >= 0.8,
            digital,
            satisfaction,
            traveller,
            home_store,
            activity,
            email: email_identity,
            device,
            cookie,
        });
    }
    (customers, profiles)
}

fn consents(dice: &mut Dice, since: Timestamp, end: Timestamp) -> Vec<Consent> {
    let mut consents = Vec::with_capacity(6);
    for (channel, granted) in [
        (Channel::Email, 0.62),
        (Channel::Sms, 0.48),
        (Channel::App, 0.40),
    ] {
        let marketing = if dice.chance(granted) {
            let expires_at = (channel == Channel::Email && dice.chance(0.15))
                .then(|| since.checked_add_signed(TimeDelta::days(730)))
                .flatten();
            Consent {
                expires_at,
                ..Consent::granted(channel.clone(), Purpose::MARKETING, since)
            }
        } else if dice.chance(0.33) {
            // Granted at sign-up, withdrawn later.
            let span = (end - since).num_seconds().max(2);
            let revoked_at = later(since, TimeDelta::seconds(1 + dice.below(span - 1)));
            Consent {
                status: ConsentStatus::Revoked,
                ..Consent::granted(channel.clone(), Purpose::MARKETING, revoked_at)
            }
        } else {
            Consent::denied(channel.clone(), Purpose::MARKETING, since)
        };
        consents.push(marketing);
        let service = if dice.chance(0.98) {
            Consent::granted(channel, Purpose::SERVICE, since)
        } else {
            Consent::denied(channel, Purpose::SERVICE, since)
        };
        consents.push(service);
    }
    consents
}

// ---------------------------------------------------------------------------------------------
// Touchpoints.

fn generate_touchpoints(
    spec: &WorldSpec,
    window: &Window,
    customers: &[Customer],
    profiles: &[Profile],
) -> Vec<Touchpoint> {
    if customers.is_empty() || spec.touchpoints == 0 {
        return Vec::new();
    }
    let counts = allocate(spec, profiles);
    // Four times the average, so that even the busiest hours rarely grow (and copy); capacity
    // that is never written costs address space, not memory.
    let per_hour = 4 * spec.touchpoints / (window.days as usize * 24);
    let mut generator = Generator {
        dice: Dice::new(spec.seed, 2),
        window,
        identity_share: spec.identity_share.clamp(0.0, 1.0),
        network: Channel::Other(Text::const_new("network")),
        hours: (0..window.days * 24)
            .map(|_| Hour::with_capacity(per_hour))
            .collect(),
        total: 0,
    };
    for ((customer, profile), &count) in customers.iter().zip(profiles).zip(&counts) {
        generator.customer(customer, profile, count);
    }
    generator.into_sorted()
}

/// How many touchpoints each customer gets: exactly `spec.touchpoints` in all, each drawn from
/// the customers in proportion to their activity.
fn allocate(spec: &WorldSpec, profiles: &[Profile]) -> Vec<usize> {
    let mut dice = Dice::new(spec.seed, 3);
    let total: f64 = profiles.iter().map(|p| p.activity).sum();
    let uniform = !total.is_finite() || total <= 0.0;
    let mut cumulative = Vec::with_capacity(profiles.len());
    let mut sum = 0.0;
    for p in profiles {
        sum += if uniform { 1.0 } else { p.activity };
        cumulative.push(sum);
    }
    let mut counts = vec![0usize; profiles.len()];
    let last = profiles.len().saturating_sub(1);
    for _ in 0..spec.touchpoints {
        let r = dice.unit() * sum;
        let i = cumulative.partition_point(|&c| c <= r).min(last);
        if let Some(n) = counts.get_mut(i) {
            *n += 1;
        }
    }
    counts
}

struct Generator<'w> {
    dice: Dice,
    window: &'w Window,
    identity_share: f64,
    network: Channel,
    /// The touchpoints by the hour they occur in, so that sorting them at the end moves each
    /// one within a small, cache-resident hour rather than across the whole world.
    hours: Vec<Hour>,
    total: usize,
}

/// The touchpoints of one hour, in generation order.
struct Hour {
    touchpoints: Vec<Touchpoint>,
    /// (occurred at, index in `touchpoints`).
    keys: Vec<(i64, usize)>,
}

impl Hour {
    fn with_capacity(n: usize) -> Self {
        Hour {
            touchpoints: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
        }
    }
}

/// One customer being generated.
struct Ctx<'a> {
    customer: &'a Customer,
    profile: &'a Profile,
    /// Touchpoints still to generate.
    left: usize,
    complaints: u32,
}

/// Who a run of touchpoints is about, on which channel, reported by which system.
struct Via {
    subject: Subject,
    channel: Channel,
    source: &'static str,
}

impl Via {
    /// A touchpoint of `kind`; [`Generator::emit`] gives it its time, and the end its id.
    fn touchpoint(&self, kind: Kind, attributes: Attributes) -> Touchpoint {
        Touchpoint {
            id: TouchpointId::default(),
            subject: self.subject.clone(),
            channel: self.channel.clone(),
            kind,
            occurred_at: DateTime::UNIX_EPOCH,
            attributes,
            survey: None,
            source: Some(Text::const_new(self.source)),
        }
    }
}

impl Generator<'_> {
    fn customer(&mut self, customer: &Customer, profile: &Profile, count: usize) {
        let mut c = Ctx {
            customer,
            profile,
            left: count,
            complaints: 0,
        };
        if profile.joined_in_window {
            let (channel, source) = match self.dice.index([45.0, 25.0, 30.0].into_iter()) {
                0 => (Channel::Web, SRC_WEB),
                1 => (Channel::App, SRC_APP),
                _ => (Channel::Store, SRC_POS),
            };
            let via = self.via(&c, channel, source, None);
            let attributes = Attributes::new().with(PLAN, text(profile.plan));
            self.emit(
                &mut c,
                profile.first_ms,
                via.touchpoint(Kind::SIGN_UP, attributes),
            );
        }
        let (d, s) = (profile.digital, profile.satisfaction);
        let web = 20.0 * (0.5 + d);
        let app = if profile.device.is_some() {
            22.0 * (0.3 + d)
        } else {
            2.0
        };
        let weights = [
            (Episode::Web, web),
            (Episode::App, app),
            (Episode::Usage, 30.0),
            (Episode::Message, 18.0),
            (Episode::Support, 8.0 * (1.5 - 0.5 * s)),
            (Episode::Store, 4.0 * (1.6 - d)),
            (Episode::Survey, 2.0),
        ];
        let digital = [
            (Episode::Web, web),
            (Episode::App, app),
            (Episode::Usage, 30.0),
        ];
        // Heavy users are heavy online: contacts, visits, surveys and messages are capped over
        // the window, and episodes past a cap become digital ones.
        let (mut contacts, mut visits, mut surveys, mut messages) = (0, 0, 0, 0);
        // Every episode emits at least one touchpoint, so this ends; the bound is a safeguard.
        let mut episodes = 0;
        while c.left > 0 && episodes < 4 * count + 16 {
            let mut episode = self.dice.pick(&weights);
            let counter = match episode {
                Episode::Support => Some((&mut contacts, MAX_CONTACTS)),
                Episode::Store => Some((&mut visits, MAX_VISITS)),
                Episode::Survey => Some((&mut surveys, MAX_SURVEYS)),
                Episode::Message => Some((&mut messages, MAX_MESSAGES)),
                Episode::Web | Episode::App | Episode::Usage => None,
            };
            if let Some((n, max)) = counter {
                if *n >= max {
                    episode = self.dice.pick(&digital);
                } else {
                    *n += 1;
                }
            }
            match episode {
                Episode::Web => self.web(&mut c),
                Episode::App => self.app(&mut c),
                Episode::Usage => self.usage(&mut c),
                Episode::Message => self.message(&mut c),
                Episode::Support => self.support(&mut c),
                Episode::Store => self.store(&mut c),
                Episode::Survey => self.relationship_survey(&mut c),
            }
            episodes += 1;
        }
        while c.left > 0 {
            self.usage(&mut c);
        }
    }

    /// Records `touchpoint` at `at` (ms into the window) if the customer has touchpoints left
    /// and `at` is inside the window and after the sign-up; says whether it did.
    fn emit(&mut self, c: &mut Ctx<'_>, at: i64, mut touchpoint: Touchpoint) -> bool {
        if c.left == 0 || at < c.profile.first_ms || at >= self.window.end_ms {
            return false;
        }
        let Some(hour) = self.hours.get_mut((at / HOUR_MS) as usize) else {
            return false;
        };
        c.left -= 1;
        self.total += 1;
        touchpoint.occurred_at = self.window.at(at);
        hour.keys.push((at, hour.touchpoints.len()));
        hour.touchpoints.push(touchpoint);
        true
    }

    /// A random instant at or after `first_ms`, on a day drawn uniformly (weekends weighted by
    /// `weekend`), at an hour drawn from `hours`.
    fn when(&mut self, first_ms: i64, hours: &Hours, weekend: f64) -> i64 {
        let first_day = first_ms / DAY_MS;
        let mut day = first_day + self.dice.below(self.window.days - first_day);
        for _ in 0..3 {
            let is_weekend = (self.window.first_weekday + day).rem_euclid(7) >= 5;
            let keep = match (is_weekend, weekend < 1.0) {
                (true, true) => weekend,
                (false, false) => 1.0 / weekend,
                _ => 1.0,
            };
            if self.dice.chance(keep) {
                break;
            }
            day = first_day + self.dice.below(self.window.days - first_day);
        }
        let hour = self.dice.index(hours.iter().copied()) as i64;
        let at = day * DAY_MS + hour * HOUR_MS + self.dice.below(HOUR_MS);
        if at < first_ms {
            first_ms + self.dice.below(HOUR_MS.min(self.window.end_ms - first_ms))
        } else {
            at
        }
    }

    /// Touchpoints on `channel` about the customer, named by id or, now and then, by `identity`.
    fn via(
        &mut self,
        c: &Ctx<'_>,
        channel: Channel,
        source: &'static str,
        identity: Option<&Identity>,
    ) -> Via {
        let subject = match identity {
            Some(identity) if self.dice.chance(self.identity_share) => {
                Subject::Identity(identity.clone())
            }
            _ => Subject::Customer(c.customer.id.clone()),
        };
        Via {
            subject,
            channel,
            source,
        }
    }

    /// Seconds spent on a page: mostly short, with a long tail.
    fn dwell(&mut self, mean: f64) -> f64 {
        (2.0 + self.dice.exp(mean)).min(1800.0).round()
    }

    fn price(&mut self, product: Product) -> f64 {
        let discount = if self.dice.chance(0.2) { 0.9 } else { 1.0 };
        round_to(product.price * discount, 0.01)
    }

    fn product_view(&mut self, product: Product, mean_dwell: f64) -> (Attributes, f64) {
        let dwell = self.dwell(mean_dwell);
        let attributes = Attributes::new()
            .with(CATEGORY, text(product.category))
            .with(DWELL, dwell)
            .with(PRICE, product.price)
            .with(PRODUCT, text(product.id));
        (attributes, dwell)
    }

    fn web(&mut self, c: &mut Ctx<'_>) {
        let mut at = self.when(c.profile.first_ms, &DIGITAL_HOURS, 1.1);
        let via = self.via(c, Channel::Web, SRC_WEB, c.profile.cookie.as_ref());
        let pages = 1 + self.dice.geometric(0.55, 12);
        let mut viewed = None;
        for _ in 0..pages {
            let (kind, attributes, dwell) = if self.dice.chance(0.35) {
                let product = self.dice.pick(WEB_PRODUCTS);
                viewed = Some(product);
                let (attributes, dwell) = self.product_view(product, 55.0);
                (Kind::PRODUCT_VIEW, attributes, dwell)
            } else {
                let page = if c.profile.traveller && self.dice.chance(0.1) {
                    "roaming"
                } else {
                    self.dice.pick(WEB_PAGES)
                };
                let dwell = self.dwell(30.0);
                let attributes = Attributes::new().with(DWELL, dwell).with(PAGE, text(page));
                (Kind::PAGE_VIEW, attributes, dwell)
            };
            if !self.emit(c, at, via.touchpoint(kind, attributes)) {
                return;
            }
            at += (dwell * 1000.0) as i64 + self.dice.below(5_000);
        }
        if let Some(product) = viewed
            && self.dice.chance(0.2)
        {
            self.buy(c, at, &via, product, true);
        }
    }

    /// `add_to_cart` (if `cart`) then, often, `purchase` and sometimes a post-purchase survey.
    fn buy(&mut self, c: &mut Ctx<'_>, mut at: i64, via: &Via, product: Product, cart: bool) {
        let attributes = Attributes::new()
            .with(AMOUNT, self.price(product))
            .with(CATEGORY, text(product.category))
            .with(PRODUCT, text(product.id));
        if cart {
            let added = via.touchpoint(Kind::ADD_TO_CART, attributes.clone());
            if !self.emit(c, at, added) || !self.dice.chance(0.45) {
                return;
            }
            at += 30_000 + self.dice.below(5 * MINUTE_MS);
        }
        if self.emit(c, at, via.touchpoint(Kind::PURCHASE, attributes)) && self.dice.chance(0.12) {
            let after = at + HOUR_MS + (self.dice.exp(24.0) * HOUR_MS as f64) as i64;
            let answer = self.csat(c.profile.satisfaction, 2.6, 3.0);
            let survey = SurveyAnswer::new("csat_purchase", answer, Scale::CSAT_5);
            self.survey(c, after, "post_purchase", survey);
        }
    }

    fn app(&mut self, c: &mut Ctx<'_>) {
        let mut at = self.when(c.profile.first_ms, &DIGITAL_HOURS, 1.0);
        let via = self.via(c, Channel::App, SRC_APP, c.profile.device.as_ref());
        let screens = 1 + self.dice.geometric(0.5, 8);
        for _ in 0..screens {
            let screen = if c.profile.traveller && self.dice.chance(0.15) {
                "roaming"
            } else {
                self.dice.pick(APP_SCREENS)
            };
            let dwell = self.dwell(20.0);
            let attributes = Attributes::new()
                .with(DWELL, dwell)
                .with(PAGE, text(screen));
            if !self.emit(c, at, via.touchpoint(Kind::PAGE_VIEW, attributes)) {
                return;
            }
            at += (dwell * 1000.0) as i64 + self.dice.below(3_000);
            if screen == "shop" && self.dice.chance(0.5) {
                let product = self.dice.pick(APP_PRODUCTS);
                let (attributes, dwell) = self.product_view(product, 40.0);
                if !self.emit(c, at, via.touchpoint(Kind::PRODUCT_VIEW, attributes)) {
                    return;
                }
                at += (dwell * 1000.0) as i64;
            }
        }
        let add_on = if c.profile.near_cap && self.dice.chance(0.12) {
            Some(DATA_ADDON)
        } else if c.profile.traveller && self.dice.chance(0.08) {
            Some(ROAMING_PASS)
        } else if self.dice.chance(0.02) {
            Some(self.dice.pick(APP_PRODUCTS))
        } else {
            None
        };
        if let Some(product) = add_on {
            self.buy(c, at, &via, product, false);
        }
    }

    fn usage(&mut self, c: &mut Ctx<'_>) {
        let at = self.when(c.profile.first_ms, &DIGITAL_HOURS, 1.0);
        let data_gb = round_to(c.profile.daily_gb * self.dice.uniform(0.3, 1.7), 0.01);
        let roaming = c.profile.traveller && self.dice.chance(0.15);
        let attributes = Attributes::new()
            .with(DATA_GB, data_gb)
            .with(ROAMING, roaming);
        let via = self.via(c, self.network.clone(), SRC_NETWORK, None);
        self.emit(c, at, via.touchpoint(Kind::USAGE, attributes));
    }

    fn message(&mut self, c: &mut Ctx<'_>) {
        let email = self.dice.chance(0.6);
        let via = if email {
            self.via(c, Channel::Email, SRC_ESP, Some(&c.profile.email))
        } else {
            self.via(c, Channel::Sms, SRC_SMS, None)
        };
        let at = self.when(c.profile.first_ms, &CAMPAIGN_HOURS, 1.0);
        let sent_at = self.window.at(at);
        let marketing = self.dice.chance(0.65)
            && c.customer
                .has_consent(&via.channel, &Purpose::MARKETING, sent_at);
        let (campaign, purpose) = if marketing {
            (self.dice.pick(MARKETING_CAMPAIGNS), "marketing")
        } else if c.profile.near_cap && self.dice.chance(0.3) {
            ("data-cap-80", "service")
        } else {
            (self.dice.pick(SERVICE_CAMPAIGNS), "service")
        };
        let attributes = Attributes::new()
            .with(CAMPAIGN, text(campaign))
            .with(PURPOSE, text(purpose));
        if !self.emit(
            c,
            at,
            via.touchpoint(Kind::MESSAGE_SENT, attributes.clone()),
        ) {
            return;
        }
        let open_rate = match (email, marketing) {
            (true, true) => 0.3,
            (true, false) => 0.55,
            (false, true) => 0.1,
            (false, false) => 0.2,
        };
        if self.dice.chance(open_rate) {
            let opened = at + 30_000 + (self.dice.exp(3.0) * HOUR_MS as f64) as i64;
            self.emit(c, opened, via.touchpoint(Kind::MESSAGE_OPENED, attributes));
        }
    }

    fn support(&mut self, c: &mut Ctx<'_>) {
        let call = self.dice.chance(0.8 - 0.5 * c.profile.digital);
        let (channel, handle_mean) = if call {
            (Channel::Call, 420.0)
        } else {
            (Channel::Chat, 600.0)
        };
        let via = self.via(c, channel, SRC_CONTACT, None);
        let mut at = self.when(c.profile.first_ms, &CONTACT_HOURS, 0.5);
        let topic = if c.profile.traveller && self.dice.chance(0.15) {
            "roaming"
        } else {
            self.dice.pick(SUPPORT_TOPICS)
        };
        let complaint = self
            .dice
            .chance(0.06 + 0.25 * (1.0 - c.profile.satisfaction));
        let kind = if complaint {
            c.complaints += 1;
            Kind::COMPLAINT
        } else {
            Kind::SUPPORT_CONTACT
        };
        for attempt in 0..2 {
            let handle = (60.0 + self.dice.exp(handle_mean)).min(7200.0).round();
            let resolved = self.dice.chance(if complaint { 0.55 } else { 0.82 });
            let attributes = Attributes::new()
                .with(HANDLE, handle)
                .with(RESOLVED, resolved)
                .with(TOPIC, text(topic));
            if !self.emit(c, at, via.touchpoint(kind.clone(), attributes)) {
                return;
            }
            let ended = at + (handle * 1000.0) as i64;
            if self.dice.chance(0.3) {
                let after = ended + 10 * MINUTE_MS + (self.dice.exp(4.0) * HOUR_MS as f64) as i64;
                let survey = self.post_contact_answer(c, resolved);
                self.survey(c, after, "post_contact", survey);
            }
            // Unresolved contacts come back, once, a day or three later.
            if resolved || attempt > 0 || !self.dice.chance(0.4) {
                return;
            }
            at = ended + DAY_MS + self.dice.below(2 * DAY_MS);
        }
    }

    fn post_contact_answer(&mut self, c: &Ctx<'_>, resolved: bool) -> SurveyAnswer {
        let s = c.profile.satisfaction;
        match self.dice.index([50.0, 30.0, 20.0].into_iter()) {
            0 => {
                let (base, spread) = if resolved { (2.4, 3.0) } else { (0.8, 2.5) };
                SurveyAnswer::new("csat_support", self.csat(s, base, spread), Scale::CSAT_5)
            }
            1 => {
                let (base, spread) = if resolved { (3.2, 4.0) } else { (1.0, 3.0) };
                let score = base + spread * s + self.dice.uniform(-1.5, 1.5);
                SurveyAnswer::new("ces_support", score.round().clamp(1.0, 7.0), Scale::CES_7)
            }
            _ => {
                let complaints = c.complaints + u32::from(!resolved);
                SurveyAnswer::new("nps", self.nps(s, complaints), Scale::NPS)
            }
        }
    }

    fn csat(&mut self, satisfaction: f64, base: f64, spread: f64) -> f64 {
        let score = base + spread * satisfaction + self.dice.uniform(-1.0, 1.0);
        score.round().clamp(1.0, 5.0)
    }

    /// An NPS answer: mostly 7-10, lower after complaints, now and then an angry 0-4.
    fn nps(&mut self, satisfaction: f64, complaints: u32) -> f64 {
        if self.dice.chance(0.04) {
            return self.dice.below(5) as f64;
        }
        let penalty = f64::from(complaints.min(3));
        let score = 3.6 + 6.8 * satisfaction - penalty + self.dice.uniform(-1.8, 1.8);
        score.round().clamp(0.0, 10.0)
    }

    fn survey(&mut self, c: &mut Ctx<'_>, at: i64, trigger: &'static str, answer: SurveyAnswer) {
        let via = self.via(c, Channel::Survey, SRC_SURVEY, None);
        let attributes = Attributes::new().with(TRIGGER, text(trigger));
        let touchpoint = Touchpoint {
            survey: Some(answer),
            ..via.touchpoint(Kind::SURVEY_RESPONSE, attributes)
        };
        self.emit(c, at, touchpoint);
    }

    fn relationship_survey(&mut self, c: &mut Ctx<'_>) {
        let at = self.when(c.profile.first_ms, &DIGITAL_HOURS, 1.0);
        let answer = self.nps(c.profile.satisfaction, c.complaints);
        self.survey(
            c,
            at,
            "relationship",
            SurveyAnswer::new("nps", answer, Scale::NPS),
        );
    }

    fn store(&mut self, c: &mut Ctx<'_>) {
        let at = self.when(c.profile.first_ms, &STORE_HOURS, 1.6);
        let store = Value::String(c.profile.home_store.clone());
        if self.dice.chance(0.55) {
            let product = self.dice.pick(STORE_PRODUCTS);
            let attributes = Attributes::new()
                .with(AMOUNT, self.price(product))
                .with(CATEGORY, text(product.category))
                .with(PRODUCT, text(product.id))
                .with(STORE, store);
            let via = self.via(c, Channel::Store, SRC_POS, None);
            self.emit(c, at, via.touchpoint(Kind::PURCHASE, attributes));
        } else {
            let attributes = Attributes::new()
                .with(HANDLE, (300.0 + self.dice.exp(600.0)).min(5400.0).round())
                .with(RESOLVED, self.dice.chance(0.85))
                .with(STORE, store)
                .with(TOPIC, text(self.dice.pick(STORE_TOPICS)));
            let via = self.via(c, Channel::Store, SRC_CRM, None);
            self.emit(c, at, via.touchpoint(Kind::SUPPORT_CONTACT, attributes));
        }
    }

    /// The touchpoints in order of occurrence, numbered in that order.
    fn into_sorted(self) -> Vec<Touchpoint> {
        let width = 7.max(self.total.saturating_sub(1).to_string().len());
        let mut sorted = Vec::with_capacity(self.total);
        for hour in self.hours {
            let Hour {
                mut touchpoints,
                mut keys,
            } = hour;
            keys.sort_unstable();
            permute(&mut touchpoints, keys.into_iter().map(|(_, i)| i).collect());
            let mut n = sorted.len();
            sorted.extend(touchpoints.into_iter().map(|mut t| {
                t.id = TouchpointId::new(numbered("t-", n, width));
                n += 1;
                t
            }));
        }
        sorted
    }
}

/// Reorders `items` in place so that position `n` holds the item that was at `order[n]`; `order`
/// must be a permutation of the positions. Each cycle of the permutation is walked once.
fn permute<T>(items: &mut [T], mut order: Vec<usize>) {
    for start in 0..order.len() {
        let mut pos = start;
        while let Some(slot) = order.get_mut(pos) {
            let next = std::mem::replace(slot, pos);
            if next == pos || next == start || next >= items.len() {
                break;
            }
            items.swap(pos, next);
            pos = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn small() -> WorldSpec {
        WorldSpec::default()
            .with_seed(7)
            .with_customers(600)
            .with_touchpoints(15_000)
    }

    #[test]
    fn the_same_seed_gives_the_same_world_and_another_seed_another() {
        let spec = small();
        let a = spec.generate();
        let b = World::generate(&spec);
        assert_eq!(a, b);
        let c = spec.clone().with_seed(8).generate();
        assert_ne!(a.customers, c.customers);
        assert_ne!(a.touchpoints, c.touchpoints);
        // Customers do not depend on the number of touchpoints.
        let d = spec.with_touchpoints(3_000).generate();
        assert_eq!(a.customers, d.customers);
    }

    #[test]
    fn counts_ids_and_window_are_as_specified() {
        let spec = small();
        let w = spec.generate();
        assert_eq!(w.customers.len(), 600);
        assert_eq!(w.touchpoints.len(), 15_000);
        assert_eq!(w.customers[0].id, "c-000000");
        assert_eq!(w.customers[599].id, "c-000599");
        assert_eq!(w.touchpoints[0].id, "t-0000000");
        assert!(w.customer("c-000123").is_some());
        let ids: HashSet<_> = w.touchpoints.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids.len(), w.touchpoints.len());
        let range = w.range();
        assert!(w.touchpoints.iter().all(|t| range.contains(t.occurred_at)));
        assert!(
            w.touchpoints
                .windows(2)
                .all(|p| p[0].occurred_at <= p[1].occurred_at)
        );
        assert_eq!(w.batches(4_000).count(), 4);
        let owned: Vec<_> = batches(w.touchpoints.clone(), 4_000).collect();
        assert_eq!(
            owned.iter().map(Vec::len).collect::<Vec<_>>(),
            [4000, 4000, 4000, 3000]
        );
        assert_eq!(owned.concat(), w.touchpoints);
    }

    #[test]
    fn edge_specs_do_not_panic() {
        let none = WorldSpec::default()
            .with_customers(0)
            .with_touchpoints(100)
            .generate();
        assert!(none.customers.is_empty() && none.touchpoints.is_empty());
        let one = WorldSpec::default()
            .with_customers(1)
            .with_touchpoints(50)
            .with_days(0)
            .with_identity_share(7.0)
            .generate();
        assert_eq!(one.touchpoints.len(), 50);
        assert!(one.touchpoints.iter().all(|t| t.validate().is_ok()));
        let far = WorldSpec::default()
            .with_customers(3)
            .with_touchpoints(100)
            .with_start(DateTime::<Utc>::MAX_UTC)
            .with_days(u32::MAX)
            .generate();
        assert_eq!(far.touchpoints.len(), 100);
        assert_eq!(far.end(), DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn every_record_validates_and_identities_are_unique() {
        let w = small().generate();
        let mut owner = HashMap::new();
        for c in &w.customers {
            c.validate().unwrap();
            for identity in &c.identities {
                assert!(owner.insert(identity.clone(), c.id.clone()).is_none());
            }
            for name in ["name", "email"] {
                assert!(c.is_pii(name) && c.attributes.contains(name));
            }
            assert!(
                c.attributes
                    .get("signed_up_at")
                    .and_then(Value::as_timestamp)
                    .is_some()
            );
        }
        let mut by_identity = 0;
        for t in &w.touchpoints {
            t.validate().unwrap();
            let customer = match &t.subject {
                Subject::Customer(id) => id.clone(),
                Subject::Identity(identity) => {
                    by_identity += 1;
                    owner
                        .get(identity)
                        .cloned()
                        .expect("identity subjects resolve")
                }
            };
            // Nothing happens before the customer signed up.
            let signed_up = w
                .customer(customer.as_str())
                .and_then(|c| c.attributes.get("signed_up_at"))
                .and_then(Value::as_timestamp)
                .unwrap();
            assert!(t.occurred_at >= signed_up, "{:?} before sign-up", t.id);
        }
        let share = f64::from(by_identity) / w.touchpoints.len() as f64;
        assert!((0.002..0.03).contains(&share), "identity share {share}");
    }

    #[test]
    fn billing_attributes_agree_with_each_other() {
        let w = small().generate();
        let number = |c: &Customer, name: &str| {
            c.attributes
                .get(name)
                .and_then(Value::as_number)
                .unwrap_or_else(|| panic!("{} has no number {name}", c.id))
        };
        let mut over = 0;
        for c in &w.customers {
            let (cap, used) = (number(c, "data_cap_gb"), number(c, "data_used_gb"));
            let left = number(c, "days_to_reset");
            assert!(
                (0.0..=29.0).contains(&left) && left.fract() == 0.0,
                "{left}"
            );
            assert!(number(c, "overage_usd_per_gb") > 0.0);
            // The cycle's pace so far, over 30 days: at most 1.35 caps (plus rounding).
            let days_in = 30.0 - left;
            let month = used / days_in * 30.0;
            assert!(
                month <= 1.35 * cap + 0.05 * 30.0 / days_in + 1e-9,
                "{month}"
            );
            over += usize::from(month > cap + 1.5);
        }
        let share = over as f64 / w.customers.len() as f64;
        assert!(
            (0.02..0.12).contains(&share),
            "{share} heading over the cap"
        );
    }

    #[test]
    fn the_mix_of_channels_and_kinds_is_realistic() {
        let w = small().generate();
        let n = w.touchpoints.len() as f64;
        let mut channels: HashMap<&str, usize> = HashMap::new();
        let mut kinds: HashMap<&str, usize> = HashMap::new();
        for t in &w.touchpoints {
            *channels.entry(t.channel.as_str()).or_default() += 1;
            *kinds.entry(t.kind.as_str()).or_default() += 1;
        }
        for channel in [
            "web", "app", "call", "chat", "email", "sms", "store", "survey", "network",
        ] {
            assert!(channels.contains_key(channel), "no {channel} touchpoints");
        }
        assert!(
            channels.values().all(|&k| (k as f64) < 0.45 * n),
            "{channels:?}"
        );
        for kind in [
            Kind::PAGE_VIEW,
            Kind::PRODUCT_VIEW,
            Kind::ADD_TO_CART,
            Kind::PURCHASE,
            Kind::USAGE,
            Kind::SUPPORT_CONTACT,
            Kind::COMPLAINT,
            Kind::MESSAGE_SENT,
            Kind::MESSAGE_OPENED,
            Kind::SIGN_UP,
            Kind::SURVEY_RESPONSE,
        ] {
            assert!(kinds.contains_key(kind.as_str()), "no {kind} touchpoints");
        }
        for t in &w.touchpoints {
            let has = |name: &str| t.attributes.contains(name);
            match t.kind.as_str() {
                "product_view" => assert!(has("product") && has("dwell_seconds")),
                "purchase" => {
                    assert!(t.attributes.get("amount").and_then(Value::as_number) > Some(0.0))
                }
                "usage" => assert!(has("data_gb")),
                "support_contact" | "complaint" => assert!(has("handle_seconds")),
                "survey_response" => assert_eq!(t.channel, Channel::Survey),
                _ => {}
            }
            assert_eq!(t.survey.is_some(), t.kind == Kind::SURVEY_RESPONSE);
        }
    }

    #[test]
    fn surveys_use_their_scales_and_nps_is_plausible() {
        let w = small().with_touchpoints(40_000).generate();
        let answers: Vec<_> = w
            .touchpoints
            .iter()
            .filter_map(|t| t.survey.as_ref())
            .collect();
        let (mut promoters, mut detractors, mut nps) = (0, 0, 0);
        let mut questions = HashSet::new();
        for a in &answers {
            questions.insert(a.question.as_str());
            let scale = match a.question.as_str() {
                "nps" => Scale::NPS,
                "csat_support" | "csat_purchase" => Scale::CSAT_5,
                "ces_support" => Scale::CES_7,
                other => panic!("unexpected question {other}"),
            };
            assert_eq!(a.scale, scale);
            assert_eq!(a.score, a.score.round());
            if a.question == "nps" {
                nps += 1;
                promoters += usize::from(a.score >= 9.0);
                detractors += usize::from(a.score <= 6.0);
            }
        }
        assert_eq!(questions.len(), 4, "{questions:?}");
        assert!(nps > 100, "only {nps} NPS answers");
        let score = 100.0 * (promoters as f64 - detractors as f64) / nps as f64;
        assert!((-20.0..50.0).contains(&score), "NPS {score}");
    }

    #[test]
    fn activity_is_skewed_and_marketing_respects_consent() {
        let w = small().generate();
        let mut per_customer: HashMap<&str, usize> = HashMap::new();
        for t in &w.touchpoints {
            if let Some(id) = t.customer_id() {
                *per_customer.entry(id.as_str()).or_default() += 1;
            }
        }
        let mut counts: Vec<usize> = per_customer.values().copied().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top: usize = counts.iter().take(w.customers.len() / 20).sum();
        let all: usize = counts.iter().sum();
        assert!(top as f64 > 0.2 * all as f64, "top 5% hold {top} of {all}");
        for t in &w.touchpoints {
            let marketing =
                t.attributes.get("purpose").and_then(Value::as_str) == Some("marketing");
            if t.kind == Kind::MESSAGE_SENT && marketing {
                let Some(id) = t.customer_id() else { continue };
                let c = w.customer(id.as_str()).unwrap();
                assert!(c.has_consent(&t.channel, &Purpose::MARKETING, t.occurred_at));
            }
        }
    }

    #[test]
    fn permute_applies_the_order_in_place() {
        let mut items = vec!['a', 'b', 'c', 'd', 'e', 'f'];
        permute(&mut items, vec![3, 0, 4, 1, 2, 5]);
        assert_eq!(items, ['d', 'a', 'e', 'b', 'c', 'f']);
    }

    #[test]
    fn numbered_ids_are_zero_padded() {
        assert_eq!(numbered("t-", 0, 7), "t-0000000");
        assert_eq!(numbered("c-", 123, 6), "c-000123");
        assert_eq!(numbered("c-", 12_345_678, 6), "c-12345678");
        assert_eq!(numbered("x", 5, 0), "x5");
    }
}
