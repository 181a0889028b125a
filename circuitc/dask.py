"""A NumPy-target module evaluated and differentiated over Dask collections, partition by
partition: `forward(module, *inputs)` and `backward(module, *inputs, *seeds)` take what the
module's own `forward` and `backward` take, with any input or seed also a Dask array, a
Dask Series (a 1-D batch) or a Dask DataFrame (a batch of rows, its columns a bus's last
axis), and return what the module returns, as lazy Dask arrays.

The contract (docs/dask.md):

- Inputs line up as in the module: batch axes lead and broadcast, each bus input's own axes
  trail. Each block of the batch runs through one call of the module; a bus's own axes are
  rechunked into one chunk, so the module sees every element of a bus in each call.
- An output is a Dask array of the batch shape plus the output's bus shape, chunked along
  the batch as the inputs are.
- A gradient has its input's shape. Where the input is broadcast along the batch (a NumPy
  array or a number: a parameter; or an axis of length 1), each block's gradient is summed
  by the module and the blocks' sums are added by a Dask tree reduction, so a parameter's
  gradient is a small Dask array whatever the size of the data.
- Seeds broadcast against their output, as in the module, and may not add axes to it.
- The module is sent to the workers as its source text (one key of the graph), and rebuilt
  once per worker process: a module from `circuitc.load` or from a file written by
  `circuitc compile` works on a `dask.distributed` cluster as on the local schedulers. The
  workers need NumPy and circuitc itself.

Nothing is computed until the caller asks (`dask.compute(outputs, grads)`), so outputs and
gradients computed together read each partition once.
"""

from __future__ import annotations

import functools
import inspect
import math
import types

import dask
import dask.array as da
import numpy as np

from .contract import shown_in_tracebacks

__all__ = ["backward", "forward"]


def forward(module: types.ModuleType, *inputs, **named):
    """`module.forward(*inputs, **named)` over Dask collections: one Dask array per output
    (the output itself when the module has one, else a tuple in `OUTPUTS` order)."""
    call = _Call(module, "forward", inputs, named)
    return _one_or_tuple(call.outputs())


def backward(module: types.ModuleType, *inputs, **seeds):
    """`module.backward(*inputs, **seeds)` over Dask collections: `(outputs, grads)` as the
    module returns them, every value a Dask array; each gradient has its input's shape, a
    parameter's summed over every partition.

    A data input's gradient is per point, as large as the data: load the module with
    `fix=` the data inputs (or `wrt=` the parameters) so that only the parameters'
    gradients are made (docs/dask.md)."""
    call = _Call(module, "backward", inputs, seeds)
    return _one_or_tuple(call.outputs()), tuple(call.gradients())


def _one_or_tuple(values: list):
    return values[0] if len(values) == 1 else tuple(values)


class _Call:
    """One call of `module.<function>` laid out over blocks: `parts` is a Dask array over
    the batch's blocks whose every block is the tuple the module's function returned for
    it, flattened (outputs, then gradients); `outputs()` and `gradients()` pick from it."""

    def __init__(self, module: types.ModuleType, function: str, args: tuple, named: dict):
        if module.__dict__.get("np") is not np:
            raise TypeError(f"circuitc.dask needs a module compiled with target='numpy', "
                            f"not {module.__name__!r}")
        self.module = module
        shapes = getattr(module, "SHAPES", {})
        bound = inspect.signature(getattr(module, function)).bind(*args, **named)
        bound.apply_defaults()
        values = _frames_as_arrays(list(bound.arguments.values()))
        n = len(module.INPUTS)
        self.inputs = [_array(v, name, shapes.get(name, ()))
                       for v, name in zip(values[:n], module.INPUTS)]
        self.buses = [shapes.get(name, ()) for name in module.INPUTS]
        self.out_buses = [shapes.get(name, ()) for name in module.OUTPUTS]
        self.batch = max((x.ndim - len(bus) for x, bus in zip(self.inputs, self.buses)),
                         default=0)
        batch_shape = da.core.broadcast_shapes(
            *(x.shape[:x.ndim - len(bus)] for x, bus in zip(self.inputs, self.buses)))
        seeds = [_seed(v, f"d_{name}", batch_shape + bus, bus)
                 for v, name, bus in zip(values[n:], module.OUTPUTS, self.out_buses)]
        self.arrays = self.inputs + seeds
        self.dtype = np.result_type(np.float64, *(x.dtype for x in self.arrays))
        self.parts = self._parts(function, self.buses + self.out_buses)

    def _parts(self, function: str, buses: list) -> da.Array:
        """The module's function on each block of the batch: its own axes right-aligned
        as batch labels 0..batch-1, each bus axis a label of its own (one chunk)."""
        pairs, label = [], self.batch
        for x, bus in zip(self.arrays, buses):
            lead = x.ndim - len(bus)
            own = tuple(range(label, label + len(bus)))
            label += len(bus)
            pairs += [x, tuple(range(self.batch - lead, self.batch)) + own]
        source = dask.delayed(_source(self.module), pure=True)
        return da.blockwise(_run, tuple(range(self.batch)), source, None, function, None,
                            *pairs, meta=np.empty((0,) * self.batch, dtype=object),
                            concatenate=True)

    def outputs(self) -> list[da.Array]:
        """Each output over the batch, its bus axes (one chunk each) after the batch's."""
        return [self.parts.map_blocks(_pick, k, dtype=self.dtype,
                                      chunks=self.parts.chunks + tuple((n,) for n in bus),
                                      new_axis=list(range(self.batch, self.batch + len(bus))),
                                      meta=np.empty((0,) * (self.batch + len(bus)), self.dtype))
                for k, bus in enumerate(self.out_buses)]

    def gradients(self) -> list[da.Array]:
        """Each `WRT` input's gradient: per block, the module's gradient of the input's block
        (summed over the block where the input is broadcast), then added over the blocks
        along every axis where the input is broadcast."""
        index = {name: k for k, name in enumerate(self.module.INPUTS)}
        first = len(self.module.OUTPUTS)
        return [self._gradient(first + j, self.inputs[index[name]], self.buses[index[name]])
                for j, name in enumerate(self.module.WRT)]

    def _gradient(self, k: int, x: da.Array, bus: tuple) -> da.Array:
        lead = self.batch - (x.ndim - len(bus))  # batch axes the input does not have
        spread = [p for p in range(self.batch) if p < lead or x.shape[p - lead] == 1]
        chunks = tuple((1,) * len(c) if p in spread else c
                       for p, c in enumerate(self.parts.chunks)) + tuple((n,) for n in bus)
        pieces = self.parts.map_blocks(_piece, k, lead, dtype=self.dtype, chunks=chunks,
                                       new_axis=list(range(self.batch, self.batch + len(bus))),
                                       meta=np.empty((0,) * len(chunks), self.dtype))
        total = pieces.sum(axis=tuple(spread), keepdims=True) if spread else pieces
        return total.squeeze(axis=tuple(range(lead))) if lead else total


