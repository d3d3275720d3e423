#!/usr/bin/env bats
# Proxies, private CAs and credentials in URLs, with real parts: Debian's
# tinyproxy (with and without BasicAuth) and the test server speaking TLS
# with a certificate from a CA this suite makes with openssl (issue 19:
# finding 9 and "proxies and private CAs").  Without tinyproxy or openssl
# the tests that need them skip; .ci/deps installs both.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	setup_env
	# The machine's own CA settings would decide these tests otherwise.
	unset CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR
	start_server
	CONF=$XDG_CONFIG_HOME/ai/config
	mkdir -p "${CONF%/*}"
}
teardown() {
	local p
	for p in ${TP_PID:-} ${TLS_PID:-}; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	stop_server
}

need() {
	command -v "$1" >/dev/null || skip "$1 is not installed (.ci/deps installs it)"
}

# start_tinyproxy [USER PASS]: tinyproxy on 127.0.0.1:$TP_PORT, asking for
# BasicAuth when given a user; its log in $T/tinyproxy.log.
start_tinyproxy() {
	local i
	need tinyproxy
	TP_PORT=$(free_port)
	{
		echo "Port $TP_PORT"
		echo "Listen 127.0.0.1"
		echo "Timeout 30"
		echo "LogFile \"$T/tinyproxy.log\""
		echo "LogLevel Info"
		echo "MaxClients 20"
		echo "Allow 127.0.0.1"
		(($# == 2)) && echo "BasicAuth $1 $2"
	} >"$T/tinyproxy.conf"
	tinyproxy -d -c "$T/tinyproxy.conf" </dev/null >"$T/tinyproxy.out" 2>&1 3>&- &
	TP_PID=$!
	for ((i = 0; i < 500; i++)); do
		(exec 9<>"/dev/tcp/127.0.0.1/$TP_PORT") 2>/dev/null && return 0
		sleep 0.01
	done
	echo "tinyproxy did not start: $(cat "$T/tinyproxy.out")" >&2
	return 1
}

# make_ca NAME: a CA ($T/NAME-ca.pem) and a certificate it signed for
# 127.0.0.1 ($T/NAME-srv.pem, key $T/NAME-srv.key).
make_ca() {
	need openssl
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ai-tools test CA $1" \
		-keyout "$T/$1-ca.key" -out "$T/$1-ca.pem" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
		-keyout "$T/$1-srv.key" -out "$T/$1-srv.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$T/$1-ext"
	openssl x509 -req -days 2 -in "$T/$1-srv.csr" -CA "$T/$1-ca.pem" -CAkey "$T/$1-ca.key" \
		-CAcreateserial -extfile "$T/$1-ext" -out "$T/$1-srv.pem" 2>/dev/null
}

# start_tls_server CERT KEY: a second test server, speaking HTTPS, on
# $TLS_PORT; TLS_URL is its base URL.
start_tls_server() {
	local pf=$T/tls.port i
	"$AI_TESTSERVER" --port-file "$pf" --log "$T/tls.log" --exit-with-parent --tls-cert "$1" \
		--tls-key "$2" </dev/null >"$T/tls.out" 2>"$T/tls.err" 3>&- &
	TLS_PID=$!
	for ((i = 0; i < 500; i++)); do
		[[ -s $pf ]] && break
		sleep 0.01
	done
	TLS_PORT=$(<"$pf")
	TLS_URL=https://127.0.0.1:$TLS_PORT/v1
}

# ---- credentials in URLs (finding 9) ----

@test "proxy: user:password in the base URL reaches no message, --dry-run, -v line or ledger row" {
	base="http://bob:hunter2-SECRET@127.0.0.1:$PORT/v1"
	run --separate-stderr ai-summarize --dry-run --base-url "$base" <<<"text"
	assert_eq "$status" 0 status
	assert_contains "$output" "POST http://127.0.0.1:$PORT/v1/chat/completions"
	assert_not_contains "$output$stderr" hunter2
	run --separate-stderr ai-summarize -v --no-cache --base-url "$base" <<<"text"
	assert_eq "$status" 0 status
	assert_not_contains "$output$stderr" hunter2
	assert_contains "$(sqlite3 "$XDG_DATA_HOME/ai/usage.db" 'select host from calls')" "127.0.0.1:$PORT"
	assert_not_contains "$(sqlite3 "$XDG_DATA_HOME/ai/usage.db" 'select * from calls')" hunter2
	stop_server
	run --separate-stderr ai-summarize --no-cache --retries 0 --base-url "$base" <<<"text"
	assert_eq "$status" 75 status
	assert_contains "$stderr" "cannot connect to 127.0.0.1:$PORT"
	assert_not_contains "$stderr" hunter2
	run --separate-stderr ai-summarize --base-url "ftp://bob:hunter2-SECRET@127.0.0.1/v1" <<<"text"
	assert_eq "$status" 78 status
	assert_not_contains "$stderr" hunter2
}

@test "proxy: with BasicAuth from http_proxy, -v shows neither the password nor Proxy-Authorization" {
	start_tinyproxy bob 'pw-SECRET'
	export http_proxy="http://bob:pw-SECRET@127.0.0.1:$TP_PORT" no_proxy=example.invalid NO_PROXY=example.invalid
	run --separate-stderr ai-summarize -v --no-cache <<<"text"
	assert_eq "$status" 0 status
	assert_contains "$output" "echo:"
	assert_contains "$(last_request /v1/chat/completions | jq -r .headers.via)" tinyproxy
	assert_contains "$stderr" "> Proxy-Authorization: [redacted]"
	assert_contains "$stderr" "127.0.0.1:$TP_PORT"
	assert_not_contains "$stderr" pw-SECRET
	assert_not_contains "$stderr" "$(printf 'bob:pw-SECRET' | base64)"
	assert_not_contains "$stderr" "$KEY"
}

@test "proxy: wrong proxy credentials fail without showing them" {
	start_tinyproxy bob 'pw-SECRET'
	printf 'proxy = http://bob:WRONG-pw@127.0.0.1:%s\nno_proxy =\n' "$TP_PORT" >"$CONF"
	run --separate-stderr ai-summarize --no-cache --retries 0 <<<"text"
	# tinyproxy answers 407 and closes before reading the body: the client
	# sees the 407 (69) or, as often, the connection reset under its POST (75).
	[[ $status == 69 || $status == 75 ]] || { echo "status $status" >&2; false; }
	assert_contains "$stderr" "ai-summarize: "
	assert_not_contains "$stderr" WRONG-pw
	assert_eq "$(request_count)" 0 "requests that passed the proxy"
}

# ---- proxy settings ----

@test "proxy: proxy in ai.conf carries the request, with no_proxy emptied for loopback" {
	start_tinyproxy
	printf 'proxy = http://127.0.0.1:%s\nno_proxy =\n' "$TP_PORT" >"$CONF"
	run --separate-stderr ai-summarize --no-cache <<<"text"
	assert_eq "$status" 0 status
	assert_contains "$(last_request /v1/chat/completions | jq -r .headers.via)" tinyproxy
	grep -q "127.0.0.1:$PORT" "$T/tinyproxy.log"
}

@test "proxy: a proxy in a profile beats http_proxy, as ~/.curlrc does for curl" {
	start_tinyproxy
	dead=$(free_port)
	printf '[profile corp]\nproxy = http://127.0.0.1:%s\nno_proxy = example.invalid\n' "$TP_PORT" >"$CONF"
	# http_proxy names a dead proxy: were it used, the request would fail.
	http_proxy=http://127.0.0.1:$dead run --separate-stderr ai-summarize -p corp --no-cache --retries 0 <<<"text"
	assert_eq "$status" 0 status
	assert_contains "$(last_request /v1/chat/completions | jq -r .headers.via)" tinyproxy
	# Without the profile, http_proxy is used (and loopback is kept off it by default).
	http_proxy=http://127.0.0.1:$dead no_proxy=example.invalid run --separate-stderr ai-summarize --no-cache --retries 0 <<<"text 2"
	assert_eq "$status" 75 status
	assert_eq "$(request_count /v1/chat/completions)" 1 "requests"
}

@test "proxy: loopback never goes through the proxy unless no_proxy says so" {
	dead=$(free_port)
	unset NO_PROXY no_proxy
	export http_proxy=http://127.0.0.1:$dead https_proxy=http://127.0.0.1:$dead
	run --separate-stderr ai-summarize --no-cache --retries 0 <<<"text"
	assert_eq "$status" 0 "status (a dead proxy for 127.0.0.1: it was not used)"
	printf 'proxy = http://127.0.0.1:%s\n' "$dead" >"$CONF"
	unset http_proxy https_proxy
	run --separate-stderr ai-summarize --no-cache --retries 0 --base-url "http://localhost:$PORT/v1" <<<"text 2"
	assert_eq "$status" 0 "status (localhost neither)"
	assert_eq "$(request_count /v1/chat/completions)" 2 "requests served directly"
}

@test "proxy: NO_PROXY from the environment replaces the loopback default" {
	start_tinyproxy
	printf 'proxy = http://127.0.0.1:%s\n' "$TP_PORT" >"$CONF"
	unset no_proxy
	NO_PROXY=example.invalid run --separate-stderr ai-summarize --no-cache <<<"text"
	assert_eq "$status" 0 status
	assert_contains "$(last_request /v1/chat/completions | jq -r .headers.via)" tinyproxy
}

@test "proxy: a bad proxy or no_proxy value is a configuration error" {
	printf 'proxy = http://a b\n' >"$CONF"
	run --separate-stderr ai-summarize --no-cache <<<"text"
	assert_eq "$status" 78 status
	assert_contains "$stderr" "bad value 'http://a b' for proxy"
}

# ---- private CAs ----

@test "proxy: a TLS server on a private CA is reached with ca_cert, in ai.conf and in a profile" {
	make_ca priv
	start_tls_server "$T/priv-srv.pem" "$T/priv-srv.key"
	export OPENAI_BASE_URL=$TLS_URL
	printf 'ca_cert = %s\n' "$T/priv-ca.pem" >"$CONF"
	run --separate-stderr ai-summarize --no-cache <<<"text"
	assert_eq "$status" 0 status
	assert_contains "$output" "echo:"
	printf '[profile lab]\nca_cert = %s\n' "$T/priv-ca.pem" >"$CONF"
	# The file's ca_cert beats the machine-wide variables, as ~/.curlrc does for curl.
	CURL_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt run --separate-stderr ai-summarize -p lab --no-cache <<<"text 2"
	assert_eq "$status" 0 status
}

@test "proxy: CURL_CA_BUNDLE and SSL_CERT_FILE are honoured as curl honours them" {
	make_ca priv
	start_tls_server "$T/priv-srv.pem" "$T/priv-srv.key"
	export OPENAI_BASE_URL=$TLS_URL
	CURL_CA_BUNDLE=$T/priv-ca.pem run --separate-stderr ai-summarize --no-cache <<<"text"
	assert_eq "$status" 0 "status with CURL_CA_BUNDLE"
	SSL_CERT_FILE=$T/priv-ca.pem run --separate-stderr ai-summarize --no-cache <<<"text 2"
	assert_eq "$status" 0 "status with SSL_CERT_FILE"
}

@test "proxy: TLS to a private CA through tinyproxy (CONNECT)" {
	make_ca priv
	start_tls_server "$T/priv-srv.pem" "$T/priv-srv.key"
	start_tinyproxy
	export OPENAI_BASE_URL=$TLS_URL https_proxy=http://127.0.0.1:$TP_PORT
	printf 'ca_cert = %s\nno_proxy =\n' "$T/priv-ca.pem" >"$CONF"
	run --separate-stderr ai-summarize --no-cache <<<"text"
	assert_eq "$status" 0 status
	grep -q "CONNECT.*127.0.0.1:$TLS_PORT" "$T/tinyproxy.log"
}

@test "proxy: a certificate from another CA is refused, the error names the CA file, and no retry" {
	make_ca priv
	make_ca other
	start_tls_server "$T/priv-srv.pem" "$T/priv-srv.key"
	export OPENAI_BASE_URL=$TLS_URL
	printf 'ca_cert = %s\n' "$T/other-ca.pem" >"$CONF"
	run --separate-stderr ai-summarize -v --no-cache --retries 2 <<<"text"
	assert_contains "$stderr" "ai-summarize: "
	assert_contains "$stderr" "(CA file '$T/other-ca.pem')"
	assert_eq "$(grep -c '^\* Connected to' <<<"$stderr")" 1 "connections (no retry)"
	assert_eq "$(wc -l <"$T/tls.log")" 0 "requests the server received"
	assert_eq "$status" 78 "status (a certificate failure is permanent)"
}

@test "proxy: a self-signed server is refused with 78, never retried, the hint names the default CA file" {
	need openssl
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
		-addext subjectAltName=IP:127.0.0.1 -keyout "$T/self.key" -out "$T/self.pem" 2>/dev/null
	start_tls_server "$T/self.pem" "$T/self.key"
	export OPENAI_BASE_URL=$TLS_URL
	run --separate-stderr ai-summarize -v --no-cache --retries 2 <<<"text"
	assert_contains "$stderr" "(CA file '"
	assert_contains "$stderr" "a private CA goes in ca_cert or CURL_CA_BUNDLE)"
	assert_eq "$(grep -c '^\* Connected to' <<<"$stderr")" 1 "connections (no retry)"
	assert_eq "$status" 78 "status (a certificate failure is permanent)"
}
