#!/usr/bin/env bash
# The release build of cxr, with the same flags wherever it is made (make build, the bench scripts,
# the GPU bundle), so that no build undoes another's: SwiftPM rebuilds every module when flags
# change. Arguments go to `swift build` (e.g. --product cxr, --show-bin-path, --scratch-path DIR).
#
# - The Swift runtime, standard library and Foundation linked in (--static-swift-stdlib), as
#   swift.org advises for deployed Linux servers: the installed binary does not depend on the
#   toolchain's folder, and its hot standard-library code can be laid out with cxr's (below).
# - Hot code packed together: every function in its own section (Swift's -function-sections, C's
#   -ffunction-sections, dependencies included) and lld lays out first, side by side, the
#   functions named in scripts/build/hot-functions.order: those a `cxr label` request runs, from a
#   callgrind profile (`ORDER=scripts/build/hot-functions.order scripts/bench/label_instructions.sh`
#   adds new names). At 1 request in flight each answer finds the caches and TLBs cold after the
#   wait: the code a request ran sat on 502 pages (4,522 lines of 64 bytes), now on 235 (4,135),
#   and its CPU time fell by about a fifth (BENCHMARKS.md, "Label", eighth session). The file only
#   orders code: a name the build lacks is skipped, so a stale file costs nothing but the gain.
# Without lld beside swift or on the PATH (swift.org's toolchains ship it) the layout is left out,
# with a note.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
order="$root/scripts/build/hot-functions.order"
flags=(-c release --static-swift-stdlib)
command -v swift >/dev/null || { echo "release.sh: swift is not on the PATH (README: Setup)" >&2; exit 1; }
toolchain_bin="$(dirname "$(readlink -f "$(command -v swift)")")"
if [ -x "$toolchain_bin/ld.lld" ] || command -v ld.lld >/dev/null; then
  # SwiftPM relinks when the link command changes, not when a file it names does: the linker reads
  # a copy named by the list's content, so a new list relinks (and only relinks).
  layout="$root/.build/hot-functions-$(sha256sum "$order" | cut -c1-12).order"
  mkdir -p "$root/.build"
  [ -f "$layout" ] || cp "$order" "$layout"
  flags+=(-Xswiftc -use-ld=lld -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections
          -Xlinker "--symbol-ordering-file=$layout" -Xlinker --no-warn-symbol-ordering)
else
  echo "release.sh: note: no ld.lld beside swift or on the PATH: building without the hot-code layout" >&2
fi
cd "$root"
exec swift build "${flags[@]}" "$@"
