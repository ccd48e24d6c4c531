#!/usr/bin/env bash
# make indent / make indent-check: PostgreSQL's layout for src/*.c and
# src/*.h, kept by clang-format (Debian's clang-format-14; pgindent's
# pg_bsd_indent is not packaged) with the repository's .clang-format.
#   test/indent.sh          format the files in place
#   test/indent.sh --check  change nothing; list each file the formatter
#                           would change, with the difference, and fail
# The formatter is installed with apt-get when it is missing, as the other
# targets install what they need (test/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

CLANG_FORMAT=${CLANG_FORMAT:-clang-format-14}
CHECKOUT_PACKAGES=(clang-format-14)
command -v "$CLANG_FORMAT" >/dev/null || ensure_packages >&2

files=(src/*.c src/*.h)
if [ "${1:-}" != --check ]; then
	"$CLANG_FORMAT" -i "${files[@]}"
	exit 0
fi
changed=0
for f in "${files[@]}"; do
	if ! "$CLANG_FORMAT" "$f" | diff -u --label "$f" --label "$f (formatted)" "$f" -; then
		changed=$((changed + 1))
	fi
done
if [ "$changed" -gt 0 ]; then
	echo "make indent would change $changed file(s) of src/ (the differences above); run make indent" >&2
	exit 1
fi
echo "src/: ${#files[@]} files as make indent leaves them"
