"""Scheduled jobs: the schedule (CronJobs and beat are built from it) and the runner every
scheduled management command uses (outcome recorded, operators emailed on failure)."""
