"""The one list of lake tables: name, Arrow schema, partition column, key and description.

These are the contracts between stages. Tables live at
``$OSMF_HOME/lake/<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class TableSpec:
    name: str
    schema: pa.Schema
    partition_by: str | None
    key: tuple[str, ...]
    description: str
    made_by: str  # the command that creates it, for "missing table" messages


TABLES: dict[str, TableSpec] = {}


def _t(name, fields, partition_by, key, description, made_by):
    TABLES[name] = TableSpec(name, pa.schema(fields), partition_by, tuple(key), description, made_by)


_t("impressions", [
    ("event_id", pa.string()), ("event_ts", TS), ("event_date", pa.date32()),
    ("user_id", pa.string()), ("product_id", pa.string()), ("creative_id", pa.string()),
    ("clicked", pa.int32()), ("source_file", pa.string()), ("source_line", pa.int64()),
], "event_date", ["event_id"],
   "Impression/click events, deduplicated on event_id within the date (new ones appended).", "osmf ingest --run-date D")
_t("quarantine", [
    ("event_date", pa.date32()), ("source_file", pa.string()), ("line_number", pa.int64()),
    ("raw_line", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
], "event_date", ["source_file", "line_number"],
   "Landing lines that could not be accepted, with the raw line, source file and reason.",
   "osmf ingest --run-date D")
_t("ingest_audit", [
    ("event_date", pa.date32()), ("source_file", pa.string()), ("lines_read", pa.int64()),
    ("accepted", pa.int64()), ("duplicates", pa.int64()), ("quarantined", pa.int64()),
], "event_date", ["source_file"],
   "Per landing file: lines read = accepted + duplicates skipped + quarantined.", "osmf ingest --run-date D")
_t("users", [
    ("user_id", pa.string()), ("age", pa.int32()), ("gender", pa.string()), ("city_tier", pa.int32()),
    ("income_level", pa.int32()), ("activity", pa.string()), ("device", pa.string()),
    ("tenure_days", pa.int32()),
], None, ["user_id"], "User attributes (demographic and behavioural).", "osmf ingest --run-date D")
_t("products", [
    ("product_id", pa.string()), ("title", pa.string()), ("category", pa.string()),
    ("price", pa.float64()), ("image_uri", pa.string()), ("mask_uri", pa.string()),
], None, ["product_id"],
   "Products with image and foreground mask (255 = product); URIs are relative to OSMF_HOME.",
   "osmf ingest --run-date D")
_t("creatives", [
    ("creative_id", pa.string()), ("product_id", pa.string()),
    ("background_prompt", pa.string()), ("image_uri", pa.string()), ("source", pa.string()),
], None, ["creative_id"],
   "Creatives: a product image on a background, and the background prompt that produced it (what an "
   "ad platform has: no latent style label).",
   "osmf ingest --run-date D")


def spec(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known tables: {', '.join(sorted(TABLES))}") from None


# ---- product-aware grouping ---------------------------------------------------------------------
_t("user_product_embeddings", [
    ("run_date", pa.date32()), ("product_id", pa.string()), ("user_id", pa.string()),
    ("embedding", pa.list_(pa.float64())),
], "run_date", ["product_id", "user_id"],
   "PAAG product-aware user embedding per (product, audience user): centred log-odds over the "
   "visual themes PAAG found in the historical creatives' pixels.",
   "osmf regroup --run-date D")
_t("creative_themes", [
    ("run_date", pa.date32()), ("creative_id", pa.string()), ("theme", pa.string()), ("theme_index", pa.int32()),
], "run_date", ["creative_id"],
   "The visual theme PAAG put each historical creative in (the pipeline's own clusters of background "
   "pixels and prompt words); theme_index is the theme's coordinate in user_product_embeddings.embedding "
   "and groups.centroid.",
   "osmf regroup --run-date D")
_t("user_groups", [
    ("run_date", pa.date32()), ("product_id", pa.string()), ("group_id", pa.int32()), ("user_id", pa.string()),
], "run_date", ["product_id", "user_id"],
   "Which group of each product's audience a user is in (exactly one).", "osmf regroup --run-date D")
_t("groups", [
    ("run_date", pa.date32()), ("product_id", pa.string()), ("group_id", pa.int32()), ("k", pa.int32()),
    ("size", pa.int64()), ("silhouette", pa.float64()), ("centroid", pa.list_(pa.float64())),
    ("features", pa.list_(pa.float64())), ("description", pa.string()),
], "run_date", ["product_id", "group_id"],
   "Per product group: K, size, centroid, group feature vector and a readable description.",
   "osmf regroup --run-date D")
_t("group_creative_ctr", [
    ("run_date", pa.date32()), ("product_id", pa.string()), ("group_id", pa.int32()), ("creative_id", pa.string()),
    ("impressions", pa.int64()), ("clicks", pa.int64()), ("ctr", pa.float64()), ("smoothed_ctr", pa.float64()),
    ("ctr_lo", pa.float64()), ("ctr_hi", pa.float64()),
], "run_date", ["product_id", "group_id", "creative_id"],
   "Group x creative CTR over the trailing window, Beta-smoothed toward the product CTR, 95% interval.",
   "osmf regroup --run-date D")
_t("group_preference_pairs", [
    ("run_date", pa.date32()), ("product_id", pa.string()), ("group_id", pa.int32()),
    ("chosen_creative_id", pa.string()), ("rejected_creative_id", pa.string()),
    ("chosen_smoothed_ctr", pa.float64()), ("rejected_smoothed_ctr", pa.float64()), ("margin", pa.float64()),
], "run_date", ["product_id", "group_id", "chosen_creative_id", "rejected_creative_id"],
   "Per group: chosen vs rejected creative where the smoothed CTR difference clears the margin.",
   "osmf regroup --run-date D")

# ---- generation ---------------------------------------------------------------------------------
_t("generated_creatives", [
    ("run_date", pa.date32()), ("product_id", pa.string()), ("group_id", pa.int32()), ("creative_id", pa.string()),
    ("prompt", pa.string()), ("background", pa.string()), ("image_uri", pa.string()), ("grm_score", pa.float64()),
    ("candidates", pa.int32()), ("renderer", pa.string()), ("gmllm_version", pa.string()), ("grm_version", pa.string()),
], "run_date", ["product_id", "group_id"],
   "One generated creative per (product, group): the best of N G-MLLM prompts by the GRM, rendered; "
   "image URIs are relative to OSMF_HOME.", "osmf generate --run-date D")
_t("serving_assignments", [
    ("run_date", pa.date32()), ("user_id", pa.string()), ("product_id", pa.string()), ("group_id", pa.int32()),
    ("assigned_by", pa.string()), ("creative_id", pa.string()), ("image_uri", pa.string()), ("prompt", pa.string()),
    ("gmllm_version", pa.string()), ("grm_version", pa.string()),
], "run_date", ["user_id", "product_id"],
   "What an ad server shows: for every user x product, the group (audience: from user_groups; attributes: "
   "the nearest centroid of the user's PAAG embedding; no_groups: the product had none) and its creative.",
   "osmf generate --run-date D")
