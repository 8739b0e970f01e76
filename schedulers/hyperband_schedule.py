"""Synchronous Hyperband's bracket arithmetic (Li et al. 2018, as HpBandSter lays it out), with integer budgets.

With s_max = floor(log_eta(max / min)), iteration i runs bracket s = s_max - (i mod (s_max + 1)): n configurations
at budget max * eta^-s, successive halving keeping the best floor(n_k / eta) at each budget up to max. Every
bracket's budgets lie on one grid anchored at the largest budget, max * eta^-k (HpBandSter's ``budgets``), so the
smallest budget used may exceed ``min``.

Bracket sizes: ``"li"`` (the default) is Li et al.'s n = ceil((s_max + 1) / (s + 1) * eta^s), brackets of 9, 5 and
3 configurations for budgets 1..9 and eta 3; ``"hpbandster"`` is what HpBandSter's code computes,
n = ceil(floor((s_max + 1) / (s + 1)) * eta^s), brackets of 9, 3 and 3. Rung sizes below the first are HpBandSter's
max(floor(n * eta^-k), 1), which for an integer eta is floor(n_k / eta) rung after rung.

Integer budgets (epochs): each grid budget is rounded half up; where rounding would make a rung no higher than the
one below it, that lower rung is lowered to one epoch under the rung above (working down from the largest budget,
which is exact), so budgets rise strictly. A range that this would take below ``min`` is refused.
"""
import math
from dataclasses import dataclass, field
from fractions import Fraction

BRACKET_SIZES = ("li", "hpbandster")
# Relative slack for floating-point powers of a non-integer eta (log(1000) / log(10) = 2.9999999999999996).
_EPS = 1e-9


class ScheduleError(ValueError):
    """A budget range or setting that gives no valid Hyperband schedule."""


def _eta(eta: float) -> Fraction:
    """eta as an exact fraction (3.0 -> 3, 2.5 -> 5/2), so that powers and floors are exact."""
    return Fraction(eta).limit_denominator(10_000)


def max_bracket(min_resource: float, max_resource: float, eta: float) -> int:
    """s_max = floor(log_eta(max / min)): the largest k with min * eta^k <= max, computed without rounding error."""
    if not 0 < min_resource <= max_resource:
        raise ScheduleError(f"Budget {min_resource}..{max_resource} is not accepted: it needs 0 < min <= max.")
    if not eta > 1:
        raise ScheduleError(f"Reduction factor {eta} is not accepted: it must be greater than 1.")
    factor, ratio = _eta(eta), Fraction(max_resource) / Fraction(min_resource)
    s, power = 0, factor
    while power <= ratio:
        s, power = s + 1, power * factor
    return s


def grid_budgets(max_resource: float, eta: float, s_max: int) -> list[float]:
    """HpBandSter's budgets before rounding: max * eta^-k for k = s_max..0, smallest first."""
    factor = _eta(eta)
    return [float(Fraction(max_resource) / factor ** k) for k in range(s_max, -1, -1)]


def integer_budgets(budgets: list[float], min_resource: int = 1) -> list[int]:
    """Round half up, then lower rungs where needed so that budgets rise strictly (see the module docstring)."""
    rounded = [math.floor(b + 0.5 + _EPS) for b in budgets]
    for k in range(len(rounded) - 2, -1, -1):
        rounded[k] = min(rounded[k], rounded[k + 1] - 1)
    if rounded[0] < min_resource:
        raise ScheduleError(f"Budgets {', '.join(f'{b:.3g}' for b in budgets)} are not accepted: as whole epochs "
                            f"from {min_resource} they would not rise from rung to rung; use a larger reduction factor "
                            "or budget range.")
    return rounded


def bracket_sizes(s: int, s_max: int, eta: float, rule: str = "li") -> list[int]:
    """Configurations per rung of bracket ``s`` (s + 1 rungs): n_0 by ``rule``, then max(floor(n_0 * eta^-k), 1)."""
    factor = _eta(eta)
    if rule == "li":
        n0 = math.ceil(Fraction(s_max + 1, s + 1) * factor ** s)
    elif rule == "hpbandster":
        n0 = math.ceil((s_max + 1) // (s + 1) * factor ** s)
    else:
        raise ScheduleError(f"Bracket sizes '{rule}' are not accepted: choose one of {', '.join(BRACKET_SIZES)}.")
    return [max(math.floor(n0 / factor ** k), 1) for k in range(s + 1)]


@dataclass(frozen=True)
class Bracket:
    """One iteration's successive halving: ``sizes[k]`` configurations evaluated at ``budgets[k]``.

    ``index`` is i mod (s_max + 1), 0 having the most rungs (the ``bracket`` column of ``trials.csv``);
    ``s = s_max - index`` is Li et al.'s bracket number (the number of halvings).
    """

    index: int
    s: int
    sizes: tuple[int, ...]
    budgets: tuple[int, ...]
    grid: tuple[float, ...]


@dataclass(frozen=True)
class HyperbandSchedule:
    """The brackets of synchronous Hyperband for a budget range; ``bracket(i)`` is iteration i's."""

    min_resource: int
    max_resource: int
    eta: float
    rule: str = "li"
    s_max: int = field(init=False)
    grid: tuple[float, ...] = field(init=False)
    budgets: tuple[int, ...] = field(init=False)

    def __post_init__(self):
        if self.rule not in BRACKET_SIZES:
            raise ScheduleError(f"Bracket sizes '{self.rule}' are not accepted: choose one of "
                                f"{', '.join(BRACKET_SIZES)}.")
        s_max = max_bracket(self.min_resource, self.max_resource, self.eta)
        grid = grid_budgets(self.max_resource, self.eta, s_max)
        object.__setattr__(self, "s_max", s_max)
        object.__setattr__(self, "grid", tuple(grid))
        object.__setattr__(self, "budgets", tuple(integer_budgets(grid, self.min_resource)))

    @property
    def num_brackets(self) -> int:
        """s_max + 1."""
        return self.s_max + 1

    def bracket(self, iteration: int) -> Bracket:
        """Iteration ``iteration``'s bracket: s = s_max - (iteration mod (s_max + 1))."""
        index = iteration % self.num_brackets
        s = self.s_max - index
        return Bracket(index=index, s=s, sizes=tuple(bracket_sizes(s, self.s_max, self.eta, self.rule)),
                       budgets=self.budgets[-s - 1:], grid=self.grid[-s - 1:])

    def table(self) -> str:
        """The brackets as a Markdown table: per bracket, configurations x budget at each rung."""
        lines = [f"budgets {self.min_resource}..{self.max_resource}, eta {self.eta:g}: s_max = {self.s_max}, "
                 f"grid {', '.join(f'{b:.4g}' for b in self.grid)} -> epochs {', '.join(map(str, self.budgets))}",
                 "", "| bracket (s) | rungs: configurations x epochs | epochs per iteration |", "|---|---|---|"]
        for index in range(self.num_brackets):
            b = self.bracket(index)
            rungs = ", ".join(f"{n} x {r}" for n, r in zip(b.sizes, b.budgets))
            cost = sum(n * (r - (b.budgets[k - 1] if k else 0)) for k, (n, r) in enumerate(zip(b.sizes, b.budgets)))
            lines.append(f"| {b.index} ({b.s}) | {rungs} | {cost} |")
        return "\n".join(lines)
