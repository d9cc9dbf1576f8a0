bash -c 'echo $(date) > /dev/sda' ; x=$((1+2)); cat <<EOF
hi ${HOME:-/root}
EOF
