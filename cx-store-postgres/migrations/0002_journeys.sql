-- cx-store-postgres schema, version 2: journey tracks and follow-up cases.
--
-- As in version 1: the customer id leads every primary key, ids compare by bytes
-- (COLLATE "C"), instants are (`*_us`, `*_ns`).

-- One customer's state in one journey. The events kept to place late arrivals are only ever
-- read back whole by the journey engine, so they stay one JSON array; the instances and their
-- visits, which analytics query, are rows of the two tables below.
CREATE TABLE journey_tracks (
    customer_id  text COLLATE "C" NOT NULL,
    journey_id   text COLLATE "C" NOT NULL,
    watermark_us bigint,
    watermark_ns smallint,
    too_late     bigint NOT NULL DEFAULT 0,
    events       jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (customer_id, journey_id)
);

-- One pass of a customer through a journey (`instance`: 0 for the oldest). `started_*` is the
-- first visit's entry, kept here so funnels pick instances by start without reading visits.
CREATE TABLE journey_instances (
    customer_id text COLLATE "C" NOT NULL,
    journey_id  text COLLATE "C" NOT NULL,
    instance    integer NOT NULL,
    started_us  bigint NOT NULL,
    started_ns  smallint NOT NULL,
    -- 'completed', 'exited' or 'abandoned'; NULL while it has not ended.
    end_reason  text COLLATE "C",
    end_us      bigint,
    end_ns      smallint,
    PRIMARY KEY (customer_id, journey_id, instance),
    FOREIGN KEY (customer_id, journey_id) REFERENCES journey_tracks
        ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX journey_instances_by_start ON journey_instances (journey_id, started_us, started_ns);

-- A stage an instance entered (`visit`: 0 for the first).
CREATE TABLE journey_visits (
    customer_id   text COLLATE "C" NOT NULL,
    journey_id    text COLLATE "C" NOT NULL,
    instance      integer NOT NULL,
    visit         integer NOT NULL,
    stage_id      text COLLATE "C" NOT NULL,
    stage_index   smallint NOT NULL,
    entered_us    bigint NOT NULL,
    entered_ns    smallint NOT NULL,
    left_us       bigint,
    left_ns       smallint,
    channel       text COLLATE "C" NOT NULL,
    touchpoint_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (customer_id, journey_id, instance, visit),
    FOREIGN KEY (customer_id, journey_id, instance) REFERENCES journey_instances
        ON DELETE CASCADE ON UPDATE CASCADE
);
-- Time in stage: the visits of one stage, by when they were left.
CREATE INDEX journey_visits_by_stage ON journey_visits (journey_id, stage_id, left_us, left_ns);

CREATE TABLE follow_up_cases (
    customer_id   text COLLATE "C" NOT NULL,
    case_id       text COLLATE "C" NOT NULL,
    rule_id       text COLLATE "C" NOT NULL,
    touchpoint_id text COLLATE "C" NOT NULL,
    question      text COLLATE "C" NOT NULL,
    score         double precision NOT NULL,
    owner_id      text COLLATE "C" NOT NULL,
    -- The journey and stage the customer was in: both set or both NULL.
    journey_id    text COLLATE "C",
    stage_id      text COLLATE "C",
    opened_us     bigint NOT NULL,
    opened_ns     smallint NOT NULL,
    due_us        bigint NOT NULL,
    due_ns        smallint NOT NULL,
    closed_us     bigint,
    closed_ns     smallint,
    note          text,
    PRIMARY KEY (customer_id, case_id),
    CHECK ((journey_id IS NULL) = (stage_id IS NULL))
);
-- A case id is unique across customers (opening is idempotent by it).
CREATE UNIQUE INDEX follow_up_cases_by_id ON follow_up_cases (case_id);
CREATE INDEX follow_up_cases_by_owner ON follow_up_cases (owner_id, opened_us, opened_ns, case_id);
CREATE INDEX follow_up_cases_by_opening ON follow_up_cases (opened_us, opened_ns, case_id);
