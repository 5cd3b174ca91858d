#!/bin/sh
# hardening.sh BINARY... - each binary is built hardened (Makefile HARDEN,
# LDHARDEN): a position-independent executable, relocations read-only and
# bound at start (RELRO, BIND_NOW), stack canaries and fortified libc calls
# in use. Names what is missing in which binary; exit 1 if anything is.
set -u
rc=0
for b in "$@"; do
	missing=""
	head=$(readelf -h "$b") || { echo "hardening: cannot read $b"; rc=1; continue; }
	dyn=$(readelf -d "$b")
	syms=$(readelf --dyn-syms -W "$b")
	echo "$head" | grep -q 'Type:.*DYN' || missing="$missing PIE"
	readelf -l "$b" | grep -q GNU_RELRO || missing="$missing RELRO"
	echo "$dyn" | grep -Eq 'BIND_NOW|FLAGS_1.*NOW' || missing="$missing BIND_NOW"
	echo "$syms" | grep -q '__stack_chk_fail' || missing="$missing stack-protector"
	echo "$syms" | grep -Eq '__[a-z]+_chk(@|$| )' || missing="$missing FORTIFY"
	if [ -n "$missing" ]; then
		echo "hardening: $b lacks:$missing"
		rc=1
	fi
done
[ $rc -eq 0 ] && echo "hardening: $# binaries: PIE, RELRO, BIND_NOW, stack protector, FORTIFY"
exit $rc
