#!/bin/sh
# The second corpus of experiments/sweep-kjv.toml: the King James Bible (4.4 MB of text),
# from Debian's bible-kjv-text (the compressed text) and bible-kjv (its reader).
# Writes runs/corpora/kjv.txt; run from the repository root. Needs apt-get and dpkg-deb.
set -eu
out=runs/corpora
mkdir -p "$out/kjv-deb"
cd "$out/kjv-deb"
apt-get download bible-kjv-text bible-kjv
for deb in ./*.deb; do dpkg-deb -x "$deb" root; done
root/usr/bin/bible -p root/usr/lib -f "Gen1:1-Rev22:21" > ../kjv.txt.tmp
cd ..
mv kjv.txt.tmp kjv.txt
sha256sum kjv.txt
