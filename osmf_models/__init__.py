"""OSMF models (PAAG, GRM, G-MLLM, Group-DPO, renderer). Each model: a config dataclass with
``tiny()``, a model file, a pure loss function and a train entry point."""
