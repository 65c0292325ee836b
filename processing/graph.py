"""Filter graphs built with ffmpeg-python (``import ffmpeg``), run by :mod:`processing.runner`.

ffmpeg-python (0.2.0, pinned) builds the graph and escapes every value for
both levels ffmpeg parses (the option value, then the graph): a path or text
with ``'``, ``:``, ``,`` or ``[`` reaches the filter as written, where the
hand-written strings needed a quoting helper that one module forgot. It only
*builds* arguments here: :func:`compile_args` hands the list to the project's
one runner, which adds ``-hide_banner -nostdin``, the timeout, PDEATHSIG,
logging and tag redaction (ffmpeg-python's own ``run`` has none of these).

Two gaps of ffmpeg-python 0.2.0 are closed here, so callers never meet them:

* It has no source filters inside ``-filter_complex`` (``anullsrc``,
  ``gradients``): :func:`source` adds a filter node without inputs.
* It escapes *positional* filter arguments twice (``nodes.FilterNode._get_filter``),
  so a positional value with ``\\ ' = :`` would arrive mangled: :func:`apply`
  refuses one; such values go by name.

Chains that other modules build as text (the loudness plan's ``volume`` and
limiter, the ``ebur128`` meter) are turned into nodes by :func:`apply`, which
reads only the plain ``name=a:key=value`` form those produce.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import ffmpeg
from ffmpeg._run import (
    _get_filter_arg,
    _get_input_args,
    _get_output_args,
)
from ffmpeg.dag import topo_sort
from ffmpeg.nodes import (
    FilterableStream,
    FilterNode,
    InputNode,
    Node,
    OutputNode,
    get_stream_spec_nodes,
)

from . import runner

Stream = Any
"""An ffmpeg-python stream (the package has no type hints)."""

#: Characters ffmpeg-python would escape twice in a positional argument.
_POSITIONAL_UNSAFE = set("\\'=:")


class _SourceNode(FilterNode):
    """A filter without inputs inside ``-filter_complex`` (``anullsrc``, ``gradients``).

    ffmpeg-python 0.2.0 only knows sources as ``-f lavfi -i`` inputs;
    :class:`FilterNode` insists on one input. Its compile step needs nothing
    but the name and arguments, so the node is made with no inputs.
    """

    def __init__(self, name: str, args: list[Any], kwargs: dict[str, Any]):
        Node.__init__(
            self,
            stream_spec=None,
            name=name,
            incoming_stream_types=set(),
            outgoing_stream_type=FilterableStream,
            min_inputs=0,
            max_inputs=0,
            args=args,
            kwargs=kwargs,
        )


def source(name: str, *args: Any, **kwargs: Any) -> Stream:
    """The output of source filter ``name`` (no input), for use inside the graph."""
    _check_positional(name, args)
    return _SourceNode(name, list(args), kwargs).stream()


def filt(streams: Stream | Sequence[Stream], name: str, *args: Any, **kwargs: Any) -> Stream:
    """``streams`` (one, or a list for overlay/merges) through filter ``name``."""
    _check_positional(name, args)
    return ffmpeg.filter(streams, name, *args, **kwargs)


def split(stream: Stream, count: int, *, audio: bool = False) -> list[Stream]:
    """``count`` copies of ``stream`` (``split``/``asplit``; the count follows the uses)."""
    node = ffmpeg.filter_multi_output(stream, "asplit" if audio else "split")
    return [node.stream(i) for i in range(count)]


def apply(stream: Stream, spec: str) -> Stream:
    """``stream`` through one filter given as plain text, ``name=a:key=value``.

    Only for specs this project builds (numbers and names): no escaping is read.

    Raises:
        ValueError: ``spec`` holds an escape or a quote.
    """
    if any(c in spec for c in "\\'[],;"):
        raise ValueError(f"refusing to read {spec!r} as a plain filter")
    name, _, params = spec.partition("=")
    args: list[str] = []
    kwargs: dict[str, str] = {}
    for param in params.split(":") if params else []:
        key, sep, value = param.partition("=")
        if sep:
            kwargs[key] = value
        else:
            args.append(param)
    return ffmpeg.filter(stream, name, *args, **kwargs)


def chain(stream: Stream, specs: Iterable[str]) -> Stream:
    """``stream`` through each of ``specs`` in turn (see :func:`apply`)."""
    for spec in specs:
        stream = apply(stream, spec)
    return stream


def options(flat: Sequence[str]) -> dict[str, str]:
    """``["-c:v", "libx264", …]`` as ffmpeg-python output keywords ``{"c:v": "libx264"}``.

    Every option in ``flat`` must take a value and appear once (true of
    :func:`processing.normalize.encoder_args`).
    """
    if len(flat) % 2 or any(not k.startswith("-") for k in flat[::2]):
        raise ValueError(f"expected option/value pairs, got {list(flat)}")
    keys = [k[1:] for k in flat[::2]]
    if len(set(keys)) != len(keys):
        raise ValueError(f"an option is given twice in {list(flat)}")
    return dict(zip(keys, flat[1::2], strict=True))


def compile_args(*outputs: Stream, overwrite: bool = True) -> list[str]:
    """The argument list (without the program name) writing every one of ``outputs``.

    ffmpeg-python's own ``get_args``, less one limit: it cannot compile a
    graph without file inputs (its ``reduce`` has no start value), which a
    card made only of source filters is. ffmpeg-python orders output options
    by name and puts one ``-y`` (``overwrite``; pointless for pipes) at the
    end: the same command for ffmpeg, whose output options apply to the next
    file name whatever their order.
    """
    spec = outputs[0] if len(outputs) == 1 else ffmpeg.merge_outputs(*outputs)
    nodes, edges = topo_sort(get_stream_spec_nodes(spec))
    inputs = [n for n in nodes if isinstance(n, InputNode)]
    names = {(n, None): str(i) for i, n in enumerate(inputs)}
    filters = _get_filter_arg([n for n in nodes if isinstance(n, FilterNode)], edges, names)
    args = [a for n in inputs for a in _get_input_args(n)]
    if filters:
        args += ["-filter_complex", filters]
    args += [a for n in nodes if isinstance(n, OutputNode) for a in _get_output_args(n, names)]
    args = [_STAND_INS.get(a, a) for a in args]
    return [*args, "-y"] if overwrite else args


def _check_positional(name: str, args: Sequence[Any]) -> None:
    for arg in args:
        if _POSITIONAL_UNSAFE & set(str(arg)):
            raise ValueError(f"{name}: pass {arg!r} by name (ffmpeg-python escapes it twice)")


#: Stand-ins for file names that are not valid UTF-8 (a phone's Latin-1 name): ffmpeg-python
#: hashes every argument as UTF-8, so it gets a stand-in and :func:`compile_args` swaps the
#: real name (with its surrogate escapes, which the runner turns back into the bytes) in.
_STAND_INS: dict[str, str] = {}


def input_file(path: Path, **opts: Any) -> Stream:
    """A file input (``-i file:/abs/path``, see :func:`runner.input_path`), with input options."""
    real = runner.input_path(path)
    try:
        real.encode("utf-8")
    except UnicodeEncodeError:
        stand_in = "reel-path:" + real.encode("utf-8", "surrogateescape").hex()
        _STAND_INS[stand_in] = real
        return ffmpeg.input(stand_in, **opts)
    return ffmpeg.input(real, **opts)


def pipe_input(**opts: Any) -> Stream:
    """Frames written to ffmpeg's standard input (``-i pipe:0``, see :func:`runner.feed`)."""
    return ffmpeg.input("pipe:0", **opts)


def output(streams: Stream | Sequence[Stream], target: str, **opts: Any) -> Stream:
    """An output writing ``streams`` to ``target`` (a ``file:`` path or ``pipe:1``/``-``)."""
    spec = list(streams) if isinstance(streams, list | tuple) else [streams]
    return ffmpeg.output(*spec, target, **opts)
