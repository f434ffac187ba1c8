"""A small Liberty (.lib) reader: the subset the power flow needs.

Parses groups `name (args) { ... }`, simple attributes `key : value ;` and complex
attributes `key ("1, 2", "3, 4") ;` into a tree, then exposes per cell: area, leakage,
input pin capacitances (buses expanded to bits), output pins with their NLDM transition
and internal-power tables (per related pin) and input-pin (passive) internal power.
Units follow the library header: this flow assumes the OSU 0.18 µm units
(1 ns, 1 pF, 1 V, leakage 1 nW, so table energies are pF·V² = pJ).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spikebench.errors import SpikebenchError

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[A-Za-z0-9_.!&|\-+\[\]\':]+|[(){};,]|\\\n', re.S)
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


@dataclass
class Group:
    kind: str
    args: list[str]
    attrs: dict[str, str | list[str]] = field(default_factory=dict)
    groups: list[Group] = field(default_factory=list)

    def find(self, kind: str) -> list[Group]:
        return [g for g in self.groups if g.kind == kind]


def _tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(_COMMENT.sub(" ", text).replace("\\\n", " ")) if t != "\\\n"]


def parse_groups(text: str) -> Group:
    """The top-level group (`library`) of a Liberty text."""
    toks = _tokens(text)
    pos = 0

    def unquote(tok: str) -> str:
        return tok[1:-1] if tok.startswith('"') else tok

    def group(kind: str, args: list[str]) -> Group:
        nonlocal pos
        node = Group(kind, args)
        while toks[pos] != "}":
            name = toks[pos]
            pos += 1
            if toks[pos] == ":":  # simple attribute
                value = toks[pos + 1]
                pos += 2
                while toks[pos] != ";" and toks[pos] != "}":  # values with spaces, e.g. expressions
                    value += " " + toks[pos]
                    pos += 1
                if toks[pos] == ";":
                    pos += 1
                node.attrs[name] = unquote(value)
            elif toks[pos] == "(":
                pos += 1
                values = []
                while toks[pos] != ")":
                    if toks[pos] != ",":
                        values.append(unquote(toks[pos]))
                    pos += 1
                pos += 1
                if toks[pos] == "{":
                    pos += 1
                    node.groups.append(group(name, values))
                    pos += 1  # the closing brace
                else:
                    if toks[pos] == ";":
                        pos += 1
                    node.attrs[name] = values
            else:
                raise SpikebenchError(f"Liberty: unexpected token {toks[pos]!r} after {name!r}")
        return node

    while toks[pos] != "(":
        pos += 1
    kind = toks[pos - 1]
    pos += 1
    args = []
    while toks[pos] != ")":
        args.append(unquote(toks[pos]))
        pos += 1
    pos += 2  # ") {"
    return group(kind, args)


def _floats(value: str | list[str]) -> np.ndarray:
    items = value if isinstance(value, list) else [value]
    return np.array([[float(x) for x in row.replace(",", " ").split()] for row in items], dtype=np.float64)


@dataclass
class Table:
    """An NLDM table: 2-D (index_1 x index_2), 1-D (index_1) or scalar."""

    variables: tuple[str, ...]
    index: tuple[np.ndarray, ...]
    values: np.ndarray

    def lookup(self, **point: float) -> float:
        """Bilinear interpolation, linear extrapolation beyond the grid (as STA tools do)."""
        if not self.index:
            return float(self.values.ravel()[0])
        coords = [point[v] for v in self.variables]
        values = self.values.reshape([len(i) for i in self.index])
        return float(_interp(values, self.index, coords))


def _interp(values: np.ndarray, index: tuple[np.ndarray, ...], coords: list[float]) -> float:
    axis = index[0]
    if len(axis) == 1:
        sub = values[0]
        return sub if len(index) == 1 else _interp(sub, index[1:], coords[1:])
    i = int(np.clip(np.searchsorted(axis, coords[0]) - 1, 0, len(axis) - 2))
    frac = (coords[0] - axis[i]) / (axis[i + 1] - axis[i])
    lo, hi = values[i], values[i + 1]
    if len(index) > 1:
        lo, hi = _interp(lo, index[1:], coords[1:]), _interp(hi, index[1:], coords[1:])
    return float(lo + frac * (hi - lo))


# what each Liberty template variable means for a lookup
_VARIABLES = {"total_output_net_capacitance": "load", "input_net_transition": "slew", "input_transition_time": "slew",
              "related_pin_transition": "slew", "constrained_pin_transition": "slew"}


def _table(group: Group, templates: dict[str, Group]) -> Table:
    values = _floats(group.attrs["values"])
    name = group.args[0] if group.args else "scalar"
    template = templates.get(name)
    if name == "scalar" or template is None and "index_1" not in group.attrs:
        return Table((), (), values)
    variables, index = [], []
    for n in (1, 2):
        var = (template.attrs.get(f"variable_{n}") if template else None)
        idx = group.attrs.get(f"index_{n}") or (template.attrs.get(f"index_{n}") if template else None)
        if var is None or idx is None:
            break
        variables.append(_VARIABLES.get(str(var), str(var)))
        index.append(_floats(idx).ravel())
    return Table(tuple(variables), tuple(index), values)


@dataclass
class OutputPin:
    name: str
    transition: dict[str, tuple[Table, Table]]      # related pin -> (rise, fall) output transition
    energy: dict[str, tuple[Table, Table]]          # related pin -> (rise, fall) internal energy (pJ)


@dataclass
class Cell:
    name: str
    area: float
    leakage_nw: float
    inputs: dict[str, float]                        # pin (bus bits as name[i]) -> capacitance (pF)
    outputs: dict[str, OutputPin]
    input_energy: dict[str, tuple[Table, Table]]    # input pin -> (rise, fall) internal energy (pJ)
    sequential: bool


@dataclass
class Library:
    name: str
    cells: dict[str, Cell]
    voltage: float

    def cell(self, name: str) -> Cell:
        try:
            return self.cells[name]
        except KeyError:
            raise SpikebenchError(f"netlist cell {name!r} is not in the Liberty library {self.name} "
                                  f"({len(self.cells)} cells); re-synthesise against this library") from None


def _bits(pin: Group, bus_widths: dict[str, tuple[int, int]]) -> list[str]:
    name = pin.args[0]
    if pin.kind != "bus":
        return [name]
    lo, hi = sorted(bus_widths[str(pin.attrs["bus_type"])])
    return [f"{name}[{i}]" for i in range(lo, hi + 1)]


def _pair(group: Group, templates: dict[str, Group], rise: str, fall: str) -> tuple[Table, Table] | None:
    r, f = group.find(rise), group.find(fall)
    if not r or not f:
        return None
    return _table(r[0], templates), _table(f[0], templates)


def read_liberty(*paths: str | Path) -> Library:
    """Merge the cells of one or more Liberty files (the first names the library)."""
    cells: dict[str, Cell] = {}
    name, voltage = "", 0.0
    for path in paths:
        lib = parse_groups(Path(path).read_text())
        name = name or lib.args[0]
        voltage = voltage or float(lib.attrs.get("nom_voltage", 0.0))
        templates = {g.args[0]: g for g in lib.groups if g.kind in ("lu_table_template", "power_lut_template")}
        bus_widths = {g.args[0]: (int(g.attrs["bit_from"]), int(g.attrs["bit_to"])) for g in lib.find("type")}
        for cell in lib.find("cell"):
            inputs, outputs, input_energy = {}, {}, {}
            for pin in cell.find("pin") + cell.find("bus"):
                for bit in _bits(pin, bus_widths):
                    if pin.attrs.get("direction") == "input":
                        inputs[bit] = float(pin.attrs.get("capacitance", 0.0))
                        for power in pin.find("internal_power"):
                            if "related_pin" not in power.attrs and (pair := _pair(power, templates, "rise_power", "fall_power")):
                                input_energy[bit] = pair
                    elif pin.attrs.get("direction") == "output":
                        transition = {}
                        for timing in pin.find("timing"):
                            if (pair := _pair(timing, templates, "rise_transition", "fall_transition")):
                                for related in str(timing.attrs["related_pin"]).split():
                                    transition[related] = pair
                        energy = {}
                        for power in pin.find("internal_power"):
                            if "related_pin" in power.attrs and (pair := _pair(power, templates, "rise_power", "fall_power")):
                                for related in str(power.attrs["related_pin"]).split():
                                    energy[related] = pair
                        outputs[bit] = OutputPin(bit, transition, energy)
            cells[cell.args[0]] = Cell(cell.args[0], float(cell.attrs.get("area", 0.0)), float(cell.attrs.get("cell_leakage_power", 0.0)),
                                       inputs, outputs, input_energy, bool(cell.find("ff") or cell.find("latch")))
    return Library(name, cells, voltage)
