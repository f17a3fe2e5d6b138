"""The web process tunes the garbage collector for request-sized bursts of allocation."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wsgi_app_freezes_startup_objects_and_collects_less_often(tmp_path):
    # A fresh interpreter: the test process's own collector is left alone.
    probe = (
        "import gc; import config.wsgi; "
        "print(gc.get_threshold()[0], gc.get_freeze_count() > 10_000, "
        "callable(config.wsgi.application))"
    )
    env = {"DEBUG": "true", "SECRET_KEY": "x", "MILEPOST_VAR_DIR": str(tmp_path), "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["50000", "True", "True"]
