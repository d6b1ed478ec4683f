"""NetBox's WSGI application wrapped in WhiteNoise, so gunicorn serves /static/ without nginx."""

from __future__ import annotations

# This directory goes on gunicorn's --pythonpath; `netbox` below must resolve to the installed
# NetBox package, which it does because this directory holds no `netbox` module of its own.
from django.conf import settings
from django.db import connections
from netbox.wsgi import application as netbox_application
from whitenoise import WhiteNoise

# netbox.wsgi has already configured Django, so settings are readable here. STATIC_ROOT is
# <NETBOX_ROOT>/static, filled once by `netbox collectstatic` (netboxctl.py up).
application = WhiteNoise(
    netbox_application,
    root=settings.STATIC_ROOT,
    prefix=settings.STATIC_URL,
    # The files only change on a NetBox upgrade, which restarts gunicorn anyway.
    autorefresh=False,
    max_age=3600,
)

# gunicorn --preload forks workers from this process: no database socket may be shared.
connections.close_all()
