"""Product-aware grouping (the regroup stage's library): K-Means of each product's audience for every candidate K, then K chosen
per product by the silhouette.

Three engines (``[grouping].engine``), all running the same algorithm: per product and K, k-means++
initial centres from ``kmeanspp_seeds`` on the product's points sorted by user id (seed
``product_seed``), then Lloyd iterations (nearest centre, lowest index on ties; centre = mean of
its points; an empty cluster keeps its centre) for ``max_iter`` iterations or until an exact fixed
point, then each user's nearest final centre. On the same seeds they give the same groups, up to
floating-point near-ties (MLlib sums a cluster's points in partition order, numpy in row order),
which the tests' worlds do not have.

``grouped``: every product in ONE Spark job for ALL candidate K (repartition by product, sort by
user, ``mapInArrow``). An executor streams whole products in blocks of about ``_BLOCK_ROWS`` rows
and runs the Lloyd iterations of every product of a block at once (``lloyd_many``: products of
similar size padded into one array, distances ranked with one batched matmul, near ties recomputed
with the exact per-product expression; no Python loop over points or products per iteration), and
scores each K in the same pass. The numbers are those of a per-product fit bit for bit (tests
compare with a plain per-product loop). Linear in products; a product's audience must fit one
task's memory.

``mllib``: Spark MLlib K-Means, distributed over users, batched so the number of fits does not
grow with the number of products. Each product's embeddings get three extra coordinates, its cell
on a 3-D grid whose spacing exceeds three times the largest product diameter, and its own block of
K initial centres; one ``mllib`` ``KMeans`` run over all products with that initial model then runs
exactly the per-product Lloyd iterations: a point is always closer to its own product's centres
(distance <= diameter) than to any other product's (>= spacing - diameter > diameter), so no
assignment crosses products. With epsilon ~ 0 both the batched and a per-product fit run exactly
``max_iter`` iterations (or stop at an exact fixed point), so they end in the same state. The
vectors are built in the JVM from the DataFrame and cached once for all K (one fit per K). Every
point scans all K x P centres, so one fit costs O(P^2) at a fixed audience size:
``products_per_fit`` caps the products per fit (ceil(P / products_per_fit) fits per K). The final
assignment and the silhouette are two vectorised passes over the users (``mapInArrow``), from
per-cluster sums, without gathering a product on one executor (only the k-means++ seeding, which is
sequential per product, does).

``auto`` (default): one count of each product's audience, then products with at least
``mllib_min_users`` users go to ``mllib`` and the others to ``grouped``; each product gets the
groups and scores that the engine it goes to gives it (which are the other engine's as well).

(``pyspark.ml.clustering.KMeans`` does not expose an initial model in Python; the RDD-based
``mllib`` K-Means of the same library does, and that is what makes the batching exact.)

Per-product K is chosen from candidates by the silhouette with squared Euclidean distance, the
definition of MLlib's ``ClusteringEvaluator`` (tests check the two agree), among the K whose
smallest group has at least ``min_group_size`` users; if none qualifies the product gets one group.

Modules: ``kmeans`` (the numpy kernels), ``engine_grouped``, ``engine_mllib``, ``frames`` (what both
engines share), ``fit`` (engine ``auto`` and the choice of K), ``profiles`` (group rows: centroid,
profile, description), ``ctr`` (group CTR and preference pairs), ``themes`` (PAAG's visual themes).
"""

from osmf.grouping.engine_grouped import grouped_kmeans
from osmf.grouping.engine_mllib import batched_kmeans
from osmf.grouping.fit import audience_sizes, choose_k, fit_candidates, predicted_gain
from osmf.grouping.frames import FitResult, release
from osmf.grouping.kmeans import kmeanspp_seeds, product_seed, silhouette_sqeuclidean

__all__ = ["FitResult", "audience_sizes", "batched_kmeans", "choose_k", "fit_candidates", "predicted_gain", "grouped_kmeans",
           "kmeanspp_seeds", "product_seed", "release", "silhouette_sqeuclidean"]
