#!/usr/bin/env bash
# Entry point modelled on the official nginx image's: render templates, then exec nginx.
set -Eeuo pipefail

if [[ $1 == nginx || $1 == nginx-debug ]]; then
  shopt -s nullglob
  templates=(/etc/nginx/templates/*.template)
  if ((${#templates[@]} > 0)); then
    # Only variables that are set in the environment are substituted (nginx's own $vars stay).
    defined=""
    while IFS= read -r name; do
      defined+="\${$name} "
    done < <(compgen -e)
    for t in "${templates[@]}"; do
      out="/etc/nginx/conf.d/$(basename "$t" .template)"
      echo "$0: rendering $t to $out"
      envsubst "$defined" <"$t" >"$out"
    done
  fi
fi

exec "$@"
