"""Models: backbone, semantic head, losses, meta-architectures and post-processing."""
from segdet.modeling.build import build_model, resolve_device
from segdet.modeling.meta_arch import META_ARCH_REGISTRY, PanopticFPN, SemanticSegmentor

__all__ = ["META_ARCH_REGISTRY", "PanopticFPN", "SemanticSegmentor", "build_model", "resolve_device"]
