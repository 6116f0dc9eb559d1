from segdet.config.config import CfgNode, get_cfg, load_config, validate_config

__all__ = ["CfgNode", "get_cfg", "load_config", "validate_config"]
