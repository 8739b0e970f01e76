"""The budget of a run: which reported counter measures it, its smallest and largest value, and the reduction factor.

Built once from the launcher's flags and handed to the scheduler builder, the results writer and ``metadata.json``
(key ``budget``), so that every part reads the same numbers under the same names.
"""
import math
from dataclasses import asdict, dataclass
from typing import Any


class BudgetError(ValueError):
    """A budget whose numbers do not fit together."""


def num_brackets(min_resource: int, max_resource: int, eta: float) -> int:
    """Bracket count of Li et al.: s_max + 1 with s_max = floor(log_eta(max / min))."""
    # The small epsilon keeps exact powers of eta (log(1000) / log(10) = 2.999...) from rounding down.
    return int(math.floor(math.log(max_resource / min_resource) / math.log(eta) + 1e-9)) + 1


@dataclass(frozen=True)
class Budget:
    """Budgets run from ``min_resource`` to ``max_resource`` of ``resource_attr``; successive halving keeps 1/eta."""

    resource_attr: str
    min_resource: int
    max_resource: int
    eta: float

    def __post_init__(self):
        if not 1 <= self.min_resource <= self.max_resource:
            raise BudgetError(f"Budget {self.min_resource}..{self.max_resource} is not accepted: it needs "
                              "1 <= min <= max.")
        if not self.eta > 1:
            raise BudgetError(f"Reduction factor {self.eta} is not accepted: it must be greater than 1.")

    @property
    def brackets(self) -> int:
        """Hyperband's bracket count for this budget range."""
        return num_brackets(self.min_resource, self.max_resource, self.eta)

    def to_dict(self) -> dict[str, Any]:
        """The budget as written to ``metadata.json``."""
        return asdict(self)
