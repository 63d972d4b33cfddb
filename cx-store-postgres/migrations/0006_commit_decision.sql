-- cx-store-postgres schema, version 6: a decision and its budget draws committed together.
--
-- `Engine::decide` consumed each budget its offers draw on (one statement each), then recorded
-- the decision (`cx_record_decision`). A refused draw left the draws before it consumed, and
-- the next round took them again. This function does it all in one statement, all or nothing:
-- it records the decision as `cx_record_decision` does, then consumes each draw with the same
-- conditional upsert as `consume_budget`, in key order (so concurrent commits lock counters in
-- one order and cannot deadlock). A draw that does not fit raises an error inside the block,
-- which rolls the decision and the draws before it back; the function then returns that
-- draw's position in `p_budgets` (from 1) as `refused`.
--
-- Returns the canonical customer id, how many decisions were inserted (0 or 1), the refused
-- draw (NULL if none), and, only when the decision id was taken, the row stored under it (a
-- decision committed again consumes nothing). Parameters are values only; the lock's keys
-- come from the caller.
CREATE FUNCTION cx_commit_decision(
    p_customer   text,
    p_decision   text,
    p_channel    text,
    p_at_us      bigint,
    p_at_ns      smallint,
    p_offers     text,
    p_body       text,
    p_lock_class integer,
    p_lock_key   integer,
    p_budgets    text[],
    p_periods    text[],
    p_limits     bigint[],
    p_amounts    bigint[]
) RETURNS TABLE (canonical text, inserted bigint, refused bigint, old_customer text,
                 old_body text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    draw record;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(p_lock_class, p_lock_key);
    canonical := coalesce((SELECT a.customer_id FROM customer_aliases a
                           WHERE a.alias_id = p_customer), p_customer);
    BEGIN
        INSERT INTO decisions (customer_id, decision_id, channel, at_us, at_ns, offers, body)
        VALUES (canonical, p_decision, p_channel, p_at_us, p_at_ns, p_offers::jsonb, p_body)
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS inserted = ROW_COUNT;
        IF inserted = 1 THEN
            FOR draw IN
                SELECT u.budget_id, u.period, u.lim, u.amount, u.n
                FROM unnest(p_budgets, p_periods, p_limits, p_amounts)
                     WITH ORDINALITY AS u(budget_id, period, lim, amount, n)
                ORDER BY u.budget_id COLLATE "C", u.period COLLATE "C", u.n
            LOOP
                INSERT INTO budget_counters AS b (budget_id, period, used)
                SELECT draw.budget_id, draw.period, draw.amount WHERE draw.amount <= draw.lim
                ON CONFLICT (budget_id, period)
                DO UPDATE SET used = b.used + EXCLUDED.used
                WHERE b.used <= draw.lim - EXCLUDED.used;
                IF NOT FOUND THEN
                    refused := draw.n;
                    RAISE EXCEPTION 'budget draw % does not fit', draw.n
                        USING ERRCODE = 'CXB01';
                END IF;
            END LOOP;
        END IF;
    EXCEPTION WHEN SQLSTATE 'CXB01' THEN
        inserted := 0;
    END;
    IF inserted = 0 AND refused IS NULL THEN
        SELECT d.customer_id, d.body INTO old_customer, old_body
        FROM decisions d WHERE d.decision_id = p_decision;
    END IF;
    RETURN NEXT;
END
$$;

-- `cx_commit_decision` with no draws is what `cx_record_decision` (migration 3) did.
DROP FUNCTION cx_record_decision(text, text, text, bigint, smallint, text, text, integer,
                                 integer);
