"""What `pasok cron` enqueues, and when: RQ's CronScheduler loads this module.

Each entry is named (`name=`): the name keys the cron job's history in Redis and is what
rq-dashboard shows. Interval jobs are enqueued once at start, then every `interval` seconds.
Run exactly one `pasok cron` per deployment: two schedulers would enqueue everything twice.
"""

from rq import cron

from workers.jobs import heartbeat, verify_ledger
from workers.order_jobs import sweep_orders, sweep_upstream_requests
from workers.payment_jobs import reconcile_payments
from workers.queues import DEFAULT, FORWARD, STATUS
from workers.status_jobs import sync_refills, sync_statuses

cron.register(heartbeat, DEFAULT, interval=60, name="workers.heartbeat", result_ttl=120)
cron.register(verify_ledger, DEFAULT, interval=3600, name="ledger.verify", job_timeout=600)
# Re-enqueue due `pending`/`unknown` orders whose job is missing or stale, move `submitting`
# orders past their deadline to `unknown`; on `forward`, so it never waits behind a status sync.
cron.register(
    sweep_orders, FORWARD, interval=60, name="orders.sweep", job_timeout=300, result_ttl=300
)

# Fan the status sync out into batch jobs of up to 100 orders per provider, on `status`.
cron.register(
    sync_statuses, STATUS, interval=60, name="orders.sync", job_timeout=300, result_ttl=300
)

# Refills and cancels of orders upstream: re-enqueue requests whose job is missing or stale (on
# `forward`, like the order sweep), and follow refills to their final state (on `status`).
cron.register(
    sweep_upstream_requests,
    FORWARD,
    interval=60,
    name="orders.requests.sweep",
    job_timeout=300,
    result_ttl=300,
)
cron.register(
    sync_refills, STATUS, interval=60, name="orders.refills.sync", job_timeout=300, result_ttl=300
)

# Top-ups pending too long (a lost webhook, an abandoned checkout): re-read from the gateway.
cron.register(
    reconcile_payments,
    DEFAULT,
    interval=300,
    name="payments.reconcile",
    job_timeout=600,
    result_ttl=600,
)
