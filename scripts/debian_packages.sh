# Sourced by the scripts that need Debian packages (setup_env.sh, test.sh, build_pdf.sh): one way to
# install what is missing. `install_missing WHY required|optional PACKAGE...`: nothing to do without
# packages; as root with apt-get, installs them; otherwise prints the command to run, and exits 1 if
# they are `required` (the caller cannot go on without them) or goes on if `optional`.
install_missing() {
  local why=$1 mode=$2
  shift 2
  [ "$#" -gt 0 ] || return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing $* from Debian's packages ($why)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "!! missing Debian packages ($why): run 'sudo apt-get install $*'" >&2
    [ "$mode" = optional ] || exit 1
  fi
}
