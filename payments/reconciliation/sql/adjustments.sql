-- The matching of a settlement file's refunds, chargebacks, chargeback reversals and second chargebacks with
-- the ledger's adjustments: one source for duckdb (payments/reconciliation/columnar.py) and Athena (Trino).
-- Runs after charges.sql, on the same connection or query session.
--
-- Inputs, named the same on both engines:
--   adjusted     the file's adjustment rows as our reader normalised them (engine.AdjustmentEntry):
--                record_type, modification_reference, line, payment_order_id, psp_reference,
--                modification_merchant_reference, currency, amount_minor (empty strings, never NULL)
--   ledger_copy  the ledger's analytical copy (payments/reconciliation/lake.py COLUMNS), at least once
--   params       one row: window_day (YYYY-MM-DD)
--
-- A row names its ledger adjustment by key (record type and Modification Reference: the modification's own PSP
-- reference) or by transaction id (a refund's is our refund id, the row's Modification Merchant Reference; a
-- dispute step's is the dispute's PSP reference). A ledger adjustment is taken by one row at most: the first,
-- in line order, to name it. A row whose key names an adjustment an earlier row took tries its transaction id
-- once more. A row of another day (named by transaction id, not booked on the window day) is looked up by the
-- runner, within the point-lookup budget.

-- name: ledger_adjustments
-- The PSP's adjustments booked on the window day, one row per transaction (a delivery may be repeated).
CREATE TABLE ledger_adjustments AS
SELECT
    c.txn_id,
    any_value(
        CASE c.kind
            WHEN 'REFUND' THEN 'Refunded'
            WHEN 'CHARGEBACK' THEN 'Chargeback'
            WHEN 'CHARGEBACK_REVERSED' THEN 'ChargebackReversed'
            ELSE 'SecondChargeback'
        END
    ) AS record_type,
    coalesce(any_value(c.psp_reference), '') AS psp_reference,
    coalesce(any_value(c.original_psp_reference), '') AS original_psp_reference,
    any_value(c.payment_order_id) AS payment_order_id, any_value(c.seller_account) AS seller_account,
    any_value(c.currency) AS currency, any_value(c.amount_minor) AS amount_minor,
    any_value(c.booked_at) AS booked_at
FROM ledger_copy AS c
JOIN params AS p ON substr(c.booked_at, 1, 10) = p.window_day
WHERE c.kind IN ('REFUND', 'CHARGEBACK', 'CHARGEBACK_REVERSED', 'SECOND_CHARGEBACK')
GROUP BY c.txn_id;

-- name: ledger_adjustment_count
SELECT count(*) AS adjustments FROM ledger_adjustments;

-- name: adjustment_rows
-- Every adjustment row with the transaction id it names (NULL: it names none), its identity (the transaction
-- id, else record type and Modification Reference), its rank among the rows of that identity (a later one is a
-- duplicate), and whether it repeats the first one exactly.
CREATE TABLE adjustment_rows AS
WITH named AS (
    SELECT
        a.record_type, a.modification_reference, a.line, a.payment_order_id, a.psp_reference,
        a.modification_merchant_reference, a.currency, a.amount_minor,
        CASE
            WHEN a.record_type = 'Refunded' AND a.modification_merchant_reference <> ''
                THEN 'refund:' || a.modification_merchant_reference
            WHEN a.record_type = 'Refunded' OR a.modification_reference = '' THEN CAST(NULL AS VARCHAR)
            WHEN a.record_type = 'Chargeback' THEN 'chargeback:' || a.modification_reference
            WHEN a.record_type = 'ChargebackReversed' THEN 'chargeback_reversed:' || a.modification_reference
            WHEN a.record_type = 'SecondChargeback' THEN 'second_chargeback:' || a.modification_reference
        END AS txn_id
    FROM adjusted AS a
),
identified AS (
    SELECT
        n.record_type, n.modification_reference, n.line, n.payment_order_id, n.psp_reference,
        n.modification_merchant_reference, n.currency, n.amount_minor, n.txn_id,
        coalesce(n.txn_id, n.record_type || '#' || n.modification_reference) AS identity,
        row_number() OVER (
            PARTITION BY coalesce(n.txn_id, n.record_type || '#' || n.modification_reference) ORDER BY n.line
        ) AS nth
    FROM named AS n
)
SELECT
    i.record_type, i.modification_reference, i.line, i.payment_order_id, i.psp_reference,
    i.modification_merchant_reference, i.currency, i.amount_minor, i.txn_id, i.nth,
    (i.record_type = f.record_type AND i.modification_reference = f.modification_reference
        AND i.payment_order_id = f.payment_order_id AND i.psp_reference = f.psp_reference
        AND i.modification_merchant_reference = f.modification_merchant_reference
        AND i.currency = f.currency AND i.amount_minor = f.amount_minor) AS identical
