#!/usr/bin/env python3
"""Prints, one a line, the symbols of one object that a callgrind profile saw
execute (run valgrind with --demangle=no so the names are the linker's).

Usage: callgrind_symbols.py <callgrind.out> <path of the object as traced>

Callgrind's output compresses names: the first `fn=(id) name` (or `cfn=`)
names an id, later lines use the id alone; `ob=`/`cob=` likewise name the
object the following functions belong to.
"""
import re
import sys

profile, obj = sys.argv[1], sys.argv[2]
objects, names, executed = {}, {}, set()
current = None
line_re = re.compile(r"^(c?ob|c?fn)=\((\d+)\)(?: (.*))?$")
with open(profile, errors="replace") as f:
    for line in f:
        m = line_re.match(line.rstrip("\n"))
        if not m:
            continue
        kind, ident, name = m.groups()
        table = objects if kind.endswith("ob") else names
        if name:
            # `'2`, `'3`: callgrind's marks for a recursive call's levels.
            table[ident] = re.sub(r"'\d+$", "", name)
        if kind == "ob":
            current = objects.get(ident)
        elif kind == "fn" and current == obj and ident in names:
            executed.add(names[ident])
for name in sorted(executed):
    print(name)
