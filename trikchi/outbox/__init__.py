"""The transactional outbox: webhook deliveries and mails, written in the request's transaction.

Services add rows (webhooks from the ``signals.event_recorded`` receiver, ``enqueue_mail`` from
``trikchi.mails.mail_user``) and commit them with the change that caused them; only the
worker (``flask worker``, ``trikchi.outbox.worker``) talks to SMTP servers and webhook
receivers, with retries, back-off and a dead-letter state.
"""
