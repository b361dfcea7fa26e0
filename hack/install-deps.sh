#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine: the Debian
# packages listed in hack/packages-debian.txt and the Python virtualenv with
# the project and its dev tools. Idempotent: a second run changes nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
. "$here/lib.sh"

mapfile -t wanted < <(grep -v '^\s*#' "$here/packages-debian.txt" | awk 'NF' | sort -u)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep 'install ok installed' >/dev/null || missing+=("$pkg")
done
if ((${#missing[@]})); then
  step "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  # policy-rc.d keeps package scripts from starting services (containerd): the
  # cluster scripts run their own instances with their own state directories.
  as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  as_root rm -f /usr/sbin/policy-rc.d
else
  step "Debian packages present"
fi

venv="$top/.venv"
stamp="$venv/.installed-$(sha256sum "$top/pyproject.toml" | cut -c1-16)"
if [[ ! -e $stamp ]]; then
  step "installing the Python environment in .venv"
  [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -e "$top[dev]"
  rm -f "$venv"/.installed-*
  touch "$stamp"
else
  step "Python environment up to date"
fi
