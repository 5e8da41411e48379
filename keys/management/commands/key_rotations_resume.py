from jobs.runner import ScheduledJobCommand
from keys.models import KeyRotation, KeyRotationStatus
from transfers.services.rotation import project_key_rotation_run


class Command(ScheduledJobCommand):
    help = "Finish every interrupted project key rotation (safe to run at any time)."

    def handle(self, *args, **options):
        running = list(KeyRotation.objects.filter(status=KeyRotationStatus.RUNNING)
                       .values_list("pk", flat=True))
        for rotation_id in running:
            rotation = project_key_rotation_run(rotation_id=rotation_id)
            if rotation is None:  # its project was deleted meanwhile
                self.stdout.write(f"rotation {rotation_id}: gone")
                continue
            self.stdout.write(f"rotation {rotation_id} of project "
                              f"{rotation.project.public_id}: {rotation.status}")
        if not running:
            self.stdout.write("no rotation to resume")
