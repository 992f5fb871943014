# Sourced by label.sh and label_instructions.sh: the loopback test server, the bench's template
# and its reports, the same for both. Needs ROOT, PY, WORK and DELAY set.

# Starts the test server (a fixed DELAY seconds per answer): sets SERVER_PID and PORT.
label_bench_server() {
  "$PY" "$ROOT/Tests/LabelTests/fake_openai_server.py" --delay "$DELAY" --lifetime 900 > "$WORK/port" &
  SERVER_PID=$!
  for _ in $(seq 50); do [ -s "$WORK/port" ] && break; sleep 0.1; done
  PORT=$(awk '{print $2}' "$WORK/port")
}

# $WORK/bench.yaml: one finding with the study's zero-shot wording, so that one report is one request.
label_bench_template() {
  "$PY" - "$ROOT/configs/prompts/zero-shot.yaml" "$WORK/bench.yaml" <<'PYEOF'
import sys
text = open(sys.argv[1]).read().replace("name: zero-shot", "name: bench")
text = text[: text.index("  - column: Fracture")]
open(sys.argv[2], "w").write(text)
PYEOF
}

# label_bench_reports N COUNT FILE: COUNT short reports (ids 1.2.N.i), a quarter of them positive.
label_bench_reports() {
  "$PY" -c "
import csv
w = csv.writer(open('$3', 'w', newline=''))
w.writerow(['SOPInstanceUID', 'Report'])
for i in range($2):
    w.writerow(['1.2.%d.%d' % ($1, i), 'Portable chest radiograph %d. %s pneumothorax. Lines and tubes unchanged.' % (i, 'Small positive' if i % 4 == 0 else 'No')])
"
}
