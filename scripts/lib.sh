# Helpers sourced by scripts/ensure-services and scripts/test (not run directly).
# shellcheck shell=bash

# parse_url URL DEFAULT_PORT
# Splits scheme://[user[:password]@]host[:port][/path][?query] into URL_USER,
# URL_PASS, URL_HOST, URL_PORT and URL_PATH (percent-escapes are not decoded,
# so keep passwords in these URLs plain).
# shellcheck disable=SC2034 # the URL_* variables are this function's output
parse_url() {
    local rest=${1#*://} auth="" port=""
    rest=${rest%%\?*}
    rest=${rest%%#*}
    URL_PATH=""
    if [[ $rest == */* ]]; then
        URL_PATH=${rest#*/}
        rest=${rest%%/*}
    fi
    if [[ $rest == *@* ]]; then
        auth=${rest%@*}
        rest=${rest##*@}
    fi
    URL_USER=${auth%%:*}
    URL_PASS=""
    if [[ $auth == *:* ]]; then URL_PASS=${auth#*:}; fi
    if [[ $rest == \[* ]]; then # [::1]:5432
        URL_HOST=${rest%%]*}
        URL_HOST=${URL_HOST#[}
        rest=${rest#*]}
        port=${rest#:}
    else
        URL_HOST=${rest%%:*}
        if [[ $rest == *:* ]]; then port=${rest#*:}; fi
    fi
    URL_PORT=${port:-$2}
}

# is_local_host HOST: true for loopback names and for no host (a Unix socket).
is_local_host() {
    case $1 in
        "" | localhost | 127.* | ::1) return 0 ;;
        *) return 1 ;;
    esac
}
