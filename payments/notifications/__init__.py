"""The PSP's notifications (Adyen standard webhooks): verified, stored once, applied forward only.

* :mod:`payments.psp.hmac`                 the HMAC of a notification item (Adyen's algorithm; the one verifier)
* :mod:`payments.notifications.store`      store-once by the PSP's event identity
* :mod:`payments.notifications.apply`      what each event code does (forward only, anomalies)
"""
