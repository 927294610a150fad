from django.urls import include, path, reverse
from wagtail import hooks
from wagtail.admin.menu import MenuItem

from . import views

app_name = "wagtail_alttext"
urlpatterns = [
    path("", views.AltTextIndexView.as_view(), name="index"),
    path("<int:image_id>/approve/", views.approve, name="approve"),
    path("<int:image_id>/regenerate/", views.regenerate, name="regenerate"),
]


@hooks.register("register_admin_urls")
def register_admin_urls():
    return [path("alttext/", include((urlpatterns, app_name), namespace=app_name))]


class AltTextMenuItem(MenuItem):
    def is_shown(self, request):
        return views.image_permission_policy().user_has_any_permission(request.user, ["change"])


@hooks.register("register_admin_menu_item")
def register_menu_item():
    return AltTextMenuItem("Alt text", reverse("wagtail_alttext:index"), name="alttext", icon_name="image", order=310)
