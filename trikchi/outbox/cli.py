"""``flask worker``: deliver the outbox (webhooks, mails and SMS) until stopped."""

from __future__ import annotations

import signal

import click
from flask.cli import with_appcontext


@click.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit (cron, tests).")
@click.option(
    "--batch", default=10, show_default=True, type=click.IntRange(1, 100), help="Deliveries per claim."
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(0.01, 60),
    default=None,
    help="Seconds between polls when idle [default: OUTBOX_POLL_SECONDS].",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve this worker's Prometheus metrics on 127.0.0.1:PORT.",
)
@with_appcontext
def worker_command(once: bool, batch: int, poll_interval: float | None, metrics_port: int | None) -> None:
    """Deliver webhooks, mails and SMS from the outbox, with retries; SIGTERM stops it gracefully."""
    from trikchi.outbox.worker import Worker

    worker = Worker(batch=batch)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")

    def _stop(signum: int, _frame: object) -> None:
        click.echo(f"worker {worker.id}: {signal.Signals(signum).name}, finishing the delivery under way")
        worker.stop()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    click.echo(f"worker {worker.id}: delivering the outbox")
    try:
        worker.run(once=once, poll_seconds=poll_interval)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(f"worker {worker.id}: stopped")
