"""The transactional outbox: webhook deliveries, mails and SMS, written in the request's transaction.

Services add rows (webhooks from the ``signals.event_recorded`` receiver, ``enqueue_mail`` from
``trikchi.mails.mail_user``, ``enqueue_sms``) and commit them with the change that caused them;
only the worker (``flask worker``, ``trikchi.outbox.worker``) talks to SMTP servers, webhook
receivers and SMS gateways (``trikchi.sms``), with retries, back-off and a dead-letter state.
"""
