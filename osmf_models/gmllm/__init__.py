from osmf_models.gmllm.config import GMLLMConfig
from osmf_models.gmllm.model import GMLLM

__all__ = ["GMLLM", "GMLLMConfig"]
