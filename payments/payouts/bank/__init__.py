"""The bank rail's files and the simulated bank, as a library (no AWS here).

* :mod:`.pain001`: payouts -> one SEPA credit-transfer file (``pain.001.001.09``, sepaxml, XSD-validated);
  the :class:`~.pain001.PayoutRail` protocol and :func:`~.pain001.rail_for` (EUR only).
* :mod:`.pain002`: the bank's status reports -> :class:`~.pain002.StatusReport` (per-transaction status and
  ISO reasons, problems that must not be matched).
* :mod:`.camt`: camt.053 statements and camt.054 notifications -> booked payouts and returns by EndToEndId.
* :mod:`.simulated`: the simulated bank over an injected store, and the contract's test IBANs.
"""
