#!/bin/bash
# A real Redmine (Debian 12 package, SQLite, thin) on 127.0.0.1 for the ticket integration test.
#
#   redmine_on_loopback.sh install          apt-get install + configure (root; once per machine)
#   redmine_on_loopback.sh start PORT PIDF  start thin on 127.0.0.1:PORT, wait until it answers
#
# KNOWNFIX_REDMINE=off declines (for machines where apt must not run).
# Exit 3 means "cannot run here" (not root and not installed, no apt, install failed); the last
# line on stderr says why, and the test prints it as its skip reason.
# Pitfalls handled (see ../shared/notes/redmine-on-loopback.sh): dbconfig-common must be
# preseeded for sqlite3; Debian's Gemfile.lock lacks thin unless regenerated after installing it;
# the admin must not be forced to change the password; everything runs as www-data.
set -euo pipefail
API_KEY=${API_KEY:-0123456789abcdef0123456789abcdef01234567}   # <=40 chars, becomes admin's API key
ADMIN_PW=${ADMIN_PW:-admin-pass-123}                             # >=8 chars (Redmine minimum)
RM=/usr/share/redmine
STAMP=/var/lib/redmine/default/knownfix-test-configured
ASWWW=(setpriv --reuid=www-data --regid=www-data --init-groups
       env HOME=/tmp REDMINE_INSTANCE=default RAILS_ENV=production)

cannot() { echo "cannot run Redmine here: $*" >&2; exit 3; }

installed() { dpkg-query -W -f='${Status}\n' redmine redmine-sqlite thin 2>/dev/null \
              | grep -c 'install ok installed' | grep -qx 3; }

install() {
  [ "${KNOWNFIX_REDMINE:-}" != off ] || cannot "KNOWNFIX_REDMINE=off is set"
  if ! installed; then
    [ "$(id -u)" = 0 ] || cannot "redmine is not installed and installing it needs root"
    command -v apt-get >/dev/null || cannot "no apt-get (not a Debian system)"
    debconf-set-selections <<'EOF'
redmine redmine/current-instances string default
redmine redmine/instances/default/dbconfig-install boolean true
redmine redmine/instances/default/database-type select sqlite3
redmine redmine/instances/default/default-language select en
EOF
    export DEBIAN_FRONTEND=noninteractive
    # the package lists are usually fresh enough; update only when the first try fails
    apt-get install -y -q --no-install-recommends redmine redmine-sqlite thin >/tmp/redmine-apt.log 2>&1 \
      || { apt-get update -qq >>/tmp/redmine-apt.log 2>&1 \
           && apt-get install -y -q --no-install-recommends redmine redmine-sqlite thin \
              >>/tmp/redmine-apt.log 2>&1; } \
      || cannot "apt-get install redmine redmine-sqlite thin failed (see /tmp/redmine-apt.log)"
  fi
  if ! grep -q '^    thin ' /var/lib/redmine/Gemfile.lock 2>/dev/null; then
    [ "$(id -u)" = 0 ] || cannot "Gemfile.lock lacks thin and regenerating it needs root"
    (cd $RM && rm -f /var/lib/redmine/Gemfile.lock && bundle install --local --quiet \
       && chown www-data:www-data /var/lib/redmine/Gemfile.lock) >/dev/null 2>&1 \
      || cannot "bundle install --local (to add thin to Gemfile.lock) failed"
  fi
  if [ "$(cat "$STAMP" 2>/dev/null)" != "$API_KEY" ]; then
    [ "$(id -u)" = 0 ] || cannot "configuring Redmine needs root (to run as www-data)"
    cd $RM
    "${ASWWW[@]}" ADMIN_PW="$ADMIN_PW" API_KEY="$API_KEY" bundle exec rails runner '
      Setting.rest_api_enabled = "1"
      u = User.find_by_login("admin")
      u.password = u.password_confirmation = ENV["ADMIN_PW"]
      u.must_change_passwd = false
      u.save!
      u.api_key
      u.api_token.update_column(:value, ENV["API_KEY"])' >/dev/null \
      || cannot "rails runner (enable REST API, set the admin API key) failed"
    echo "$API_KEY" > "$STAMP"
  fi
}

start() {
  local port=$1 pidfile=$2 log=/var/log/redmine/default/thin-$1.log
  [ "$(id -u)" = 0 ] || cannot "starting thin as www-data needs root"
  cd $RM
  setsid "${ASWWW[@]}" bundle exec thin start -a 127.0.0.1 -p "$port" -e production -R config.ru \
      > "$log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  for _ in $(seq 1 480); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && return 0
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -5 "$log" >&2; cannot "thin exited at start"; }
    sleep 0.25
  done
  cannot "thin did not answer on 127.0.0.1:$port within 120 s"
}

case "${1:-}" in
  install) install ;;
  start) start "$2" "$3" ;;
  *) echo "usage: $0 install | start PORT PIDFILE" >&2; exit 2 ;;
esac
