"""The transactional outbox: webhook deliveries and mails, written in the request's transaction.

Services add rows (``enqueue_webhooks`` from ``record_event``, ``enqueue_mail`` from
``trikchi.mail.send_mail``) and commit them with the change that caused them; only the
worker (``flask worker``, ``trikchi.outbox.worker``) talks to SMTP servers and webhook
receivers, with retries, back-off and a dead-letter state.
"""
