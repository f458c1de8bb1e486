"""Fan-out of independent tasks (per-layer chunks and rows): a local process pool by default, a Ray
cluster when an address is given; results cached per task on disk so interrupted runs resume."""

from pvq.parallel._address import check_ray_address
from pvq.parallel._cache import cached_keys, run_cached
from pvq.parallel._executor import Executor, LocalExecutor, RayExecutor, SerialExecutor, get_executor

__all__ = [
    "Executor",
    "SerialExecutor",
    "LocalExecutor",
    "RayExecutor",
    "get_executor",
    "run_cached",
    "cached_keys",
    "check_ray_address",
]
