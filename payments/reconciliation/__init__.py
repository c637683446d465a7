"""Reconciliation: settlement files against the ledger, and the ledger against the wallets.

A settlement file put under ``incoming/`` in the settlement bucket is recognised
by its content, parsed as a stream, matched against the ledger and classified;
a report lands under ``reports/`` and the mismatches in the reconciliation table,
where they are listed and resolved. Modules, in the order data flows:

==================  ===========================================================================
``model``           bounds, mismatch kinds and classes, the records the engine produces
``lines``           bounded streaming line reading (S3 bodies, local files), hashing
``detect``          format recognition from the first bytes
``adyen``           the Adyen Settlement Details Report: parsing rows, writing the PSP's file
``sources``         the ledger and balance interfaces (DynamoDB, in memory)
``engine``          the sorted-merge join in bounded memory, the row-outcome invariant
``rules``           the classification rules, each named in the report
``bank``            MT940, BAI2, camt.053: balance checks and payout matching
``chunks``          split / per-chunk / merge for the Step Functions Distributed Map
``report``          JSON, HTML and CSV renderings
``store``           the reconciliation table: runs, the mismatch queue (by day, short ids, resolved once)
``service``         S3 orchestration: reports, quarantine, three-way check, distributed steps
``settlement``      the simulated PSP's nightly settlement file
``cli``             ``payments psp settle`` and ``payments reconcile FILE``
==================  ===========================================================================
"""
