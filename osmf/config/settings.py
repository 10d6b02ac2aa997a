"""The one module that owns settings.

Precedence (lowest to highest): built-in defaults < TOML file < environment variables.

* The TOML file is ``$OSMF_CONFIG`` if set, else ``$OSMF_HOME/osmf.toml`` if it exists. Its keys
  live under an ``[osmf]`` table and use the field names below.
* Every field can be set from the environment as ``OSMF_<FIELD>`` (upper case), e.g.
  ``OSMF_LAKE_BACKEND=delta-spark``, ``OSMF_SPARK_MASTER=spark://host:7077``.

All local state lives under ``home`` (default ``./.osmf``, env ``OSMF_HOME``), in the layout of
the README's "Local state layout" (a contract). Nothing is written outside it by default.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

BACKENDS = ("delta-rs", "delta-spark")
LANDING_MARKER = "_SUCCESS"  # left in a landing day's folder by its writer once every file is complete
CONTRACT_VERSION = 1  # the landing contract this osmf reads (docs/landing.md; osmf.ingest.landing)


class SettingsError(ValueError):
    """A setting is wrong; the message names the key and the source it came from."""


@dataclass(frozen=True)
class GroupingConfig:
    """The ``[grouping]`` table of the settings file; env ``OSMF_GROUPING_<KEY>``."""

    window_days: int = 28  # trailing window of impressions (audience, PAAG training, CTR)
    k_candidates: tuple = (2, 3, 4, 5, 6, 8)  # env: "2,3,4,5,6,8"
    min_group_size: int = 30  # smallest group a K may produce, else a smaller K wins
    # how K is chosen per product: "gain" (the smallest K whose predicted click gain over one group
    # reaches k_gain_share of the best candidate's) | "silhouette" (the highest silhouette)
    k_rule: str = "gain"
    k_gain_share: float = 0.95
    seed: int = 42
    max_iter: int = 20  # Lloyd iterations (batched and per-product fits run the same number)
    products_per_fit: int = 0  # cap on products per MLlib fit (0 = all: one fit per K)
    # "auto": products with >= mllib_min_users users with MLlib, the others grouped | "mllib" (MLlib
    # K-Means over users, one fit per K) | "grouped" (numpy Lloyd per product, one Spark job for all K)
    engine: str = "auto"
    mllib_min_users: int = 50000  # auto: audiences this large are fitted with MLlib (distributed over users)
    paag_epochs: int = 40
    paag_bottleneck: int = 2  # taste directions per product (0: the unconstrained MLP)
    paag_directions: str = "product"  # product (each product's own map of the attributes) | shared (one map, modulated)
    paag_product_text: str = "none"  # none (a product's taste is its category's) | hash | minilm (the title's words too)
    # PAAG trains on the driver: at most this many window events (a fixed sample by a hash of the
    # event id when the window holds more); 0 = every event
    paag_max_events: int = 2_000_000
    # visual themes PAAG finds in the historical creatives (its taste vocabulary); 0: as many as the
    # creatives' backgrounds form (the first local maximum of the silhouette, osmf.grouping.themes)
    paag_themes: int = 0
    prior_strength: float = 50.0  # Beta prior pseudo-impressions, centred on the product CTR
    pair_margin: float = 0.01  # smoothed CTR difference a preference pair must clear
    min_pair_impressions: int = 30  # both creatives of a pair need this many group impressions
    eval_holdout_fraction: float = 0.2  # users whose clicks never reach group CTR, pairs or models (A/B evaluation)


@dataclass(frozen=True)
class ModelsConfig:
    """The ``[models]`` table of the settings file; env ``OSMF_MODELS_<KEY>``."""

    size: str = "default"  # "default" | "tiny" (the configs' tiny() constructors: tests, quick runs)
    gmllm_epochs: int = 0  # 0 = the config's default
    dpo_epochs: int = 0  # 0 = the config's default
    gmllm_max_steps: int = -1  # cap on optimizer steps: -1 = the config's default (1500), 0 = no cap
    dpo_max_steps: int = -1  # cap on optimizer steps: -1 = the config's default (600), 0 = no cap
    dpo_beta: float = 0.1
    dpo_group_weighting: str = "equal"  # equal | pairs | sqrt (see osmf_models.group_dpo.loss)
    dpo_pair_source: str = "target"  # target (the group's G-MLLM target vs the GRM's worst) | observed | grm | both
    sft_target: str = "theme"  # the G-MLLM's target per group: theme (a creative of the group's top PAAG theme) | observed
    best_of_n: int = 1  # candidate prompts per group (greedy + sampled), best by the GRM (1: the greedy prompt)
    temperature: float = 1.0
    renderer: str = "retrieval"  # retrieval (from the lake's historical creatives) | diffusers
    text_encoder: str = "minilm"  # retrieval's prompt matching: minilm (the `text` extra) | hash
    train_queue: str = "default"  # Airflow queue of the training/generation tasks (e.g. a GPU worker's)


@dataclass(frozen=True)
class AirflowConfig:
    """The ``[airflow]`` table of the settings file; env ``OSMF_AIRFLOW_<KEY>``. Read while DAG
    files parse (a TOML read, no I/O beyond it)."""

    landing_timeout_minutes: int = 720  # how long a nightly ingest waits for the landing's _SUCCESS marker
    landing_poke_seconds: int = 60  # how often the (deferred) landing sensor looks for it
    ingest_max_active_runs: int = 8  # osmf_ingest runs at once (waiting sensors); its ingest task runs one at a time


@dataclass(frozen=True)
class LandingConfig:
    """The ``[landing]`` table: what ``osmf landing check`` (and the ingest task, which runs the same
    checks first) tolerates; env ``OSMF_LANDING_<KEY>``."""

    # a day whose lines are malformed (quarantined at ingest) in a larger share than this is refused:
    # a changed format, not a few bad lines
    max_bad_line_share: float = 0.05
    # an id that is not in its dimension but is referenced by this many lines of a day or more is a
    # missing dimension row (the drop is refused); rarer ones are corrupt lines, quarantined at ingest
    unknown_id_min_lines: int = 5
    max_problems_per_check: int = 20  # problems of one kind printed in full (the rest are counted)


@dataclass(frozen=True)
class StackConfig:
    """The ``[stack]`` table: where ``osmf stack up`` puts each service (all on ``host``);
    env ``OSMF_STACK_<KEY>``. docker-compose.yml uses the same ports."""

    host: str = "127.0.0.1"
    postgres_port: int = 5432
    mlflow_port: int = 5000
    airflow_port: int = 8080
    airflow_log_port: int = 8793  # the scheduler's task-log server
    triggerer_log_port: int = 8794
    spark_master_port: int = 7077
    spark_master_ui_port: int = 8081
    spark_worker_ui_port: int = 8082
    spark_worker_cores: int = 2
    spark_worker_memory: str = "4g"
    start_timeout_seconds: int = 180  # how long `up` waits for one service to answer
    postgres_bin: str = ""  # the PostgreSQL server's bin folder (empty: the newest /usr/lib/postgresql/*/bin)


REPO_ROOT = Path(__file__).resolve().parents[2]  # where expectations/ and sql/ ship beside the package


@dataclass(frozen=True)
class Settings:
    """The one configuration object: the ``[osmf]`` fields, the sections (``grouping``, ``models``,
    ``airflow``, ``stack``) and every path of the local state layout. Built once at the app layer
    (:func:`load_settings`) and passed down; nothing below reads the environment or spells a path."""

    home: Path = Path(".osmf")
    lake_backend: str = "delta-rs"
    spark_master: str = "local[2]"
    spark_driver_memory: str = "2g"
    spark_shuffle_partitions: int = 4
    spark_driver_host: str = "127.0.0.1"  # the address executors use to reach the driver (a cluster: this host's name)
    spark_driver_bind_address: str = "127.0.0.1"  # where the driver listens (a cluster in containers: 0.0.0.0)
    spark_cores_max: int = 0  # cores one application may take on a cluster (0 = the cluster's default: all)
    mlflow_tracking_uri: str = ""  # empty: sqlite:///$home/mlflow.db
    # what the image URIs of the tables resolve against (empty: home). A host that reads images
    # (a serving host, a GPU worker) mounts home's landing/assets and generated/ and points this there
    asset_root_dir: str = ""
    run_id: str = ""  # empty: derived per job run (see osmf.config.runinfo)
    log_level: str = "INFO"
    expectations_dir: Path = REPO_ROOT / "expectations"  # the Great Expectations suites (reviewed JSON)
    sql_dir: Path = REPO_ROOT / "sql"  # the analyst queries
    quality_spark_min_rows: int = 2_000_000  # partitions this large are validated in Spark, smaller in pandas
    # the sections (their own TOML tables and OSMF_<SECTION>_<KEY> variables)
    grouping: GroupingConfig = field(default_factory=GroupingConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    airflow: AirflowConfig = field(default_factory=AirflowConfig)
    stack: StackConfig = field(default_factory=StackConfig)
    landing: LandingConfig = field(default_factory=LandingConfig)

    # --- the local state layout (a contract: tools outside the code rely on it) --------------------
    @property
    def lake_root(self) -> Path:
        return self.home / "lake"

    @property
    def landing_root(self) -> Path:
        return self.home / "landing"

    def landing_day(self, run_date: str) -> Path:
        """One day's landing folder: ``part-*.jsonl`` files, then ``_SUCCESS`` when complete."""
        return self.landing_root / "events" / f"event_date={run_date}"

    def landing_marker(self, run_date: str) -> Path:
        return self.landing_day(run_date) / LANDING_MARKER

    @property
    def landing_contract(self) -> Path:
        """``landing/contract.json``: the contract version the producer wrote the drop in."""
        return self.landing_root / "contract.json"

    @property
    def landing_dimensions(self) -> Path:
        """``users``, ``products``, ``creatives`` (Parquet), then ``_SUCCESS`` when complete."""
        return self.landing_root / "dimensions"

    def landing_asset(self, uri: str) -> Path:
        """The file behind an image or mask URI of a landing dimension file (relative to the landing)."""
        return self.landing_root / uri

    def lake_uri(self, landing_uri: str) -> str:
        """A landing URI as the lake's tables hold it (relative to :attr:`asset_root`)."""
        return f"landing/{landing_uri}"

    @property
    def truth_root(self) -> Path:
        """The world's hidden truth: the generator writes it, the evaluation reads it, no stage does."""
        return self.home / "truth"

    @property
    def world_manifest(self) -> Path:
        """The world's manifest (its config and dates): the generator's and the evaluation's alone."""
        return self.truth_root / "manifest.json"

    @property
    def asset_root(self) -> Path:
        """What the image and mask URIs of the tables are relative to ([osmf].asset_root_dir, else home)."""
        return Path(self.asset_root_dir).expanduser() if self.asset_root_dir else self.home

    def asset(self, uri: str) -> Path:
        """The file behind an image or mask URI of a table."""
        return self.asset_root / uri

    @property
    def quality_root(self) -> Path:
        return self.home / "quality"

    def quality_report(self, table: str, run_date: str | None) -> Path:
        """The last validation report of a partition (``whole`` for a dimension)."""
        return self.quality_root / table / f"{run_date or 'whole'}.json"

    @property
    def mlflow_db(self) -> Path:
        return self.home / "mlflow.db"

    @property
    def mlflow_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.mlflow_db.resolve()}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def models_root(self) -> Path:
        return self.home / "models"

    def paag_dir(self, run_date: str) -> Path:
        """The PAAG checkpoint of a run date (and its metrics.json, with the held-out rule it used)."""
        return self.models_root / "paag" / f"run_date={run_date}"

    def generated_uri(self, run_date: str, name: str = "") -> str:
        """The URI (relative to :attr:`asset_root`) of a generated creative of a run date, or its folder."""
        return f"generated/run_date={run_date}" + (f"/{name}" if name else "")

    @property
    def reports_root(self) -> Path:
        return self.home / "reports"

    @property
    def stack_root(self) -> Path:
        """``osmf stack up``: secrets, env.sh, pids, logs and each service's data."""
        return self.home / "stack"

    @property
    def tmp_root(self) -> Path:
        return self.home / "tmp"

    @property
    def spark_tmp(self) -> Path:
        return self.home / "spark-tmp"

    @property
    def spark_warehouse(self) -> Path:
        return self.home / "spark-warehouse"