def _is_frame(value) -> bool:
    return hasattr(value, "to_dask_array")  # a Dask Series or DataFrame


def _frames_as_arrays(values: list) -> list:
    """`values` with each Dask Series and DataFrame replaced by its columns, cut from one
    Dask array of all their columns side by side: Dask reads a source they share once, in
    the same partitions for all (read alone, two selections of one Parquet read may be
    partitioned differently)."""
    frames = [k for k, v in enumerate(values) if _is_frame(v)]
    if not frames:
        return values
    import dask.dataframe as dd

    parts, columns, start = [], {}, 0
    for k in frames:
        part = values[k].to_frame(0) if values[k].ndim == 1 else values[k]
        width = len(part.columns)
        parts.append(part.rename(columns=dict(zip(part.columns, range(start, start + width)))))
        columns[k] = start if values[k].ndim == 1 else slice(start, start + width)
        start += width
    table = (dd.concat(parts, axis=1) if len(parts) > 1 else parts[0]).to_dask_array()
    if table.dtype.kind not in "fc":  # integer, boolean or mixed (object) columns
        table = table.astype(np.float64)
    return [table[:, columns[k]] if k in columns else v for k, v in enumerate(values)]


def _array(value, name: str, bus: tuple) -> da.Array:
    """An input as a Dask array whose bus axes (the last `len(bus)`) are one chunk each."""
    if not isinstance(value, da.Array):
        value = da.from_array(np.asarray(value), chunks=-1)
    shape = value.shape
    if value.ndim < len(bus) or shape[value.ndim - len(bus):] != bus:
        raise ValueError(f"{name}: expected an array whose last axes have shape {bus}, "
                         f"got {shape}")
    axes = range(value.ndim - len(bus), value.ndim)
    if any(value.numblocks[a] > 1 for a in axes):
        value = value.rechunk({a: -1 for a in axes})
    return value


def _seed(value, name: str, shape: tuple, bus: tuple) -> da.Array:
    """A seed as a Dask array that broadcasts against its output's `shape` without adding
    to it (its bus axes one chunk each)."""
    seed = _array(value, name, ())
    if seed.ndim > len(shape) or any(
            n not in (1, m) and not (math.isnan(n) or math.isnan(m))  # nan: a length unknown
            for n, m in zip(seed.shape[::-1], shape[::-1])):
        raise ValueError(f"{name}: a seed of shape {seed.shape} does not broadcast to its "
                         f"output's shape {shape}")
    axes = [a for a in range(seed.ndim - len(bus), seed.ndim) if a >= 0]
    if any(seed.numblocks[a] > 1 for a in axes):
        seed = seed.rechunk({a: -1 for a in axes})
    return seed


def _source(module: types.ModuleType) -> str:
    """The module's source text: from its file, or from the line cache where `circuitc.load`
    leaves it."""
    try:
        return inspect.getsource(module)
    except (OSError, TypeError):
        raise TypeError(f"cannot find the source of module {module.__name__!r}: pass a module "
                        f"from circuitc.load or from a file written by circuitc compile"
                        ) from None


@functools.lru_cache(maxsize=16)
def _rebuild(source: str) -> types.ModuleType:
    """A generated module from its source text, once per process (the workers' cache)."""
    module = types.ModuleType("circuit")
    module.__file__ = f"<circuitc.dask {hash(source) & 0xFFFFFFFF:08x}>"
    shown_in_tracebacks(module.__file__, source)
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102
    return module


def _run(source: str, function: str, *blocks) -> tuple:
    """The module's `function` on one block of every input (and seed), flattened: the
    outputs in `OUTPUTS` order, then (for `backward`) the gradients in `WRT` order."""
    module = _rebuild(source)
    result = getattr(module, function)(*blocks)
    values, grads = (result, ()) if function == "forward" else result
    values = tuple(values) if len(module.OUTPUTS) > 1 else (values,)
    return values + tuple(grads)


def _pick(part: tuple, k: int) -> np.ndarray:
    return np.asarray(part[k])


def _piece(part: tuple, k: int, lead: int) -> np.ndarray:
    """Gradient `k` of one block, with `lead` axes of length 1 in front, for the batch axes
    its input does not have."""
    grad = np.asarray(part[k])
    return grad.reshape((1,) * lead + grad.shape)
