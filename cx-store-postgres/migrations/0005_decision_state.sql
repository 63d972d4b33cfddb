-- cx-store-postgres schema, version 5: a decision's state read with a plan made once.
--
-- The statement that reads what a decision needs (profile, touchpoints, contact history, budget
-- use) was planned again on every run: its parameters switch whole branches on and off, so the
-- server kept choosing a plan made for the values at hand, and making that plan took as long
-- as running it. Every plan it made was the same shape: each branch looks up one customer by
-- key. This function runs the same query with `plan_cache_mode = force_generic_plan`, so a
-- connection plans it once and reuses the plan; the setting applies inside the function only.
--
-- Rows: `(tag, n, used, profile, <touchpoint columns>, <contact columns>)`, where tag 0 is the
-- profile, 1 a touchpoint, 2 a contact (n: its sequence), 3 a budget counter (n: its position
-- in `p_budgets`). Touchpoints are those in `[p_tp_from, p_tp_to)`; when `p_kinds` is not NULL,
-- only those of a kind in `p_kinds` that occurred at or after that kind's `p_since` (the
-- touchpoints a decision's features read). Like every statement, one snapshot.
CREATE FUNCTION cx_decision_state(
    p_customer      text,
    p_with_tps      boolean,
    p_tp_from_us    bigint,
    p_tp_from_ns    smallint,
    p_tp_to_us      bigint,
    p_tp_to_ns      smallint,
    p_kinds         text[],
    p_since         bigint[],
    p_with_contacts boolean,
    p_k_from_us     bigint,
    p_k_from_ns     smallint,
    p_k_to_us       bigint,
    p_k_to_ns       smallint,
    p_budgets       text[],
    p_periods       text[]
) RETURNS TABLE (
    o_tag smallint, o_n bigint, o_used bigint, o_profile text,
    t_customer text, t_id text, t_us bigint, t_ns smallint, t_channel text, t_kind text,
    t_source text, t_attributes text, t_question text, t_score float8, t_min float8,
    t_max float8,
    k_customer text, k_decision text, k_offer text, k_category text, k_channel text,
    k_kind text, k_us bigint, k_ns smallint
)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_customer text := coalesce((SELECT a.customer_id FROM customer_aliases a
                         WHERE a.alias_id = p_customer), p_customer);
BEGIN
    RETURN QUERY
    SELECT 0::smallint, NULL::bigint, NULL::bigint, p.profile::text,
           NULL::text, NULL::text, NULL::bigint, NULL::smallint, NULL::text, NULL::text,
           NULL::text, NULL::text, NULL::text, NULL::float8, NULL::float8, NULL::float8,
           NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text,
           NULL::bigint, NULL::smallint
    FROM customers p WHERE p.customer_id = v_customer
    UNION ALL
    SELECT 1::smallint, NULL, NULL, NULL,
           t.customer_id::text, t.touchpoint_id::text, t.occurred_us, t.occurred_ns,
           t.channel::text, t.kind::text, t.source::text, t.attributes::text,
           t.survey_question::text, t.survey_score, t.survey_min, t.survey_max,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM touchpoints t
    WHERE p_with_tps AND t.customer_id = v_customer
      AND (t.occurred_us, t.occurred_ns) >= (p_tp_from_us, p_tp_from_ns)
      AND (t.occurred_us, t.occurred_ns) < (p_tp_to_us, p_tp_to_ns)
      -- A kind not in `p_kinds` has no position, so no `p_since`, and the test is NULL.
      AND (p_kinds IS NULL OR t.occurred_us >= p_since[array_position(p_kinds, t.kind::text)])
    UNION ALL
    SELECT 2::smallint, k.seq, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           k.customer_id::text, k.decision_id::text, k.offer_id::text, k.category::text,
           k.channel::text, k.kind::text, k.at_us, k.at_ns
    FROM contacts k
    WHERE p_with_contacts AND k.customer_id = v_customer
      AND (k.at_us, k.at_ns) >= (p_k_from_us, p_k_from_ns)
      AND (k.at_us, k.at_ns) < (p_k_to_us, p_k_to_ns)
    UNION ALL
    SELECT 3::smallint, b.n,
           coalesce((SELECT c.used FROM budget_counters c
                     WHERE c.budget_id = b.budget_id COLLATE "C"
                       AND c.period = b.period COLLATE "C"), 0),
           NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM unnest(p_budgets, p_periods) WITH ORDINALITY AS b(budget_id, period, n);
END
$$;
