#!/usr/bin/env bash
# Print the path of a working Python interpreter of one of the given versions (first found wins).
# Usage: scripts/find-python.sh 3.10            (the NLU environment needs exactly 3.10)
#        scripts/find-python.sh 3.12 3.11 3.13  (the app needs 3.11 or newer)
set -u
for version in "$@"; do
  for candidate in "python$version" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python \
                   /usr/local/bin/"python$version" /usr/bin/"python$version"; do
    if [ -x "$(command -v "$candidate" 2>/dev/null)" ] \
       && "$candidate" -c "import sys, venv, ensurepip; sys.exit(sys.version_info[:2] != tuple(map(int, '$version'.split('.'))))" 2>/dev/null; then
      command -v "$candidate"
      exit 0
    fi
  done
done
echo "no Python $* found: install one (e.g. 'pyenv install $1' or 'apt-get install python$1-venv')" >&2
exit 1
