#!/bin/sh
# Installs, updates or removes the agent-kit desktop agent on Linux (run as root).
#
#   install.sh install   BUILD     # BUILD: the one-folder build (folder holding agent-kit)
#   install.sh update    BUILD     # swaps the files, restarts running monitors
#   install.sh uninstall [--purge] # --purge also deletes every user's ~/.local/state/agent-kit
#
# Puts the program in /opt/agent-kit, a link in /usr/local/bin, and starts `agent-kit monitor`
# with every user session: the systemd user unit when systemd runs, else the XDG autostart entry.
# DESTDIR=/some/root installs under that root instead (packaging, tests); it never touches the
# running system then. See docs/packaging.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=${DESTDIR:-}
opt="$root/opt/agent-kit"
unit_dir="$root/etc/systemd/user"
autostart_dir="$root/etc/xdg/autostart"
live() { [ -z "$root" ] && [ -d /run/systemd/system ]; }

usage() { echo "usage: $0 install|update BUILD_DIR | uninstall [--purge]" >&2; exit 2; }

copy_build() {
  [ -x "$1/agent-kit" ] || { echo "$0: $1 is not the one-folder build (no agent-kit in it)" >&2; exit 2; }
  mkdir -p "$root/opt" "$root/usr/local/bin"
  rm -rf "$opt.new"
  cp -a "$1" "$opt.new"
  "$opt.new/agent-kit" --version >/dev/null || { echo "$0: the new build does not start" >&2; exit 1; }
  rm -rf "$opt.old"
  [ -d "$opt" ] && mv "$opt" "$opt.old"
  mv "$opt.new" "$opt"      # running monitors keep the old inode until restarted
  rm -rf "$opt.old"
  ln -sfn /opt/agent-kit/agent-kit "$root/usr/local/bin/agent-kit"
}

for_each_session() {  # run `systemctl --user ARGS` in every logged-in user's manager
  live || return 0
  for uid in $(loginctl list-users --no-legend 2>/dev/null | awk '{print $1}'); do
    user=$(id -nu "$uid" 2>/dev/null) || continue
    systemctl --user -M "$user@" "$@" 2>/dev/null || true
  done
}

case "${1:-}" in
  install|update)
    [ $# -eq 2 ] || usage
    copy_build "$2"
    if live || [ -n "$root" ]; then
      install -D -m 644 "$here/agent-kit-monitor.service" "$unit_dir/agent-kit-monitor.service"
    fi
    if live; then
      systemctl --global enable agent-kit-monitor.service
      for_each_session daemon-reload
      for_each_session restart agent-kit-monitor.service
    else
      # No systemd user manager (or a DESTDIR for a package, which ships both): the desktop
      # session starts the monitor at login; X-systemd-skip keeps systemd sessions to the unit.
      install -D -m 644 "$here/agent-kit-monitor.desktop" "$autostart_dir/agent-kit-monitor.desktop"
    fi
    echo "agent-kit: $1 done in /opt/agent-kit; the monitor starts with every user session."
    ;;
  uninstall)
    [ $# -le 2 ] || usage
    if live; then
      for_each_session stop agent-kit-monitor.service
      systemctl --global disable agent-kit-monitor.service || true
    fi
    rm -f "$unit_dir/agent-kit-monitor.service" "$autostart_dir/agent-kit-monitor.desktop"
    rm -rf "$opt" "$opt.new" "$opt.old"
    rm -f "$root/usr/local/bin/agent-kit"
    if [ "${2:-}" = --purge ]; then
      for home in "$root"/home/* "$root/root"; do
        rm -rf "$home/.local/state/agent-kit"
      done
    fi
    echo "agent-kit removed."
    ;;
  *) usage ;;
esac
