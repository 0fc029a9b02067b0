"""The compiled single-neuron interface of the model-agnostic Monte Carlo loop.

A model opts into the compiled loop (:mod:`popdens.kernels.mc_engine`) with a parameters
class, a :class:`typing.NamedTuple` of floats, and an implementation of each function
below for that class, registered with :func:`register` (``numba.extending.overload``
keyed on the NamedTuple type). The loop is compiled once per model type; the model's
functions are compiled as separate functions that the loop calls (LLVM inlines the small
ones). numba's IR inlining of them into the loop (``overload(..., inline="always")``)
ran 3-4 % faster but cost 4x the compile time (HH: 60 s against 14 s, cold). Only
``crossing`` and ``jump`` get an IR-inlined twin (``crossing_inlined``,
``jump_inlined``, registered with them) for the loop's fast paths, where the call cost
most: an equation LIF's Monte Carlo went from 1.15-1.25 to 0.99-1.08 of the 1D LIF
kernel's time, with no change in the cold compile time of HH's step.

The state of one neuron is a tuple of floats ``x`` (one per state variable, in the
order of the model's ``state_vars``), kept in registers by the loop and stored in row
``i`` of a float array ``y`` between steps. The functions (``p``: the parameters tuple):

``load(p, y, i) -> x`` and ``store(p, y, i, x)``
    Read and write a neuron's state.
``advance(p, x, duration) -> x``
    The state after ``duration >= 0`` seconds without input (exact flow or one step of an
    integrator; the loop calls it with at most the internal step unless ``p`` is of a
    class with ``exact = True``).
``crossing(p, x, x_new, duration) -> s``
    Whether the segment from ``x`` to ``x_new = advance(p, x, duration)`` holds a spike:
    its time ``0 <= s <= duration`` from the start, or ``-1.0``.
``jump(p, x, weight, reversal) -> x``
    One synaptic event (``reversal`` NaN: a current synapse).
``prepare_step(p, duration) -> c`` and ``advance_step(p, x, c) -> x``
    Optional: ``advance`` over one whole reporting step ``duration`` with what does not
    depend on the state (e.g. ``exp(-duration / tau)``) computed once per population and
    step by ``prepare_step``; ``advance_step`` must give the same state as ``advance(p,
    x, duration)``. The loop uses them for a neuron without input event in a step
    advanced in one piece (an exact flow, or one internal step per reporting step).
    Default: ``c = duration`` and ``advance``.
``split_step(p, c, first, rest) -> (c_first, c_rest)``
    Optional, with the two above: the constants of the pieces ``first`` and ``rest``
    (``first + rest`` the duration of ``c``) of a step split by one input event, from
    the step's ``c`` (e.g. ``exp(-rest / tau) = c / exp(-first / tau)``: one exponential
    instead of two); the same states as ``advance`` up to round-off. Default:
    ``prepare_step`` of each piece.
``advance_random(p, x, duration, state) -> (x, state)`` and
``crossing_random(p, x, x_new, duration, state) -> (s, state)``
    Optional: the same for models with white noise, drawing from the loop's generator
    state (``state``, uint64; :mod:`popdens.kernels.montecarlo`'s ``_normal`` and
    ``_uniform``). The loop calls these two; by default they are ``advance`` and
    ``crossing`` with the state passed through, so models without noise write only those.
``noisy(p) -> bool``
    Set by :func:`register`: whether the model draws random numbers (``advance_random``
    given); a constant. The loop's event-free fast path (``advance_step``, no random
    numbers) is for models without noise.
``resets(p) -> bool``
    Whether a spike resets the neuron (threshold models) or it carries on (spike
    surface); a constant, so the loop's branch is compiled away.
``hold(p, x) -> x``, ``is_held(p, x) -> bool``, ``release(p, x) -> x``,
``refractory_period(p) -> float``
    Reset models: ``hold`` maps the state at a spike to the refractory state (which
    ``is_held`` recognises; it must lie off every grid, e.g. ``v = inf``), ``release``
    maps it to the state at the end of the refractory period. Models without reset use
    :func:`register`'s defaults.

Implementations take exactly the argument names above (numba checks them).
"""

