-- cx-store-postgres schema, version 3: recording a decision in one statement.
--
-- `record_decision` was a transaction of four round trips: BEGIN, the directory lock (shared),
-- the INSERT, COMMIT. This function does the same in one statement, so one round trip, with the
-- same meaning: it takes the lock first (held to the end of the caller's transaction, the
-- statement itself when the caller runs it alone), and a volatile PL/pgSQL function runs each
-- query with a fresh snapshot, so the INSERT resolves the customer id and inserts seeing
-- everything a merge or an erasure that held the lock exclusively had committed.
--
-- Returns the canonical customer id, how many rows were inserted (0 or 1), and, only when the
-- id was taken, the row stored under it (read after the INSERT, with a snapshot of its own, so
-- it is the row that made the INSERT a no-op): the caller tells a repeated record from a
-- conflict without another round trip. The common case reads nothing more than the INSERT
-- does. Parameters are values only; the lock's keys come from the caller.
CREATE FUNCTION cx_record_decision(
    p_customer   text,
    p_decision   text,
    p_channel    text,
    p_at_us      bigint,
    p_at_ns      smallint,
    p_offers     text,
    p_body       text,
    p_lock_class integer,
    p_lock_key   integer
) RETURNS TABLE (canonical text, inserted bigint, old_customer text, old_body text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    PERFORM pg_advisory_xact_lock_shared(p_lock_class, p_lock_key);
    canonical := coalesce((SELECT a.customer_id FROM customer_aliases a
                           WHERE a.alias_id = p_customer), p_customer);
    INSERT INTO decisions (customer_id, decision_id, channel, at_us, at_ns, offers, body)
    VALUES (canonical, p_decision, p_channel, p_at_us, p_at_ns, p_offers::jsonb, p_body)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    IF inserted = 0 THEN
        SELECT d.customer_id, d.body INTO old_customer, old_body
        FROM decisions d WHERE d.decision_id = p_decision;
    END IF;
    RETURN NEXT;
END
$$;
