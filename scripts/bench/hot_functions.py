"""The functions a callgrind profile (made with --dump-instr=yes) executed in one binary, hottest
first, as a linker symbol-ordering file (one symbol per line; what lld's --symbol-ordering-file
reads). Called by label_instructions.sh when ORDER is set; see scripts/build/release.sh.

Usage: hot_functions.py BINARY OUT CALLGRIND_FILE...
       hot_functions.py --footprint CALLGRIND_FILE...   (distinct code lines and pages, by object)
Names come from the binary's own symbol table (nm), not from valgrind: valgrind leaves out local
symbols such as `objectdestroy.11Tm` and outlined copies, which are hot on the request path too.
Symbols already in OUT are kept (after the new ones), so that profiles add up (a name another
version of the code had stays until pruned by hand); symbols a build lacks are skipped by the
linker.
"""
import bisect
import collections
import glob
import os
import re
import shutil
import subprocess
import sys

def named(line, table):
    """The name in `key=(n) name` (remembered as n) or `key=(n)` (looked up)."""
    m = re.match(r"\w+=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
    if not m:
        return line.split("=", 1)[1].rstrip("\n")
    if m.group(2):
        table[m.group(1)] = m.group(2)
    return table.get(m.group(1))


def executed(profiles):
    """(main program, object, valgrind's function name, instruction address, self instructions)
    for every cost line of callgrind profiles made with --dump-instr=yes.

    Callgrind's compressed format: `ob=(n) name` / `ob=(n)` name the object (a name may first come
    in a `cob=` line), `fn=` the function alike; a cost line starts with an instruction address,
    absolute (0x...), relative to the previous one (+n / -n, decimal) or the same (*), then the
    source line the same way, then the counts (Ir first); the line after `calls=` is the call's
    inclusive cost at the call site: executed, not self cost."""
    for path in profiles:
        objects, functions, current, function, last, after_call, program = {}, {}, None, None, 0, False, None
        positions = 1  # `positions: instr line`: the event counts come after that many numbers
        for line in open(path, errors="replace"):
            if line.startswith("cmd:"):  # the program that ran
                program = line.split()[1]
                continue
            if line.startswith("positions:"):
                positions = len(line.split()) - 1
                continue
            if line.startswith(("ob=", "cob=")):
                name = named(line, objects)
                if line.startswith("ob="):
                    current = name
                continue
            if line.startswith("fn="):
                function = named(line, functions)
                function = re.sub(r"'\d+$", "", function) if function else None
                continue
            if line.startswith("calls="):
                after_call = True
                continue
            if not line or line[0] not in "0123456789+-*":
                continue
            fields = line.split()
            token = fields[0]
            if token == "*":
                address = last
            else:  # numbers are decimal unless written 0x...
                magnitude = token.lstrip("+-")
                number = int(magnitude, 16) if magnitude.startswith("0x") else int(magnitude)
                address = last + number if token[0] == "+" else last - number if token[0] == "-" else number
            last = address
            instructions = int(fields[positions]) if len(fields) > positions and not after_call else 0
            after_call = False
            yield program, current, function, address, instructions


if len(sys.argv) < 3:
    sys.exit(__doc__)
if sys.argv[1] == "--footprint":
    # The code a profile ran, by object: distinct 64-byte lines and 4 KiB pages. What a request
    # touches after an idle wait, when the caches and TLBs are cold (scripts/build/release.sh).
    lines, pages = collections.defaultdict(set), collections.defaultdict(set)
    for program, current, _, address, _ in executed(sys.argv[2:]):
        key = "cxr" if current == program else os.path.basename(current or "?")
        lines[key].add(address >> 6)
        pages[key].add(address >> 12)
    print(f"code touched in the window: {sum(map(len, lines.values())):,} lines of 64 bytes on "
          f"{sum(map(len, pages.values()))} pages of 4 KiB; "
          + ", ".join(f"{k} {len(lines[k]):,} on {len(pages[k])}" for k in sorted(pages, key=lambda k: -len(pages[k]))[:6]))
    sys.exit(0)

binary, out, profiles = sys.argv[1], sys.argv[2], sys.argv[3:]

# The binary's function symbols, by address. Valgrind reports the main executable's code at its
# link addresses, as nm does (checked below against valgrind's own names).
starts, names = [], []
nm = subprocess.run(["nm", "-n", "-S", "--defined-only", binary], capture_output=True, text=True, check=True)
for line in nm.stdout.splitlines():
    parts = line.split()
    if len(parts) == 4 and parts[2] in "tTwW":
        starts.append(int(parts[0], 16))
        names.append((parts[3], int(parts[1], 16)))

def symbol(address):
    i = bisect.bisect_right(starts, address) - 1
    if i < 0:
        return None
    name, size = names[i]
    return name if address < starts[i] + max(size, 1) else None

cost = collections.Counter()
agree = collections.Counter()  # valgrind's name for a line against nm's for its address
for program, current, function, address, instructions in executed(profiles):
    if current is None or current != program:  # the program that ran is a copy of BINARY
        continue
    name = symbol(address)
    if name and function and not function.startswith("0x"):
        agree[name == function] += 1
    if name:
        cost[name] += instructions + 1  # +1: executed at all counts, even on a call line

if agree[False] > agree[True] / 10:
    sys.exit(f"hot_functions.py: the profile's addresses do not match {binary}'s symbols "
             f"({agree[False]} lines named otherwise, {agree[True]} alike): profile this very binary")
if not cost:
    sys.exit(f"hot_functions.py: the profile names no code of {binary} (was it made with --dump-instr=yes?)")
# Functions that sit in an archive's shared `.text` section (compiled without function sections:
# much of the Swift toolchain's static standard library) move only with the whole section, 1.6 MB
# for libswiftCore's; ranked among the others, it would split the packed code in two. They go last.
unsplit = set()
swift = shutil.which("swift")
static = os.path.join(os.path.dirname(os.path.realpath(swift)), "..", "lib", "swift_static") if swift else ""
for archive in glob.glob(os.path.join(static, "*", "*.a")):
    table = subprocess.run(["objdump", "-t", archive], capture_output=True, text=True).stdout
    for line in table.splitlines():
        left, tab, right = line.partition("\t")
        if tab and left.split()[-1:] == [".text"] and right.split():
            unsplit.add(right.split()[-1])
ranked = [name for name, _ in cost.most_common()]
seen = set(ranked)
if os.path.exists(out):
    ranked += [n for n in open(out).read().split("\n") if n and n not in seen]
order = [n for n in ranked if n not in unsplit] + [n for n in ranked if n in unsplit]
with open(out + ".tmp", "w") as f:
    f.write("\n".join(order) + "\n")
os.replace(out + ".tmp", out)
print(f"{out}: {len(cost)} functions from this profile, {len(order)} in all "
      f"({sum(n in unsplit for n in ranked)} of them last: in a shared .text section; "
      f"names checked on {agree[True]} of {sum(agree.values())} lines)", file=sys.stderr)
