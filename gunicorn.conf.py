"""gunicorn settings for `gunicorn --paste development.ini` (which ignores [server:main]).

gunicorn reads this file from the working directory by default; flags such as --bind,
--workers or --worker-class on the command line override it.
"""

import os

worker_class = "aiotutorial.aio.gunicorn.AsyncGunicornWorker"
bind = os.environ.get("AIOTUTORIAL_BIND", "127.0.0.1:6543")
workers = int(os.environ.get("AIOTUTORIAL_WORKERS", "1"))
graceful_timeout = 30
# Forwarded headers are handled by the application (aio.trusted_proxies), not by gunicorn.
forwarded_allow_ips = ""
# gunicorn 27's runtime control socket lives at one fixed path per user: two servers on one
# machine (tests run several) would fight over it, and nothing here uses it.
control_socket_disable = True
