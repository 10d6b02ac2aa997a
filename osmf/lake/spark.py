"""One SparkSession per process, configured from settings; registers the ``osmf_delta`` source."""

from __future__ import annotations

from osmf.config.settings import Settings, apply_offline_env

_SESSION = None


# Spark's own log lines go to stdout at WARN and above: on stderr (Spark's default) every ordinary
# line showed at level error in Airflow's task logs
LOG4J2 = """rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_OUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
logger.nativeio.name = org.apache.hadoop.util.NativeCodeLoader
logger.nativeio.level = error
logger.sparkconf.name = org.apache.spark.SparkConf
logger.sparkconf.level = error
"""


def get_spark(settings: Settings, app_name: str = "osmf"):
    """The process's SparkSession (created on first use, named ``app_name``: a job passes its name and
    date). Local by default; ``spark_master`` can point at a cluster whose executors have the
    ``osmf`` package installed."""
    global _SESSION
    if _SESSION is not None and _SESSION._jsc is not None:
        return _SESSION
    apply_offline_env()
    from pyspark.sql import SparkSession

    tmp = settings.spark_tmp.resolve()
    tmp.mkdir(parents=True, exist_ok=True)
    log4j = tmp / "log4j2.properties"
    if not log4j.exists() or log4j.read_text() != LOG4J2:
        log4j.write_text(LOG4J2)
    b = (SparkSession.builder.master(settings.spark_master).appName(app_name)
         .config("spark.driver.extraJavaOptions", f"-Dlog4j.configurationFile=file:{log4j}")
         .config("spark.driver.memory", settings.spark_driver_memory)
         .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
         .config("spark.default.parallelism", str(settings.spark_shuffle_partitions))
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")
         .config("spark.driver.host", settings.spark_driver_host)
         .config("spark.driver.bindAddress", settings.spark_driver_bind_address)
         .config("spark.local.dir", str(tmp))
         .config("spark.sql.warehouse.dir", str(settings.spark_warehouse.resolve()))
         .config("spark.sql.execution.arrow.pyspark.enabled", "true")
         # the osmf_delta source prunes files by partition filters (DataSourceReader.pushFilters)
         .config("spark.sql.python.filterPushdown.enabled", "true")
         .config("spark.python.worker.reuse", "true"))
    if settings.spark_cores_max > 0:
        b = b.config("spark.cores.max", str(settings.spark_cores_max))
    if settings.lake_backend == "delta-spark":
        b = (b.config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
             .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"))
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    from osmf.lake.delta_source import DeltaRsDataSource

    spark.dataSource.register(DeltaRsDataSource)
    _SESSION = spark
    return spark


def stop_spark() -> None:
    global _SESSION
    if _SESSION is not None:
        _SESSION.stop()
        _SESSION = None