SECTIONS = {"grouping": GroupingConfig, "models": ModelsConfig, "airflow": AirflowConfig, "stack": StackConfig,
            "landing": LandingConfig}


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name not in SECTIONS}


def _coerce(name: str, value, source: str):
    f = _FIELDS[name]
    try:
        if f.type in ("Path", Path):
            return Path(str(value)).expanduser()
        if f.type in ("int", int):
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if f.type in ("str", str):
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        raise SettingsError(
            f"setting '{name}' from {source} has an invalid value {value!r} (expected {f.type})"
        ) from None
    return value


def read_toml(path: Path, error=ValueError, what: str = "config file") -> dict:
    """A TOML file as a dict; a missing file or invalid TOML raises ``error`` naming the file."""
    path = Path(path)
    if not path.exists():
        raise error(f"{what} {path} does not exist")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path} is not valid TOML: {exc}") from None


def config_section(section: str, env: dict | None = None) -> tuple[dict, str]:
    """The ``[section]`` table of the settings file and the file's path: ``$OSMF_CONFIG`` if set,
    else ``$OSMF_HOME/osmf.toml`` if it exists, else ``({}, "")``. A missing ``$OSMF_CONFIG`` or
    invalid TOML is a ``SettingsError`` naming the file."""
    env = dict(os.environ if env is None else env)
    home = Path(env.get("OSMF_HOME", ".osmf")).expanduser()
    cfg_file = env.get("OSMF_CONFIG") or (str(home / "osmf.toml") if (home / "osmf.toml").exists() else "")
    if not cfg_file:
        return {}, ""
    data = read_toml(Path(cfg_file), SettingsError, "the settings file (OSMF_CONFIG)")
    return dict(data.get(section, {})), cfg_file


