"""Payouts: sellers get paid (the bank rail's files and the simulated bank live in :mod:`.bank`)."""
