#!/usr/bin/env bash
# Entry point modelled on the official redis image's.
set -Eeuo pipefail

if [[ ${1:0:1} == '-' || $1 == *.conf ]]; then
  set -- redis-server "$@"
fi

if [[ $1 == redis-server && $(id -u) == 0 ]]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "${BASH_SOURCE[0]}" "$@"
fi

# The official image's server defaults to protected-mode no; Debian's binary defaults to yes.
# Add it unless a config file or an explicit --protected-mode decides.
if [[ $1 == redis-server ]]; then
  has_conf=0
  if [[ $# -ge 2 && ${2:0:1} != '-' ]]; then
    has_conf=1
  fi
  if ((!has_conf)) && [[ " $* " != *" --protected-mode "* ]]; then
    set -- "$@" --protected-mode no
  fi
fi

exec "$@"
