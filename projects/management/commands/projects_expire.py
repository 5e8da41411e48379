from projects.management.commands._scheduled import ScheduledCommand
from projects.services.scheduling import projects_expire_due


class Command(ScheduledCommand):
    help = "Expire Available projects past their deadline (daily)."
    service = projects_expire_due
    verb = "expire"
