from django.core.management.base import BaseCommand

from wagtail_alttext import services


class Command(BaseCommand):
    help = "Retry images whose description failed (service down, 429, 5xx) once their retry time has come. Run from cron."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=50)

    def handle(self, *args, limit=50, **options):
        counts = services.retry_due(limit)
        self.stdout.write(f"retried {counts['done'] + counts['failed']}: {counts['done']} described, {counts['failed']} failed")