FROM identified AS i
JOIN identified AS f ON f.identity = i.identity AND f.nth = 1;

-- name: adjustment_claims
-- Which row takes which ledger adjustment. First claims: a row's key (of several adjustments under one key, the
-- last by transaction id), else its transaction id; the earliest line wins. A row that lost its key claims its
-- transaction id once more, against the first claims of later lines.
CREATE TABLE adjustment_claims AS
WITH keyed AS (
    SELECT record_type, psp_reference, max(txn_id) AS txn_id
    FROM ledger_adjustments
    WHERE psp_reference <> ''
    GROUP BY record_type, psp_reference
),
firsts AS (
    SELECT
        r.line, r.txn_id AS named_txn, k.txn_id AS key_txn,
        CASE WHEN t.txn_id IS NULL THEN CAST(NULL AS VARCHAR) ELSE r.txn_id END AS txn_found
    FROM adjustment_rows AS r
    LEFT JOIN keyed AS k
        ON r.modification_reference <> '' AND k.record_type = r.record_type
        AND k.psp_reference = r.modification_reference
    LEFT JOIN ledger_adjustments AS t ON t.txn_id = r.txn_id
    WHERE r.nth = 1
),
first_claims AS (
    SELECT line, coalesce(key_txn, txn_found) AS claim, key_txn IS NOT NULL AS by_key, txn_found
    FROM firsts
    WHERE coalesce(key_txn, txn_found) IS NOT NULL
),
first_winners AS (
    SELECT claim, min(line) AS line FROM first_claims GROUP BY claim
),
second_claims AS (
    SELECT c.line, c.txn_found AS claim
    FROM first_claims AS c
    JOIN first_winners AS w ON w.claim = c.claim AND w.line <> c.line
    WHERE c.by_key AND c.txn_found IS NOT NULL AND c.txn_found <> c.claim
),
every_claim AS (
    SELECT line, claim FROM first_claims
    UNION ALL
    SELECT line, claim FROM second_claims
)
SELECT claim AS txn_id, min(line) AS line
FROM every_claim
GROUP BY claim;

-- name: adjustment_outcomes
-- Every adjustment row in line order with its outcome and the ledger adjustment it took (the runner compares the
-- two with the same rules as a charge, and a looked-up one the same way):
--   DUPLICATE   a later row of an identity (identical: the first row repeated)
--   TAKEN       the row took a ledger adjustment of the window day
--   UNKNOWN     no ledger adjustment of that record type, and no transaction id to look one up by
--   LOOKUP      no adjustment of the window day: the runner looks its transaction id up (a row of another day)
SELECT
    CASE
        WHEN r.nth > 1 THEN 'DUPLICATE'
        WHEN l.txn_id IS NULL AND r.txn_id IS NULL THEN 'UNKNOWN'
        WHEN l.txn_id IS NULL THEN 'LOOKUP'
        WHEN l.record_type <> r.record_type THEN 'UNKNOWN'
        ELSE 'TAKEN'
    END AS outcome,
    r.record_type, r.modification_reference, r.line, r.payment_order_id, r.psp_reference,
    r.modification_merchant_reference, r.currency, r.amount_minor, r.txn_id, r.identical,
    l.txn_id AS ledger_txn_id, l.record_type AS ledger_record_type, l.psp_reference AS ledger_reference,
    l.original_psp_reference AS ledger_original_reference, l.payment_order_id AS ledger_order,
    l.seller_account AS ledger_seller, l.currency AS ledger_currency, l.amount_minor AS ledger_amount,
    l.booked_at AS ledger_booked_at
FROM adjustment_rows AS r
LEFT JOIN adjustment_claims AS c ON c.line = r.line AND r.nth = 1
LEFT JOIN ledger_adjustments AS l ON l.txn_id = c.txn_id
ORDER BY r.line;

-- name: adjustments_missing_in_settlement
-- The window day's ledger adjustments no row took: booked that day, absent from the file.
SELECT
    l.txn_id, l.record_type, l.psp_reference, l.original_psp_reference, l.payment_order_id, l.seller_account,
    l.currency, l.amount_minor, l.booked_at
FROM ledger_adjustments AS l
WHERE l.txn_id NOT IN (SELECT c.txn_id FROM adjustment_claims AS c)
ORDER BY l.txn_id;
