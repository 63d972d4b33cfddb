-- cx-store-postgres schema, version 1.
--
-- Every table that holds per-customer data has the customer id in its primary key, so the
-- schema can later be distributed by customer id. Ids and names compare by bytes
-- (COLLATE "C"), like the in-memory store. Instants are microseconds since the Unix epoch
-- (`*_us`) plus the nanoseconds below the microsecond (`*_ns`, 0-999): exact for every instant
-- cx can represent, which `timestamptz` (microseconds, 4713 BC to 294276 AD) is not.

CREATE TABLE customers (
    customer_id text COLLATE "C" NOT NULL,
    -- The whole profile (attributes, identities, consent, PII marks) as cx serialises it.
    profile     jsonb NOT NULL,
    PRIMARY KEY (customer_id)
);

-- The identity index: which customer holds an identity. An identity belongs to one customer
-- (the unique index), found by (kind, value).
CREATE TABLE customer_identities (
    customer_id text COLLATE "C" NOT NULL,
    kind        text COLLATE "C" NOT NULL,
    value       text COLLATE "C" NOT NULL,
    PRIMARY KEY (customer_id, kind, value)
);
CREATE UNIQUE INDEX customer_identities_by_identity ON customer_identities (kind, value);

-- Merge aliases, kept one hop: a merged id points straight at the customer holding its data.
CREATE TABLE customer_aliases (
    alias_id    text COLLATE "C" NOT NULL,
    customer_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (alias_id)
);
CREATE INDEX customer_aliases_by_customer ON customer_aliases (customer_id);

CREATE TABLE touchpoints (
    customer_id     text COLLATE "C" NOT NULL,
    touchpoint_id   text COLLATE "C" NOT NULL,
    occurred_us     bigint NOT NULL,
    occurred_ns     smallint NOT NULL,
    channel         text COLLATE "C" NOT NULL,
    kind            text COLLATE "C" NOT NULL,
    source          text COLLATE "C",
    attributes      jsonb,
    survey_question text COLLATE "C",
    survey_score    double precision,
    survey_min      double precision,
    survey_max      double precision,
    PRIMARY KEY (customer_id, touchpoint_id)
);
-- One customer's timeline, and scans/aggregates over time.
CREATE INDEX touchpoints_timeline ON touchpoints (customer_id, occurred_us, occurred_ns);
CREATE INDEX touchpoints_by_time ON touchpoints (occurred_us, occurred_ns);

CREATE TABLE decisions (
    customer_id text COLLATE "C" NOT NULL,
    decision_id text COLLATE "C" NOT NULL,
    channel     text COLLATE "C" NOT NULL,
    at_us       bigint NOT NULL,
    at_ns       smallint NOT NULL,
    -- The chosen offers, as [{"offer": ..., "category": ...}] (what an outcome needs).
    offers      jsonb NOT NULL,
    -- The decision as cx serialises it (its customer is the column above).
    body        text NOT NULL,
    PRIMARY KEY (customer_id, decision_id)
);
CREATE UNIQUE INDEX decisions_by_id ON decisions (decision_id);

-- Contact history: one row per outcome, keyed by (decision, offer, kind).
CREATE TABLE contacts (
    customer_id text COLLATE "C" NOT NULL,
    decision_id text COLLATE "C" NOT NULL,
    offer_id    text COLLATE "C" NOT NULL,
    kind        text COLLATE "C" NOT NULL,
    category    text COLLATE "C" NOT NULL,
    channel     text COLLATE "C" NOT NULL,
    at_us       bigint NOT NULL,
    at_ns       smallint NOT NULL,
    -- Orders entries recorded at the same instant.
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (customer_id, decision_id, offer_id, kind)
);
CREATE INDEX contacts_timeline ON contacts (customer_id, at_us, at_ns, seq);

CREATE TABLE budget_counters (
    budget_id text COLLATE "C" NOT NULL,
    period    text COLLATE "C" NOT NULL,
    used      bigint NOT NULL CHECK (used >= 0),
    PRIMARY KEY (budget_id, period)
);

CREATE TABLE catalog_versions (
    version      bigint NOT NULL,
    stored_at_us bigint NOT NULL,
    stored_at_ns smallint NOT NULL,
    author       text,
    comment      text,
    catalog      text NOT NULL,
    PRIMARY KEY (version)
);
