"""Facility reports: invoicing (GB-months and cost from the recorded byte-hours) and
statistics snapshots. Sits above transfers (it reads every app's data) and below the
portal and the composition root."""
