"""Screenshots of the workspace pages at desktop and phone widths, for a person to look at.

    .venv/bin/python bench/screenshots.py [--out var/screenshots]

Builds a throwaway SQLite database with the demo data, serves it with gunicorn on a free
loopback port, logs in as the demo admin in Debian's chromium and saves one PNG per page and
width. Nothing is asserted: this is for eyes; the tests assert behaviour.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Whether the page is wider than the viewport (a phone user would have to scroll sideways).
OVERFLOW_JS = """() => {
  const width = window.innerWidth, scrolled = document.documentElement.scrollWidth;
  return scrolled > width ? ["page scrolls sideways: " + scrolled + "px"] : [];
}"""
WIDTHS = {"desktop": (1366, 900), "phone": (390, 844)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "var" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="milepost-shots-"))
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "screenshots-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "EMAIL_URL": "memory://",
    }
    env.pop("REDIS_URL", None)
    python = sys.executable
    manage = [python, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    subprocess.run([*manage, "seed_demo"], env=env, check=True, cwd=ROOT)
    subprocess.run([*manage, "collectstatic", "--noinput", "-v0"], env=env, check=True, cwd=ROOT)
    port = free_port()
    server = subprocess.Popen(
        [python, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"],
        env=env,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        shoot(base, out)
    finally:
        server.terminate()
        server.wait(10)


def shoot(base: str, out: Path):
    from playwright.sync_api import sync_playwright

    pages = {
        "dashboard": "/t/demo/",
        "plan": "/t/demo/plans/PLAN-001/",
        "milestone": "/t/demo/m/MLS-003/",
        "timeline": "/t/demo/timeline/",
        "members": "/t/demo/members/",
        "new-milestone": "/t/demo/milestones/new/",
        "milestone-editing-details": "/t/demo/m/MLS-003/section/meta/?edit=1",
        "milestone-adding-deliverable": "/t/demo/m/MLS-003/deliverable/add/",
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        for label, (width, height) in WIDTHS.items():
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(f"{base}/accounts/login/")
            page.fill("#id_username", "alice")
            page.fill("#id_password", "milepost-demo")
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/t/**")
            for name, path in pages.items():
                page.goto(base + path)
                target = out / f"{name}-{label}.png"
                page.screenshot(path=str(target), full_page=True)
                print(target)
                for culprit in page.evaluate(OVERFLOW_JS):
                    print(f"  wider than the {width}px viewport: {culprit}")
            page.close()
        browser.close()


if __name__ == "__main__":
    main()
