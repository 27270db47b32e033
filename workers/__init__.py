"""RQ: queues, the app-context job class, jobs, the cron schedule, and the embedded Redis."""
