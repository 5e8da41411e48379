from django.apps import AppConfig

from accounts.signals import invite_accepted


class ProjectsConfig(AppConfig):
    name = "projects"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The receiver's module loads models, so it is imported once the registry is ready.
        from projects.services.invites import invite_accepted_memberships  # noqa: PLC0415

        invite_accepted.connect(invite_accepted_memberships,
                                dispatch_uid="projects.invite_accepted_memberships")
