#!/usr/bin/env bash
# What the CMS integration suites (tests/integrations) need, installed where this machine allows it.
# Called by `scripts/setup.sh --dev`; idempotent; safe to run alone.
#   WordPress: Debian's wordpress 6.1, PHP 8.2 and MariaDB (apt; needs root). Without root or apt the
#              WordPress tests skip with the reason, and fail under CI=true.
#   Wagtail:   integrations/wagtail with its test extras, into $VENV (pip).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
WORDPRESS_PACKAGES=(wordpress php-cli php-mysql php-gd php-curl php-xml php-mbstring mariadb-server)

need_apt=0
for cmd in php mariadb-install-db; do command -v "$cmd" >/dev/null 2>&1 || need_apt=1; done
[ -x /usr/sbin/mariadbd ] || command -v mariadbd >/dev/null 2>&1 || need_apt=1
[ -f /usr/share/wordpress/wp-load.php ] || need_apt=1
if [ "$need_apt" = 1 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing WordPress, PHP and MariaDB from Debian's packages (about 30 s)"
        apt-get -o DPkg::Lock::Timeout=600 update -qq
        # policy-rc.d (present in containers) keeps apt from starting Apache/MariaDB system services;
        # the tests start their own MariaDB and PHP server in a scratch directory.
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
            "${WORDPRESS_PACKAGES[@]}" >/dev/null
    else
        echo "WordPress tests will skip: not root or no apt-get (apt-get install ${WORDPRESS_PACKAGES[*]})" >&2
    fi
fi

"$VENV/bin/python" -m pip --disable-pip-version-check --quiet install -e integrations/wagtail
