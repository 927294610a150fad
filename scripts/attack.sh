#!/usr/bin/env bash
# The long attack-and-fault run (the fast part runs in every `pytest`):
#   - the whole attack suite: bad inputs, every address form through a real serve inside
#     `unshare -rn`, overload, faults, fuzzing with hypothesis at 20x the examples
#   - soak and memory figures (tests/attack, printed as ratios against a baseline)
#   - atheris on the image loader, text sanitiser and merge step (ALTTEXT_FUZZ_S seconds each)
# Everything stays on 127.0.0.1 or inside a private network namespace, and stops by itself.
# Usage: scripts/attack.sh        (ALTTEXT_SOAK_S=60 ALTTEXT_FUZZ_S=120 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || scripts/setup.sh --dev
.venv/bin/python -c "import atheris" 2>/dev/null || .venv/bin/pip install -q "atheris>=2.3"
export ALTTEXT_ATTACK=1 ALTTEXT_FUZZ_EXAMPLES="${ALTTEXT_FUZZ_EXAMPLES:-3000}"
.venv/bin/python -m pytest -q -s -p no:cacheprovider \
    tests/service/test_hardening.py tests/service/test_attack_inputs.py tests/service/test_attack_network.py \
    tests/service/test_attack_load.py tests/service/test_fuzz.py tests/service/test_fetch.py tests/attack
mkdir -p runs/fuzz
for target in image_loader text_sanitiser merge_step; do
    echo "== atheris: $target (${ALTTEXT_FUZZ_S:-120} s)"
    (cd runs/fuzz && ../../.venv/bin/python ../../scripts/fuzz.py "$target" \
        -max_total_time="${ALTTEXT_FUZZ_S:-120}" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1) 2>&1 | tail -4
done
echo "attack run passed; any crash-* file under runs/fuzz/ belongs in tests/fixtures/fuzz/<target>/"
