"""Admin screen "Alt text": every image with its description, badges, review flag and actions."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.images import get_image_model

from . import services
from .models import AltTextStatus


def image_permission_policy():
    try:
        from wagtail.permissions import policy_registry

        return policy_registry.get_by_type(get_image_model())
    except (ImportError, AttributeError):  # Wagtail < 7.1
        from wagtail.images.permissions import permission_policy

        return permission_policy


class AltTextIndexView(WagtailAdminTemplateMixin, TemplateView):
    template_name = "wagtail_alttext/index.html"
    page_title = "Alt text"
    header_icon = "image"

    def get_breadcrumbs_items(self):
        return self.breadcrumbs_items + [{"url": "", "label": self.get_page_title()}]

    def dispatch(self, request, *args, **kwargs):
        if not image_permission_policy().user_has_any_permission(request.user, ["change"]):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        policy = image_permission_policy()
        images = policy.instances_user_has_any_permission_for(self.request.user, ["change"]).order_by("-pk")
        only = self.request.GET.get("filter")
        if only == "review":
            images = images.filter(alttext_status__needs_review=True)
        page = Paginator(images.select_related("alttext_status"), 30).get_page(self.request.GET.get("p"))
        rows = []
        for image in page:
            status = AltTextStatus.objects.filter(image_id=image.pk).first()
            rows.append({"image": image, "status": status})
        context.update(rows=rows, page=page, filter=only, last_error=services.last_error(),
                       pending=AltTextStatus.objects.filter(pending_until__isnull=False).count())
        return context


def _image_for_change(request, image_id):
    image = get_object_or_404(get_image_model(), pk=image_id)
    if not image_permission_policy().user_has_permission_for_instance(request.user, "change", image):
        raise PermissionDenied
    return image


@require_POST
def approve(request, image_id):
    image = _image_for_change(request, image_id)
    services.approve(image, request.user)
    messages.success(request, f"Alt text of “{image.title}” approved.")
    return redirect("wagtail_alttext:index")


@require_POST
def regenerate(request, image_id):
    image = _image_for_change(request, image_id)
    if services.describe(image) is None:
        status = services.status_for(image)
        messages.error(request, f"The service failed: {status.error_message}")
    else:
        messages.success(request, f"Alt text of “{image.title}” checked again.")
    return redirect("wagtail_alttext:index")
