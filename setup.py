"""Packaging for pyfi.

The alembic tree lives at the top-level ``migrations/`` folder of the repo and
is installed as the ``pyfi.migrations`` package, so ``pyfi db init`` finds it
from a wheel as well as from a checkout.
"""
from setuptools import find_packages, setup

PACKAGES = find_packages(include=["pyfi", "pyfi.*"]) + [
    "pyfi.migrations",
    "pyfi.migrations.versions",
]

setup(
    name="pyfi",
    version="0.1.0",
    description="A distributed network of Python functions, driven from a CLI",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=PACKAGES,
    package_dir={"pyfi.migrations": "migrations"},
    package_data={"pyfi.migrations": ["script.py.mako"]},
    include_package_data=True,
    install_requires=[
        "click>=8.1",
        "sqlalchemy>=2.0,<3",
        "psycopg2-binary>=2.9",
        "alembic>=1.12",
        "celery>=5.3",
        "redis>=4.5",
        "gitpython>=3.1",
        "prettytable>=3.0",
        "asciitree>=0.3",
        "packaging",  # kombu's redis transport imports it without declaring it
        "pyyaml>=6.0",
        "orjson>=3.8",  # the worker's hot path: database batches and pub/sub messages
        "cryptography>=42",  # Ed25519 signatures of what workers publish (pyfi.messaging.signing)
        "croniter>=2.0",  # timed sockets on a cron schedule (pyfi.scheduler.beat)
    ],
    extras_require={
        "test": ["pytest>=7", "pytest-timeout>=2.1"],
    },
    entry_points={"console_scripts": ["pyfi=pyfi.cli:main"]},
)
