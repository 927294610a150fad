from django.apps import AppConfig


class WagtailAlttextConfig(AppConfig):
    name = "wagtail_alttext"
    label = "wagtail_alttext"
    verbose_name = "Alt text"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from . import signals

        signals.connect()
