"""Spark on this machine alone, as the tests and the benchmark run it.

Two cores (``local[2]``), driver and workers bound to 127.0.0.1, no web UI,
Arrow on (``spark_scoring`` relies on it), and the workers on this Python.
"""

from __future__ import annotations

import sys
from typing import Any

ENVIRONMENT = {
    "SPARK_LOCAL_IP": "127.0.0.1",
    "PYSPARK_PYTHON": sys.executable,
    "PYSPARK_DRIVER_PYTHON": sys.executable,
}


def local_session(app_name: str) -> Any:
    """Start (or get) the SparkSession; set ``ENVIRONMENT`` in os.environ first."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName(app_name)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session
