"""Money flowing back (issue 18): refunds, and the PSP's chargebacks and their reversals.

* :mod:`payments.refunds.models`      the API body, the stored refund and its resource
* :mod:`payments.refunds.repository`  the reservation on the order and the exactly-once outcomes
* :mod:`payments.refunds.psp`         what the refund flow needs from a PSP
* :mod:`payments.refunds.logic`       accept a refund, execute it at the PSP, apply its outcome
"""
