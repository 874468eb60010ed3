from django.apps import AppConfig


class ResizeProxyConfig(AppConfig):
    """Labelled resize_proxy: the package's last name, "django", would clash with Django's own apps."""

    name = "resize_proxy_client.django"
    label = "resize_proxy"
