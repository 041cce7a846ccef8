from django.apps import AppConfig


class KvsiteConfig(AppConfig):
    name = "kvsite"
    verbose_name = "kvsite access"
