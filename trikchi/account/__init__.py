"""Self-service of an account (SPEC §5, §10): email verification, password reset, the profile,
the email change and deletion. A feature above the core: it mails through the outbox."""
