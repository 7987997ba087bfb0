#!/usr/bin/env bash
# Times `conduit rules explain` over the whole python3-pydicom test corpus with a realistic
# rules file (the same code path the daemon uses to route), and prints files per second.
# Usage: bench/explain_corpus.sh [--conduit PATH]
set -euo pipefail
CONDUIT=build/bin/conduit
if [[ ${1:-} == --conduit ]]; then CONDUIT=$2; fi
CORPUS=/usr/lib/python3/dist-packages/pydicom/data/test_files
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/conduit.yaml" <<'YAML'
destinations:
  - name: PACS
  - name: CT_ARCHIVE
  - name: MR_ARCHIVE
  - name: RESEARCH
  - name: NIGHT_READER
YAML
cat > "$work/rules.yaml" <<'YAML'
version: 1
default:
  route: [PACS]
rules:
  - name: ct
    when: { attribute: Modality, in: [CT, PT] }
    route: [CT_ARCHIVE]
  - name: mr
    when: { attribute: Modality, equals: MR }
    route: [MR_ARCHIVE]
  - name: research
    when:
      all:
        - calling_ae: { wildcard: "RES*" }
        - attribute: StudyDescription
          regex: "(?i).*research.*"
    route:
      - destination: RESEARCH
        edits:
          - prefix: { attribute: PatientID, value: "SITEA-" }
  - name: off-hours
    when:
      any:
        - time_of_day: { from: "19:00", to: "07:00" }
        - day_of_week: [sat, sun]
    route: [NIGHT_READER]
YAML

mapfile -t files < <(find "$CORPUS" -name '*.dcm' | sort)
start=$(date +%s.%N)
"$CONDUIT" rules explain --config "$work/conduit.yaml" --rules "$work/rules.yaml" \
  "${files[@]}" > "$work/explain.txt" || true  # unreadable corpus files are reported, not fatal
end=$(date +%s.%N)
seconds=$(echo "$end - $start" | bc -l)
explained=$(grep -c '^== ' "$work/explain.txt")
unreadable=$(grep -c '^cannot read' "$work/explain.txt" || true)
printf 'rules explain: %d files (%d unreadable) in %.3f s = %.0f files/s (process start included)\n' \
  "$explained" "$unreadable" "$seconds" "$(echo "$explained / $seconds" | bc -l)"
