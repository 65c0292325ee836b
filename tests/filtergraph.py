"""Read an ffmpeg argument list back into what it means, to compare two commands.

Two commands mean the same when they read the same inputs with the same
options, and every output gets the same options and the same streams, each
stream made by the same filters with the same parameters from the same
sources. Labels, the split into chains, the order of named filter options and
of output options, and whether a graph is written as ``-vf``, ``-af``,
``-filter_complex`` or a ``-f lavfi`` input do not matter, so they are
dropped here. The escaping follows ffmpeg's two levels (``av_get_token``
for the graph, then for each option value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Options that take no value.
FLAGS = {"-y", "-nostats", "-nostdin", "-hide_banner"}
#: Options that apply to the whole command wherever they are written.
GLOBAL = {"-v", "-loglevel", "-y", "-nostats", "-nostdin", "-hide_banner", "-filter_complex"}


def get_token(text: str, i: int, terms: str) -> tuple[str, int]:
    """ffmpeg's ``av_get_token``: up to an unescaped, unquoted char of ``terms``."""
    while i < len(text) and text[i] in " \n\t\r":
        i += 1
    out, end = [], 0  # end: length of out that trailing-space trimming must keep
    while i < len(text) and text[i] not in terms:
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            end = len(out)
        elif c == "'":
            close = text.index("'", i + 1)
            out.extend(text[i + 1 : close])
            i = close + 1
            end = len(out)
        else:
            out.append(c)
            i += 1
            if c not in " \n\t\r":
                end = len(out)
    return "".join(out[:end]), i


@dataclass
class _Filter:
    name: str
    args: tuple[str, ...]
    kwargs: tuple[tuple[str, str], ...]
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


def _params(name: str, text: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    args: list[str] = []
    kwargs: dict[str, str] = {}
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and (text[j].isalnum() or text[j] in "_-"):
            j += 1
        if j < len(text) and text[j] == "=" and j > i:
            key, i = text[i:j], j + 1
            kwargs[key], i = get_token(text, i, ":")
        else:
            value, i = get_token(text, i, ":")
            args.append(value)
        i += 1  # the ':'
    return tuple(args), tuple(sorted(kwargs.items()))


def parse_graph(text: str, prefix: str) -> list[_Filter]:
    """Filters of a graph, links made explicit (unlabelled links get ``prefix`` names)."""
    filters: list[_Filter] = []
    i, n, previous = 0, 0, None
    labels: list[str] = []
    while i < len(text):
        c = text[i]
        if c in " \n\t":
            i += 1
        elif c == "[":
            close = text.index("]", i)
            labels.append(text[i + 1 : close])
            i = close + 1
        elif c in ",;":
            if c == ";":
                previous = None
            i += 1
        else:
            name, i = get_token(text, i, "=,;[")
            params = ""
            if i < len(text) and text[i] == "=":
                params, i = get_token(text, i + 1, "[],;")
            f = _Filter(name, *_params(name, params))
            f.inputs = labels or ([previous.outputs[0]] if previous else [])
            labels = []
            filters.append(f)
            while i < len(text) and text[i] in " [":
                if text[i] == "[":
                    close = text.index("]", i)
                    f.outputs.append(text[i + 1 : close])
                    i = close + 1
                else:
                    i += 1
            if not f.outputs:
                f.outputs = [f"{prefix}{n}"]
                n += 1
            previous = f
    return filters


class Meaning:
    """What a command does, comparable with ``==``."""

    def __init__(self, args: list[str]):
        self.filters: dict[str, tuple[_Filter, int]] = {}
        self.inputs: list[tuple[dict[str, str], str]] = []
        self.globals: dict[str, str | None] = {}
        self._count = 0
        outputs: list[tuple[list[str], dict[str, str], str]] = []
        pending: dict[str, str] = {}
        maps: list[str] = []
        i = 0
        while i < len(args):
            a = args[i]
            bare = a in FLAGS or a == "-" or not a.startswith("-")
            value = None if bare else args[i + 1]
            i += 1 if bare else 2
            if a == "-filter_complex":
                self._add(parse_graph(str(value), "fc"))
            elif a in GLOBAL:
                self.globals[a] = value
            elif a == "-i":
                self._input(pending, str(value))
                pending = {}
            elif a == "-map":
                maps.append(str(value))
            elif not a.startswith("-") or a == "-":
                outputs.append((maps, pending, a))
                maps, pending = [], {}
            else:
                pending[a] = str(value)
        self.outputs = [self._output(m, o, name) for m, o, name in outputs]

    def _add(self, filters: list[_Filter]) -> None:
        for f in filters:
            for k, label in enumerate(f.outputs):
                self.filters[label] = (f, k)

    def _input(self, options: dict[str, str], name: str) -> None:
        index, self._count = self._count, self._count + 1
        if options.get("-f") == "lavfi":
            filters = parse_graph(name, f"lavfi{index}_")
            self._add(filters)
            # The graph's one unlabelled output is the input's only stream.
            for kind in ("v", "a"):
                self.filters[f"{index}:{kind}"] = (filters[-1], 0)
            return  # part of the graph, not a file
        self.inputs.append((options, name))

    def source(self, label: str) -> Any:
        """The nested description of stream ``label`` (a filter output or an input stream)."""
        label = label.strip("[]")
        if label not in self.filters:
            return ("input", label)
        f, pad = self.filters[label]
        return (f.name, f.args, f.kwargs, tuple(self.source(s) for s in f.inputs), pad)

    def _output(self, maps: list[str], opts: dict[str, str], name: str) -> Any:
        streams = []
        for m in maps:
            stream = self.source(m)
            for opt in ("-vf", "-af"):
                if opt in opts:
                    for f in parse_graph(opts[opt], "simple"):
                        stream = (f.name, f.args, f.kwargs, (stream,), 0)
            streams.append(stream)
        rest = {k: v for k, v in opts.items() if k not in ("-vf", "-af")}
        return (tuple(streams), tuple(sorted(rest.items())), name)

    def described(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "outputs": self.outputs, "globals": self.globals}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Meaning) and self.described() == other.described()
