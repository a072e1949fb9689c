#!/usr/bin/env bash
# Make a Docker Engine with the gVisor runtime answer on this machine.
#
# Idempotent: where an engine already answers it only checks it and reports
# its runtimes (and, as root, makes sure runsc is registered as below, which
# dockerd reloads on SIGHUP without stopping containers); otherwise it
# installs docker.io and runsc from Debian's packages, registers runsc and
# starts dockerd with no bridge and no iptables rules: sandbox containers have
# no network at all, and this script never creates one.
#
# runsc's arguments: --network=none (this runsc refuses containers without a
# network otherwise) and --oci-seccomp (apply the engine's seccomp profile
# inside gVisor too; without it unshare(CLONE_NEWUSER) succeeds in the sandbox).
set -euo pipefail

DAEMON_JSON=/etc/docker/daemon.json
DOCKERD_LOG=${DSR_DOCKERD_LOG:-/var/log/dsr-dockerd.log}
WAIT_SECONDS=${DSR_ENGINE_WAIT:-60}

say() { printf 'engine-setup: %s\n' "$*" >&2; }

engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

report() {
  local version runtimes
  version=$(docker version --format '{{.Server.Version}}')
  runtimes=$(docker info --format '{{range $name, $_ := .Runtimes}}{{$name}} {{end}}')
  say "engine ${version} answers; runtimes: ${runtimes}"
  case " ${runtimes} " in
    *" runsc "*) ;;
    *) say "warning: runsc is not registered; sandbox runs will use runc" ;;
  esac
}

register_runsc() {
  # Prints "changed" when daemon.json was rewritten.
  mkdir -p /etc/docker
  python3 - "$DAEMON_JSON" <<'PY'
import json, os, sys
path = sys.argv[1]
conf = {}
if os.path.exists(path):
    with open(path) as f:
        text = f.read().strip()
    conf = json.loads(text) if text else {}
want = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none", "--oci-seccomp"]}
runtimes = conf.setdefault("runtimes", {})
if runtimes.get("runsc") != want:
    runtimes["runsc"] = want
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(conf, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    print("changed")
PY
}

# The sandbox's seccomp profile: the engine's own default profile (taken from
# Debian's source package of this engine, never kept in this repository) with
# ptrace, process_vm_readv/writev and io_uring removed. Containers get it
# through the backend; under gVisor --oci-seccomp applies it inside the sandbox.
SECCOMP_PROFILE=${DSR_SECCOMP_PROFILE:-/etc/dsr/seccomp.json}
ensure_seccomp_profile() {
  [ -s "$SECCOMP_PROFILE" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    say "warning: ${SECCOMP_PROFILE} is missing; run this script as root to make it"
    return 0
  fi
  local tmp deb
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq golang-github-docker-docker-dev >/dev/null 2>&1) || {
    apt-get update -qq && (cd "$tmp" && apt-get download -qq golang-github-docker-docker-dev)
  }
  deb=$(ls "$tmp"/golang-github-docker-docker-dev_*.deb)
  dpkg-deb --fsys-tarfile "$deb" \
    | tar -xO ./usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json \
    > "$tmp/default.json"
  mkdir -p "$(dirname "$SECCOMP_PROFILE")"
  python3 - "$tmp/default.json" "$SECCOMP_PROFILE" <<'PY'
import json, os, sys
source, target = sys.argv[1], sys.argv[2]
DENY = {"ptrace", "process_vm_readv", "process_vm_writev",
        "io_uring_setup", "io_uring_enter", "io_uring_register"}
profile = json.load(open(source))
for rule in profile["syscalls"]:
    if rule.get("action") == "SCMP_ACT_ALLOW":
        rule["names"] = [n for n in rule["names"] if n not in DENY]
profile["syscalls"] = [r for r in profile["syscalls"] if r["names"]]
allowed = {n for r in profile["syscalls"] if r.get("action") == "SCMP_ACT_ALLOW"
           for n in r["names"]}
assert not allowed & DENY and len(allowed) > 250, "unexpected engine profile"
tmp = target + ".tmp"
with open(tmp, "w") as f:
    json.dump(profile, f, indent=1)
os.replace(tmp, target)
PY
  rm -rf "$tmp"
  say "wrote the sandbox seccomp profile ${SECCOMP_PROFILE}"
}

if engine_answers; then
  ensure_seccomp_profile
  if [ "$(id -u)" = 0 ] && [ -x /usr/bin/runsc ] && [ "$(register_runsc)" = changed ]; then
    say "registered runsc in ${DAEMON_JSON}; reloading dockerd"
    pkill -HUP -x dockerd
    sleep 1
  fi
  report
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  say "no engine answers and this is not root: start dockerd yourself or rerun as root"
  exit 1
fi

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
[ -x /usr/bin/runsc ] || need+=(runsc)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends: docker.io recommends tools (e.g. cgroupfs-mount,
  # git) that this machine does not need.
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Register runsc, keeping any other settings an operator put in daemon.json.
if [ "$(register_runsc)" = changed ]; then
  say "registered runsc in ${DAEMON_JSON}"
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  say "starting dockerd (--bridge=none --iptables=false), log in ${DOCKERD_LOG}"
  # setsid: the engine outlives the shell (and the make target) that started it.
  setsid dockerd --bridge=none --iptables=false --ip6tables=false \
    >>"$DOCKERD_LOG" 2>&1 </dev/null &
fi

for _ in $(seq "$WAIT_SECONDS"); do
  if engine_answers; then
    ensure_seccomp_profile
    report
    exit 0
  fi
  sleep 1
done
say "dockerd did not answer within ${WAIT_SECONDS}s; last lines of ${DOCKERD_LOG}:"
tail -n 20 "$DOCKERD_LOG" >&2 || true
exit 1
