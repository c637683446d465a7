"""Pay-in: a checkout's payment event, its payment orders, their forward-only statuses.

* ``models``      the public API models (pydantic) and the workflow messages
* ``status``      the forward-only status machines of payments and orders
* ``tasks``       the messages between the state machine and the task functions
* ``repository``  the payments table (events and orders): conditional writes, transactions
* ``recovery``    re-driving checkouts whose workflow never finished
"""
