"""Phone numbers and SMS codes (SPEC §14): sign-in with a code by SMS, and the account's number.

A sign-in method of its own: it proves the number in ``phone.services`` (its table, limits and
events), signs in through the core's one decision (``auth.signin.decide``), and registers a
proven number as a way to sign in (``auth.seams``). Numbers are read by ``trikchi.phones``; the
SMS leave through the outbox.
"""
