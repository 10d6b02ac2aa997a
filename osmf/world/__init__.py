"""The synthetic GAIP-style world: config, generator, simulator."""

from osmf.world.config import WorldConfig, WorldConfigError
from osmf.world.generate import generate_world, read_manifest
from osmf.world.simulator import Simulator

__all__ = ["WorldConfig", "WorldConfigError", "generate_world", "read_manifest", "Simulator"]
