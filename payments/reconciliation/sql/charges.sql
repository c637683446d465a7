-- The matching of a settlement file's charges with the ledger: one source for duckdb (the reconcile
-- function, payments/reconciliation/columnar.py) and Athena (Trino; a test transpiles every statement).
--
-- Inputs, named the same on both engines:
--   settled      the file's Settled rows as our reader normalised them (payments/reconciliation/adyen.py):
--                psp_reference, line, payment_order_id, currency, amount_minor, charged_at
--   ledger_copy  the ledger's analytical copy (payments/reconciliation/lake.py COLUMNS), at least once
--   params       one row: window_day (YYYY-MM-DD), the UTC day the file's Settled rows were mostly charged on
--
-- Each statement starts with a "-- name:" line; the runner executes them in this order.

-- name: ledger_day
-- The PSP's charges of the window day, one row per transaction: a delivery of the copy may be repeated,
-- and every copy of a transaction is identical (the item is never changed), so DISTINCT keeps one. (Were two
-- copies of a transaction ever to differ, both would stay, and ledger_day_conflict below stops the run: never
-- an arbitrary pick. DISTINCT, not GROUP BY txn_id with any_value: duckdb spills a DISTINCT's keys to disk, but
-- not the strings of any_value's states, which ran out of memory at 10 million charges.)
CREATE TABLE ledger_day AS
SELECT DISTINCT
    c.txn_id, c.psp_reference, c.payment_order_id, c.seller_account, c.currency, c.amount_minor,
    coalesce(c.commission_minor, 0) AS commission_minor, c.charged_at
FROM ledger_copy AS c
JOIN params AS p ON substr(c.charged_at, 1, 10) = p.window_day
WHERE c.kind = 'PAYIN';

-- name: ledger_day_conflict
-- Two transactions of one day under one PSP reference, or two copies of one transaction that differ: the join
-- would be ambiguous (an invariant of the ledger and of its copy). Counted first (a distinct count is cheap),
-- looked for only when there is one (a GROUP BY with string states over every charge of the day is not).
SELECT l.psp_reference, count(*) AS transactions, min(l.txn_id) <> max(l.txn_id) AS several_transactions
FROM ledger_day AS l
JOIN (SELECT count(*) - count(DISTINCT psp_reference) AS extra FROM ledger_day) AS n ON n.extra > 0
GROUP BY l.psp_reference
HAVING count(*) > 1
ORDER BY l.psp_reference
LIMIT 1;

-- name: charge_outcomes
-- Every Settled row and every ledger charge of the day that is not a match, with its outcome (a match, the first
-- row of a PSP reference equal to the ledger's charge in order, currency and amount, is the ledger charge that
-- no row here names: the statements below count, group and list the matches from ledger_day and this table, so
-- that a good day's million matches are never written out as rows: that write was a third of the matching):
--   DUPLICATE               a later row of the same PSP reference (identical: the first row's payment repeated)
--   ORDER_DIFFERS           the ledger has the PSP reference under another order
--   CURRENCY, AMOUNT        the ledger has it in another currency, or for another amount
--   CARRIED_OVER            no ledger charge of the window day has the PSP reference (a row of another day)
--   MISSING_IN_SETTLEMENT   a ledger charge of the day that no row names
-- and met_key: the order in which a merge of the two sides by PSP reference meets the outcomes, which decides
-- what a bounded report keeps. The merge meets a reference's later rows (duplicates) as soon as they come, right
-- after the previous reference was decided; then the ledger's charges passed over before the reference; then the
-- reference itself. So a duplicate sorts under the previous reference of the file. (A space sorts below every
-- character a reference may hold: the key orders as the tuple of its parts.)
CREATE TABLE charge_outcomes AS
WITH refs AS (
    -- each reference of the file, with its rows' count and the reference before it in the merge's order ('' for
    -- the first): where a duplicate sorts. One aggregation serves both (a window over the distinct references,
    -- not a lookup per duplicate)
    SELECT psp_reference, rows_of_reference,
        lag(psp_reference, 1, '') OVER (ORDER BY psp_reference) AS previous_reference
    FROM (SELECT psp_reference, count(*) AS rows_of_reference FROM settled GROUP BY psp_reference) AS counted
),
repeated AS (
    SELECT psp_reference, previous_reference FROM refs WHERE rows_of_reference > 1
),
repeated_rows AS (
    SELECT
        s.psp_reference, s.line, s.payment_order_id, s.currency, s.amount_minor, s.charged_at,
        row_number() OVER (PARTITION BY s.psp_reference ORDER BY s.line) AS nth
    FROM settled AS s
    WHERE s.psp_reference IN (SELECT psp_reference FROM repeated)
),
firsts AS (
    SELECT s.psp_reference, s.line, s.payment_order_id, s.currency, s.amount_minor, s.charged_at
    FROM settled AS s
    WHERE s.psp_reference NOT IN (SELECT psp_reference FROM repeated)
    UNION ALL
    SELECT r.psp_reference, r.line, r.payment_order_id, r.currency, r.amount_minor, r.charged_at
    FROM repeated_rows AS r
    WHERE r.nth = 1
),
duplicates AS (
    SELECT
        'DUPLICATE' AS outcome,
        pr.previous_reference AS sort_reference,
        3 AS phase,
        d.psp_reference, d.line, d.payment_order_id, d.currency, d.amount_minor, d.charged_at,
        (d.payment_order_id = f.payment_order_id AND d.currency = f.currency AND d.amount_minor = f.amount_minor
            AND d.charged_at = f.charged_at) AS identical,
        CAST(NULL AS VARCHAR) AS ledger_reference, CAST(NULL AS VARCHAR) AS ledger_order,
        CAST(NULL AS VARCHAR) AS ledger_seller, CAST(NULL AS VARCHAR) AS ledger_currency,
        CAST(NULL AS BIGINT) AS ledger_amount, CAST(NULL AS BIGINT) AS ledger_commission,
        CAST(NULL AS VARCHAR) AS ledger_charged_at
    FROM repeated_rows AS d
    JOIN repeated_rows AS f ON f.psp_reference = d.psp_reference AND f.nth = 1
    JOIN repeated AS pr ON pr.psp_reference = d.psp_reference
    WHERE d.nth > 1
),
compared AS (
    SELECT
        CASE
            WHEN f.psp_reference IS NULL THEN 'MISSING_IN_SETTLEMENT'
            WHEN l.psp_reference IS NULL THEN 'CARRIED_OVER'
            WHEN l.payment_order_id <> f.payment_order_id THEN 'ORDER_DIFFERS'
            WHEN l.currency <> f.currency THEN 'CURRENCY'
            WHEN l.amount_minor <> f.amount_minor THEN 'AMOUNT'
            ELSE 'MATCHED'
        END AS outcome,
        coalesce(f.psp_reference, l.psp_reference) AS sort_reference,
        CASE WHEN f.psp_reference IS NULL THEN 1 ELSE 2 END AS phase,
        f.psp_reference, f.line, f.payment_order_id, f.currency, f.amount_minor, f.charged_at,
        CAST(NULL AS BOOLEAN) AS identical,
        l.psp_reference AS ledger_reference, l.payment_order_id AS ledger_order, l.seller_account AS ledger_seller,
        l.currency AS ledger_currency, l.amount_minor AS ledger_amount, l.commission_minor AS ledger_commission,
        l.charged_at AS ledger_charged_at
    FROM firsts AS f
    FULL OUTER JOIN ledger_day AS l ON l.psp_reference = f.psp_reference
)
SELECT * FROM duplicates
UNION ALL
SELECT * FROM compared WHERE outcome <> 'MATCHED';

-- name: matched_count
-- Every ledger charge of the day meets exactly one outcome of the join (a first row of its PSP reference, or none:
-- MISSING_IN_SETTLEMENT, as a charge without a PSP reference does); the charges whose outcome is not a match are
-- in charge_outcomes (by their outcome: such a charge's ledger_reference is NULL); the others matched.
SELECT
    (SELECT count(*) FROM ledger_day)
    - (SELECT count(*) FROM charge_outcomes
       WHERE outcome IN ('MISSING_IN_SETTLEMENT', 'ORDER_DIFFERS', 'CURRENCY', 'AMOUNT')) AS matched;

-- name: findings
-- Everything but the matches, in the merge's order (few on a good day; bounded by the report's limits).
SELECT
    outcome, sort_reference || ' ' || CAST(phase AS VARCHAR) || ' ' || lpad(CAST(coalesce(line, 0) AS VARCHAR), 12, '0')
        AS met_key,
    psp_reference, line, payment_order_id, currency, amount_minor, charged_at, identical,
    ledger_reference, ledger_order, ledger_seller, ledger_currency, ledger_amount, ledger_commission, ledger_charged_at
FROM charge_outcomes
ORDER BY sort_reference, phase, line;

-- name: carried_over
-- The orders of the rows of another day, in the merge's order, as many as the point-lookup budget (the parameter).
SELECT payment_order_id
FROM charge_outcomes
WHERE outcome = 'CARRIED_OVER'
ORDER BY sort_reference, phase, line
LIMIT ?;

-- name: sellers
-- The (seller, currency) accounts the ledger side of the join touched, in the order the merge first meets them.
-- The ledger side is every charge of the day, each met once, under its own PSP reference (ledger_day_conflict has
-- stopped a day where two share one): an account is first met at its smallest reference, in phase 2 at the line
-- of the reference's first row, or in phase 1 (line 0) where no row names it (MISSING_IN_SETTLEMENT). Grouped
-- over ledger_day, and only those references looked up among the rows: no key is built for every charge. (A
-- charge without a PSP reference is met by no reference: its account is not among these, as before.)
SELECT
    a.seller_account AS ledger_seller, a.currency AS ledger_currency,
    a.first_reference || ' ' || CASE WHEN r.line IS NULL THEN '1' ELSE '2' END || ' '
        || lpad(CAST(coalesce(r.line, 0) AS VARCHAR), 12, '0') AS first_met
FROM (
    SELECT seller_account, currency, min(psp_reference) AS first_reference
    FROM ledger_day
    WHERE psp_reference IS NOT NULL
    GROUP BY seller_account, currency
) AS a
LEFT JOIN (
    SELECT psp_reference, min(line) AS line
    FROM settled
    WHERE psp_reference IN (
        SELECT min(psp_reference) FROM ledger_day WHERE psp_reference IS NOT NULL GROUP BY seller_account, currency
    )
    GROUP BY psp_reference
) AS r ON r.psp_reference = a.first_reference
ORDER BY first_met;

-- name: matched_charges
-- The ledger's charges the file settles (what moves the sellers' pending to available): the day's charges but those
-- whose outcome is not a match.
SELECT
    l.payment_order_id AS ledger_order, l.seller_account AS ledger_seller, l.currency AS ledger_currency,
    l.amount_minor AS ledger_amount, l.commission_minor AS ledger_commission, l.psp_reference AS ledger_reference,
    l.charged_at AS ledger_charged_at
FROM ledger_day AS l
WHERE l.psp_reference IS NOT NULL
    AND l.psp_reference NOT IN (SELECT ledger_reference FROM charge_outcomes WHERE ledger_reference IS NOT NULL);
