"""Tools that look at how the package runs (not used by the models themselves)."""
from .host_syncs import HostSyncCounter, host_tensors_of, model_host_tensors

__all__ = ["HostSyncCounter", "host_tensors_of", "model_host_tensors"]
