"""What the stages read besides one table: the trailing window and the held-out rule (``audience``),
the pinned training data of a run date (``training``) and the products' images and masks
(``assets``)."""
