import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# A page of the milestone API allocates tens of thousands of small objects. At Python's default
# threshold (700 allocations) the cyclic collector ran dozens of times per request, each full
# pass walking every long-lived object of the app; requests were 15–25 % slower for it
# (bench/api_list.py). The app's import-time objects are frozen out of collection, and a
# collection waits for 50,000 allocations; request garbage is nearly all freed by reference
# counting anyway.
gc.freeze()
gc.set_threshold(50_000, 20, 100)