from __future__ import annotations

import inspect
import warnings

from numba import types
from numba.core.errors import NumbaIRAssumptionWarning
from numba.extending import overload, register_jitable

# numba's IR inliner (the models' own inline="always" helpers) trips its own pedantic
# SSA check ("variable ... is not in scope") on tuple-returning inlinees; the compiled
# code is correct (golden tests).
warnings.filterwarnings("ignore", category=NumbaIRAssumptionWarning)

__all__ = ["load", "store", "advance", "crossing", "advance_random", "crossing_random",
           "noisy", "jump", "prepare_step", "advance_step", "split_step", "resets", "hold",
           "is_held", "release", "refractory_period", "crossing_inlined", "jump_inlined",
           "register", "overload_for_params", "FUNCTIONS", "INLINED"]


def load(p, y, i):
    raise NotImplementedError("load is only callable from compiled code")


def store(p, y, i, x):
    raise NotImplementedError("store is only callable from compiled code")


def advance(p, x, duration):
    raise NotImplementedError("advance is only callable from compiled code")


def crossing(p, x, x_new, duration):
    raise NotImplementedError("crossing is only callable from compiled code")


def advance_random(p, x, duration, state):
    raise NotImplementedError("advance_random is only callable from compiled code")


def crossing_random(p, x, x_new, duration, state):
    raise NotImplementedError("crossing_random is only callable from compiled code")


def jump(p, x, weight, reversal):
    raise NotImplementedError("jump is only callable from compiled code")


def prepare_step(p, duration):
    raise NotImplementedError("prepare_step is only callable from compiled code")


def advance_step(p, x, prepared):
    raise NotImplementedError("advance_step is only callable from compiled code")


def split_step(p, prepared, first, rest):
    raise NotImplementedError("split_step is only callable from compiled code")


def noisy(p):
    raise NotImplementedError("noisy is only callable from compiled code")


def resets(p):
    raise NotImplementedError("resets is only callable from compiled code")


def hold(p, x):
    raise NotImplementedError("hold is only callable from compiled code")


def is_held(p, x):
    raise NotImplementedError("is_held is only callable from compiled code")


def release(p, x):
    raise NotImplementedError("release is only callable from compiled code")


def refractory_period(p):
    raise NotImplementedError("refractory_period is only callable from compiled code")


def crossing_inlined(p, x, x_new, duration):
    """:func:`crossing`, IR-inlined where it is called (set by :func:`register`)."""
    raise NotImplementedError("crossing_inlined is only callable from compiled code")


def jump_inlined(p, x, weight, reversal):
    """:func:`jump`, IR-inlined where it is called (set by :func:`register`)."""
    raise NotImplementedError("jump_inlined is only callable from compiled code")


# the few call sites on the loop's fast paths: there a called crossing cost about 10 ns
# per neuron with an input event (LIF; the branch on its result is then not folded
# into its comparisons), about a third of that neuron's cost
INLINED = {"crossing": crossing_inlined, "jump": jump_inlined}


FUNCTIONS = {f.__name__: f for f in (load, store, advance, crossing, advance_random,
                                     crossing_random, noisy, jump, prepare_step, advance_step,
                                     split_step, resets, hold, is_held, release,
                                     refractory_period)}
_REQUIRED = ("load", "store", "advance", "crossing", "jump")


@register_jitable
def _duration_itself(p, duration):
    return duration


@register_jitable
def _advance_whole(p, x, prepared):
    return advance(p, x, prepared)


@register_jitable
def _prepare_each(p, prepared, first, rest):
    return prepare_step(p, first), prepare_step(p, rest)


