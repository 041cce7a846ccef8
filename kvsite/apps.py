from django.apps import AppConfig


class KvsiteConfig(AppConfig):
    name = "kvsite"
    verbose_name = "kvsite access"

    def ready(self) -> None:
        from kvsite import schema  # noqa: F401  (registers the OpenAPI auth extensions)