def load_settings(env: dict | None = None) -> Settings:
    """Build settings from defaults, the optional TOML file and ``OSMF_*`` environment variables."""
    env = dict(os.environ if env is None else env)
    values: dict = {}
    section, path = config_section("osmf", env)
    for key, value in section.items():
        if key not in _FIELDS:
            raise SettingsError(f"unknown setting '{key}' in [osmf] of {path}; known: {', '.join(sorted(_FIELDS))}")
        values[key] = _coerce(key, value, path)
    for name in _FIELDS:
        var = f"OSMF_{name.upper()}"
        if var in env and env[var] != "":
            values[name] = _coerce(name, env[var], f"environment variable {var}")
    values.update({name: _load_table(cls, name, env) for name, cls in SECTIONS.items()})
    settings = Settings(**values)
    if settings.lake_backend not in BACKENDS:
        raise SettingsError(
            f"setting 'lake_backend' is {settings.lake_backend!r}; choose one of {', '.join(BACKENDS)}"
        )
    return settings


_CHOICES = {("models", "size"): ("default", "tiny"), ("models", "renderer"): ("retrieval", "diffusers"),
            ("models", "text_encoder"): ("minilm", "hash"),
            ("models", "dpo_group_weighting"): ("equal", "pairs", "sqrt"),
            ("models", "dpo_pair_source"): ("observed", "grm", "both", "target"),
            ("models", "sft_target"): ("theme", "observed"),
            ("grouping", "engine"): ("auto", "mllib", "grouped"), ("grouping", "k_rule"): ("gain", "silhouette"),
            ("grouping", "paag_directions"): ("product", "shared"),
            ("grouping", "paag_product_text"): ("none", "hash", "minilm")}


