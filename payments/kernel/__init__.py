"""The shared kernel: what every bounded context uses and none owns.

* ``money``, ``iso4217``  ISO 4217 currencies, decimal strings <-> integer minor units
* ``errors``              domain errors; their class names are the ASL ``ErrorEquals`` names
* ``config``              the settings of a function, read from its environment once
* ``aws``, ``dynamo``     the AWS clients, and DynamoDB helpers (batch reads, the shard hash)
* ``tables``              the DynamoDB tables, their keys and indexes, for every runtime
* ``observability``       logger, tracer, metrics and the ``entry_point`` of every handler
* ``clock``, ``pan``      the clock; the card-number policy (no card number is stored or logged)
"""
