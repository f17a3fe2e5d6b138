import os
import socket

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("milepost")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="milepost.ping")
def ping() -> dict:
    """Answer from the worker that ran it: used to check the broker and a worker end to end."""
    return {"pong": True, "worker": socket.gethostname(), "pid": os.getpid()}
