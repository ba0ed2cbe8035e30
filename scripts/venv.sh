# Sourced by scripts/test and scripts/demo: puts the locked packages into a virtualenv.
#   locked_venv DIR     requirements/test.txt (hash-checked, --no-deps: the lock is complete),
#                       then Pullable itself, editable and with --no-deps, on top.
#   latest_venv DIR     the newest versions pyproject.toml allows, to see drift on purpose.
# Reinstalls only when the lock or pyproject.toml changed (stamp in DIR/.pullable-lock).
locked_venv() {
  local venv=$1 stamp
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  stamp="$(cat requirements/test.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$venv/.pullable-lock" 2>/dev/null)" != "$stamp" ]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --require-hashes --no-deps \
      -r requirements/test.txt
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
    echo "$stamp" > "$venv/.pullable-lock"
  fi
}

latest_venv() {
  local venv=$1
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade --upgrade-strategy eager \
    -e '.[app,test]'
}
