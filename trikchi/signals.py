"""The signals the core and the platform send, for features to subscribe to.

Flask's own signal library (blinker). The core never imports a feature: a feature that
wants to act on something the core does — mail a notice for an event, queue its webhooks,
count it — connects a receiver here when the app is built (``trikchi.features``). Every
signal is sent with the app as sender, synchronously, inside the request's transaction:
a receiver that writes rows (the outbox) writes them into the same commit.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: An audit event was added to the current transaction (``trikchi.events.record_event``);
#: keyword ``event``: a ``trikchi.events.RecordedEvent``.
event_recorded = _signals.signal("event-recorded")
#: A refresh token was rotated and its successor committed (``trikchi.auth.sessions``).
refresh_rotated = _signals.signal("refresh-rotated")
#: A request or the worker failed on the database; keyword ``kind``: ``unavailable`` (503),
#: ``error`` (500) or ``worker``.
database_failed = _signals.signal("database-failed")