_STEP_DEFAULTS = {"prepare_step": _duration_itself, "advance_step": _advance_whole}


@register_jitable
def _no_reset(p):
    return False


@register_jitable
def _always(p):
    return True


@register_jitable
def _identity(p, x):
    return x


@register_jitable
def _never_held(p, x):
    return False


@register_jitable
def _no_refractory_period(p):
    return 0.0


@register_jitable
def _advance_without_noise(p, x, duration, state):
    return advance(p, x, duration), state


@register_jitable
def _crossing_without_noise(p, x, x_new, duration, state):
    return crossing(p, x, x_new, duration), state


_NOISE_DEFAULTS = {"advance_random": _advance_without_noise,
                   "crossing_random": _crossing_without_noise}
_NO_RESET_DEFAULTS = {"resets": _no_reset, "hold": _identity, "is_held": _never_held,
                      "release": _identity, "refractory_period": _no_refractory_period}


def register(params_class, **implementations) -> None:
    """Register a model's compiled functions for the NamedTuple ``params_class``.

    ``implementations`` maps names of :data:`FUNCTIONS` to plain Python functions
    (compiled by numba where the loop calls them). ``load``, ``store``, ``advance``,
    ``crossing`` and ``jump`` are required; ``prepare_step`` and ``advance_step`` come
    together or default to ``advance``; without ``resets`` the model has no reset and
    the reset functions default to doing nothing; without ``advance_random`` and
    ``crossing_random`` the loop uses ``advance`` and ``crossing`` (no noise).
    ``noisy`` is set here (whether ``advance_random`` is given), not by the model."""
    unknown = sorted(set(implementations) - set(FUNCTIONS))
    if unknown:
        raise TypeError(f"unknown compiled model function(s) {unknown}; known: "
                        f"{sorted(FUNCTIONS)}")
    missing = [name for name in _REQUIRED if name not in implementations]
    if missing:
        raise TypeError(f"{params_class.__name__}: missing compiled function(s) {missing}")
    given_step = set(_STEP_DEFAULTS) & set(implementations)
    if given_step and given_step != set(_STEP_DEFAULTS):
        raise TypeError(f"{params_class.__name__}: prepare_step and advance_step come "
                        f"together, got only {sorted(given_step)}")
    if "split_step" in implementations and not given_step:
        raise TypeError(f"{params_class.__name__}: split_step needs prepare_step and "
                        f"advance_step")
    implementations = {**_STEP_DEFAULTS, "split_step": _prepare_each, **implementations}
    if "resets" not in implementations:
        implementations = {**_NO_RESET_DEFAULTS, **implementations}
    elif set(_NO_RESET_DEFAULTS) - set(implementations):
        raise TypeError(f"{params_class.__name__}: a model with resets needs "
                        f"{sorted(_NO_RESET_DEFAULTS)}")
    if "noisy" in implementations:
        raise TypeError(f"{params_class.__name__}: noisy is set by register, not given")
    noisy_model = "advance_random" in implementations
    implementations = {**_NOISE_DEFAULTS, **implementations,
                       "noisy": _always if noisy_model else _no_reset}
    for name, impl in implementations.items():
        overload_for_params(FUNCTIONS[name], params_class, impl)
        if name in INLINED:
            overload_for_params(INLINED[name], params_class, impl, inline="always")


def overload_for_params(stub, params_class, impl, inline="never"):
    """``overload(stub)`` answering for arguments whose first one is a ``params_class``
    instance with ``impl`` (also for a model module's own helpers, e.g. a drift shared
    by several parameter classes)."""
    def typer(p, *args):
        if isinstance(p, types.BaseNamedTuple) and p.instance_class is params_class:
            return impl
        return None
    typer.__signature__ = inspect.signature(stub)
    # inline="never" by default: IR-inlining every model function into the loop
    # quadrupled its compile time for a 3-4 % faster loop (module docstring)
    overload(stub, inline=inline)(typer)
