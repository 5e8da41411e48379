# The purge is transfers' (it empties storage); the command keeps its name and schedule.
from projects.management.commands._scheduled import ScheduledCommand
from transfers.services.purge import projects_storage_cleanup_due


class Command(ScheduledCommand):
    help = "Remove the stored objects of deleted and archived projects (retries failures)."
    service = projects_storage_cleanup_due
    verb = "clean up"
