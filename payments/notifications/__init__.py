"""The PSP's notifications (Adyen standard webhooks): verified, stored once, applied forward only.

* :mod:`payments.notifications.signature`  the HMAC of a notification item (Adyen's algorithm)
* :mod:`payments.notifications.store`      store-once by the PSP's event identity
* :mod:`payments.notifications.apply`      what each event code does (forward only, anomalies)
"""
