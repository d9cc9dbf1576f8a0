set -e
for f in *.log; do gzip "$f" && echo done; done
if [ -n "$X" ]; then eval "$X"; fi
