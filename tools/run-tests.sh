#!/usr/bin/env bash
# Install the test dependencies, build, run the unit and integration
# suites, and fail unless the integration suite really ran: a FUSE test
# that was skipped (or a suite that never started) is a failure here.
#
#   tools/run-tests.sh            (as root, from anywhere)
#
# The last line of output is "N passed, N failed", unit and integration
# tests together.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

say()
{
	echo "run-tests: $*"
}

bash "$top/tools/install-deps.sh" --test

if [ -f build/build.ninja ]; then
	say "meson setup --reconfigure build"
	meson setup --reconfigure build
else
	say "meson setup build"
	meson setup build
fi

# tests/integration/conftest.py writes its counts here (JSON) when pytest
# finishes; a missing file means the integration suite did not run.
summary=$top/build/meson-logs/integration-summary.json
testlog=$top/build/meson-logs/testlog.json
mkdir -p "$top/build/meson-logs"
rm -f "$summary" "$testlog"
export BACKUPFS_TEST_SUMMARY=$summary

say "meson test -C build --print-errorlogs --num-processes 2"
set +e
meson test -C build --print-errorlogs --num-processes 2
meson_rc=$?
set -e

# The unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer:
# a leak, an overflow or undefined behaviour fails the run.
say "unit tests under ASan/UBSan (build-asan)"
if [ -f build-asan/build.ninja ]; then
	meson setup --reconfigure build-asan >/dev/null
else
	meson setup build-asan -Db_sanitize=address,undefined >/dev/null
fi
set +e
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C build-asan --suite unit --print-errorlogs --num-processes 2
asan_rc=$?
set -e

# Debian's python3 (a dependency of python3-pytest): only the standard
# library is used.
set +e
/usr/bin/python3 - "$testlog" "$summary" "$meson_rc" "$asan_rc" <<'EOF'
import json
import re
import sys

testlog, summary = sys.argv[1], sys.argv[2]
meson_rc, asan_rc = int(sys.argv[3]), int(sys.argv[4])
problems = []
if meson_rc != 0:
    problems.append("meson test exited with status %d" % meson_rc)
if asan_rc != 0:
    problems.append("the unit tests failed under ASan/UBSan (status %d)"
                    % asan_rc)

# Unit tests: each executable prints "N passed, N failed"; one that
# crashed before printing counts as one failure.
unit_pass = unit_fail = 0
seen_integration = False
line_re = re.compile(r"(\d+) passed, (\d+) failed")
try:
    with open(testlog, encoding="utf-8", errors="replace") as f:
        results = [json.loads(l) for l in f if l.strip()]
except OSError as e:
    results = []
    problems.append("no meson test log (%s): did the build fail?" % e)
for r in results:
    name = r.get("name", "")
    # "backupfs:integration / integration", or "integration" when it is
    # the only suite
    if ":integration" in name or name == "integration" or \
            name.endswith("/ integration"):
        seen_integration = True
        continue
    matches = line_re.findall(r.get("stdout") or "")
    ok = r.get("result") == "OK"
    if matches:
        p, fl = (int(x) for x in matches[-1])
        unit_pass += p
        unit_fail += fl
        if not ok and fl == 0:
            unit_fail += 1
    elif ok:
        unit_pass += 1
    else:
        unit_fail += 1
        problems.append("unit test %r: %s" % (name, r.get("result")))

# Integration suite: the counts conftest.py wrote.
int_pass = int_fail = 0
try:
    with open(summary, encoding="utf-8") as f:
        s = json.load(f)
except (OSError, ValueError) as e:
    s = None
    if not seen_integration:
        problems.append("the integration suite is not a meson test: "
                        "was pytest-3 found at meson setup?")
    problems.append("the integration suite did not run to the end "
                    "(no summary %s: %s)" % (summary, e))
if s is not None:
    int_pass = s.get("passed", 0)
    int_fail = s.get("failed", 0) + s.get("errors", 0)
    skipped = s.get("skipped", 0) + s.get("xfailed", 0)
    print("run-tests: integration: %d passed, %d failed, %d errors, "
          "%d skipped, %d xfailed, %d xpassed (pytest exit status %s)"
          % (s.get("passed", 0), s.get("failed", 0), s.get("errors", 0),
             s.get("skipped", 0), s.get("xfailed", 0), s.get("xpassed", 0),
             s.get("exitstatus")))
    if skipped:
        problems.append("the integration suite skipped %d tests "
                        "(skips are failures here)" % skipped)
    if int_pass == 0:
        problems.append("the integration suite passed no test")
    if int_fail:
        problems.append("the integration suite had %d failures" % int_fail)
    if s.get("exitstatus") not in (0, None):
        problems.append("pytest exited with status %s" % s.get("exitstatus"))

print("run-tests: unit: %d passed, %d failed" % (unit_pass, unit_fail))
for p in problems:
    print("run-tests: FAIL: %s" % p)
print("%d passed, %d failed" % (unit_pass + int_pass, unit_fail + int_fail))
sys.exit(1 if problems else 0)
EOF
rc=$?
set -e
exit "$rc"
