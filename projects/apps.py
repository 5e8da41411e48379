from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, once the app registry is ready: the receiver's module loads models.
        from accounts.signals import invite_accepted  # noqa: PLC0415
        from projects.services.invites import invite_accepted_memberships  # noqa: PLC0415

        invite_accepted.connect(invite_accepted_memberships,
                                dispatch_uid="projects.invite_accepted_memberships")
