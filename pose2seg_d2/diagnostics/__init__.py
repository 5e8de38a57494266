"""Tools that look at how the package runs (not used by the models themselves)."""
from .host_syncs import HostSyncCounter, host_tensors_of, model_host_tensors
from .random_weights import calibrate_frozen_batchnorm

__all__ = ["HostSyncCounter", "calibrate_frozen_batchnorm", "host_tensors_of", "model_host_tensors"]
