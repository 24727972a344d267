# bash completion for natlink (generated from its parser by natlink.shellfiles)
_natlink() {
    local cur prev cmd opts i
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    case "$prev" in
        -c|--config|--root|--token-file|--tls-cert|--tls-key) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
    esac
    cmd=""
    for (( i=1; i < COMP_CWORD; i++ )); do
        case "${COMP_WORDS[i]}" in
            -c|--config) (( i++ )) ;;
            -*) ;;
            *) cmd="${COMP_WORDS[i]}"; break ;;
        esac
    done
    if [[ -z "$cmd" ]]; then
        COMPREPLY=( $(compgen -W "init check-config doctor map unmap mappings ip ddns probe run reload status alert reflector demo -h --help --version -c --config --json -v --verbose -q --quiet" -- "$cur") )
        return
    fi
    case "$cmd" in
        init) opts="-h --help --systemd --shell --root" ;;
        check-config) opts="-h --help" ;;
        doctor) opts="-h --help --measure-nat-timeout --max --no-hairpin" ;;
        map) opts="-h --help --dry-run" ;;
        unmap) opts="-h --help" ;;
        mappings) opts="-h --help" ;;
        ip) opts="-h --help" ;;
        ddns) opts="-h --help --force" ;;
        probe) opts="-h --help --no-listen --save" ;;
        run) opts="-h --help --once --no-events" ;;
        reload) opts="-h --help --pid --timeout" ;;
        status) opts="-h --help" ;;
        alert) opts="-h --help --test" ;;
        reflector) opts="-h --help --listen --token-file --rate --token-rate --max-ports --max-timeout --max-body --max-connections --connections-per-address --request-timeout --hold-per-client --hold-total --hold-max --tls-cert --tls-key --insecure-http --trusted-proxy --metrics" ;;
        demo) opts="-h --help --keep --down --scenario" ;;
        *) opts="" ;;
    esac
    COMPREPLY=( $(compgen -W "$opts -h --help --version -c --config --json -v --verbose -q --quiet" -- "$cur") )
}
complete -o default -F _natlink natlink
