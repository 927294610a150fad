from django.core.management.base import BaseCommand, CommandError

from wagtail_alttext import services
from wagtail_alttext.client import ServiceError


class Command(BaseCommand):
    help = ("Describe images with an empty description, and images the service has not checked yet, through "
            "the batch endpoint. Human alt is kept (poor alt gets a proposal) unless --overwrite-human. "
            "Resumable: images already checked are not sent again.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Ask the service, print, store nothing.")
        parser.add_argument("--limit", type=int, default=None, help="At most this many images.")
        parser.add_argument("--overwrite-human", action="store_true",
                            help="Replace human alt that fails the quality rules with the service's proposal.")
        parser.add_argument("--batch-size", type=int, default=8)

    def handle(self, *args, dry_run=False, limit=None, overwrite_human=False, batch_size=8, **options):
        prefix = "would be " if dry_run else ""

        def report(image, outcome, text):
            self.stdout.write(f"{image.pk}\t{prefix}{outcome}\t{text}")

        try:
            counts = services.backfill(limit=limit, dry_run=dry_run, overwrite_human=overwrite_human,
                                       batch_size=batch_size, report=report)
        except ServiceError as err:
            raise CommandError(f"{err} Run the command again to resume.") from err
        summary = "filled {filled}, proposed {proposed}, kept {kept}, failed {failed}".format(**counts)
        tail = "; every image checked." if counts["finished"] else "; run again to continue."
        self.stdout.write(self.style.SUCCESS(("Dry run: " if dry_run else "") + summary + tail))
