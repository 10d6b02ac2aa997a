"""Quality gates: the Great Expectations suites of ``expectations/`` run on one partition
(``suites``), with the referential-integrity expectation of this project (``gx_dimension``)."""
