"""Packaging for aiotutorial: the Aiopyramid tutorial's application on Python 3.11+."""

from setuptools import find_namespace_packages, setup

requires = [
    "pyramid>=2.0,<3",
    "pyramid_jinja2>=2.10,<3",
    "gunicorn>=22,<28",
    # 3.11: WebSocketResponse.send_frame, which the websocket writer uses.
    "aiohttp>=3.11,<4",
    "greenlet>=3.0,<4",
    "aiopg>=1.4,<2",
    # The first releases with wheels for Python 3.11 (nothing to compile).
    "psycopg2-binary>=2.9.5,<3",
    "SQLAlchemy>=1.4.46,<1.5",
    "alembic>=1.13,<1.20",
    "argon2-cffi>=23.1,<26",
    "PasteDeploy>=3.0,<4",
    # Uploads: which files are images, re-encoded without EXIF, and their thumbnails.
    "Pillow>=10.0,<14",
    # JSON answers and frames, about ten times faster than the standard library's encoder.
    "orjson>=3.9,<4",
]

# The Redis bus (realtime.bus_url = redis://..., README "Scaling"): redis-py's asyncio client,
# below 8 (redis/redis-py#4091, see bench_require).
redis_require = [
    "redis>=5,<8",
]

tests_require = [
    *redis_require,
    "pytest>=8,<10",
    "ruff>=0.6,<1",
    "playwright>=1.45,<2",
    "mypy>=2.4,<3",
    "coverage>=7.10,<8",
]

bench_require = [
    "matplotlib>=3.8,<4",
    # Only for scenario 3's second ceiling (bench/raw_server.py history --driver asyncpg).
    "asyncpg>=0.29,<1",
    # The servers people would pick instead in scenarios 4 and 5: Tornado
    # (bench/tornado_server.py), and Django Channels over Redis (bench/channels_server.py) on
    # uvicorn's websockets-sansio protocol (0.35), with Debian's redis-server (make bench
    # installs it). redis-py 8.1 makes every Channels consumer die on "Timeout reading from"
    # Redis (redis/redis-py#4091): below 8.
    "tornado>=6.4,<7",
    "channels>=4.1,<5",
    "channels_redis>=4.2,<5",
    "redis>=5,<8",
    "django>=4.2,<6",
    "uvicorn>=0.35,<1",
    "websockets>=13,<18",
]

# PostgreSQL in a wheel, for machines without one: aiotutorial.pgcluster uses its programs when
# no others are found, and `make db` installs this extra there (pip install -e '.[pgserver]').
pgserver_require = [
    "pgserver>=0.1.4,<0.2",
]

setup(
    name="aiotutorial",
    version="0.1.0",
    description="The Aiopyramid tutorial application on an asyncio Pyramid stack, Python 3.11+",
    python_requires=">=3.11",
    # Data directories (static/, templates/) are packages to setuptools: found as namespace
    # packages and given their files here, rather than reached into from their parent, which
    # makes setuptools warn "Package would be ignored" for each, 80 lines on the first install.
    packages=find_namespace_packages(
        include=["aiotutorial", "aiotutorial.*"], exclude=["*.__pycache__"]
    ),
    package_data={
        "aiotutorial": ["py.typed"],
        "aiotutorial.aio": ["py.typed"],
        "aiotutorial.realtime": ["py.typed"],
        "aiotutorial.game.wordlists": ["*.txt", "LICENSE"],
        "aiotutorial.static": ["*"],
        "aiotutorial.static.lib": ["*.js"],
        "aiotutorial.static.chat": ["*.js"],
        "aiotutorial.static.game": ["*.js"],
        "aiotutorial.static.pages": ["*.js"],
        "aiotutorial.templates": ["*.jinja2"],
    },
    zip_safe=False,
    install_requires=requires,
    extras_require={
        "testing": tests_require,
        "bench": bench_require,
        "pgserver": pgserver_require,
        "redis": redis_require,
        "uvloop": ["uvloop>=0.19"],
    },
    entry_points={
        "paste.app_factory": ["main = aiotutorial:main"],
    },
)
