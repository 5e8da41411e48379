from projects.management.commands._scheduled import ScheduledCommand
from projects.services.scheduling import projects_archive_due


class Command(ScheduledCommand):
    help = "Archive Expired projects past their deadline (daily)."
    service = projects_archive_due
    verb = "archive"