def _load_table(cls, section: str, env: dict | None):
    """A frozen dataclass from the ``[section]`` table of the settings file, then env
    ``OSMF_<SECTION>_<KEY>``. A bad key or value is an error naming it and where it came from."""
    env = dict(os.environ if env is None else env)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict = {}
    table, path = config_section(section, env)
    raw: dict = {(k, path): v for k, v in table.items()}
    for name in fields:
        var = f"OSMF_{section.upper()}_{name.upper()}"
        if env.get(var):
            raw[(name, f"environment variable {var}")] = env[var]
    for (key, source), value in raw.items():
        if key not in fields:
            raise SettingsError(f"unknown setting '{key}' in [{section}] of {source}; known: {', '.join(sorted(fields))}")
        default = getattr(cls, key)
        try:
            if isinstance(default, tuple):
                items = value.split(",") if isinstance(value, str) else list(value)
                values[key] = tuple(sorted({int(v) for v in items}))
                if not values[key] or min(values[key]) < 2:
                    raise ValueError
            elif isinstance(default, bool) or not isinstance(value, (int, float, str)):
                raise ValueError
            else:
                values[key] = type(default)(value)
        except (TypeError, ValueError):
            raise SettingsError(f"setting '{key}' from {source} has an invalid value {value!r}") from None
        choices = _CHOICES.get((section, key))
        if choices and values[key] not in choices:
            raise SettingsError(f"setting '{key}' in [{section}] from {source} is {values[key]!r}; "
                                f"choose one of {', '.join(choices)}")
    return cls(**values)


def offline_env() -> dict[str, str]:
    """Variables every process of ours sets: no model hub, Spark bound to loopback."""
    import sys

    return {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "GX_ANALYTICS_ENABLED": "false",  # Great Expectations posts usage statistics otherwise
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


def apply_offline_env() -> None:
    for key, value in offline_env().items():
        if key == "SPARK_LOCAL_IP" and not os.environ.get("OSMF_SPARK_MASTER", "local").startswith("local"):
            continue  # on a cluster the driver must be reachable from the executors
        os.environ.setdefault(key, value)
