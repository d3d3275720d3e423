# ai-tools: one non-recursive Makefile.
#
#   make               build every program into bin/ (installs missing packages first, as root)
#   make check         unit tests, the fuzz corpora replayed, then the bats suites
#   make sanitize      the same on ASan+UBSan builds: gcc's in build/san, then
#                      clang's (make sanitize-clang, build/san-clang), which also
#                      catches what gcc's does not (pointer overflow on NULL + 0)
#   make bench         benchmarks (print figures, never fail)
#   make fuzz          every libFuzzer harness for FUZZ_SECONDS each on its seed
#                      corpus (clang); stops at the first sanitizer report or crash
#   make lint          mandoc -Tlint, the banned-call grep, and nm over libai.a:
#                      common/ never prints, exits, reads stdin or calls cmd/lib/
#   make install       PREFIX=/usr/local DESTDIR=
.SUFFIXES:

VERSION   = 0.1.0
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
DATADIR  ?= $(PREFIX)/share
CC       ?= cc
O        ?= build
BIN      ?= bin
PKGS      = libcurl json-c libsodium sqlite3 hiredis libxml-2.0
CFLAGS   ?= -O2 -g
WFLAGS    = -std=c11 -Wall -Wextra -pedantic -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral

# The packages come first: .ci/deps installs what is missing (as root) or
# names the apt-get line to run, before pkg-config is asked for flags below,
# so that one make on a fresh machine installs and builds.  make check and
# the other test goals need the test packages too; clean needs none.  A stamp
# per build directory keeps it to one look per build.
TEST_GOALS = check sanitize sanitize-clang bench fuzz lint units
NODEP_GOALS = clean uninstall
DEPS_GROUP := $(if $(filter $(TEST_GOALS) %/ai-testserver,$(MAKECMDGOALS)),test,build)
NEED_DEPS := $(filter-out $(NODEP_GOALS),$(or $(MAKECMDGOALS),all))
ifneq ($(NEED_DEPS),)
DEPS_STAMP := $(O)/.deps-$(DEPS_GROUP)
DEPS_ERR := $(shell [ $(DEPS_STAMP) -nt .ci/deps ] || { sh .ci/deps $(DEPS_GROUP) && \
	mkdir -p $(O) && touch $(DEPS_STAMP); })
$(if $(DEPS_ERR),$(error $(DEPS_ERR)))
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libcurl is not linked: common/net/http.c loads it with dlopen when a request
# first goes out, so a program that never talks to the network starts fast.
PKG_LIBS   := $(shell pkg-config --libs $(filter-out libcurl,$(PKGS)) 2>/dev/null)
ifneq ($(NEED_DEPS),)
ifneq ($(shell pkg-config --exists $(PKGS) && echo ok),ok)
$(error pkg-config finds no $(PKGS); install their development packages (on Debian: sh .ci/deps build))
endif
endif
ALL_CFLAGS = $(WFLAGS) $(CFLAGS) $(SANFLAGS) -Icommon -Icmd $(PKG_CFLAGS) -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS)
LIBS      = $(PKG_LIBS) -ldl -lm -lpthread

# Two libraries, one rule each (see HACKING): libai.a is common/, which never
# prints, exits or reads stdin; libcmd.a is cmd/lib/, what every main() shares.
COMMON_SRC := $(sort $(wildcard common/*.c common/*/*.c))
COMMON_OBJ := $(COMMON_SRC:%.c=$(O)/%.o)
CMDLIB_SRC := $(sort $(wildcard cmd/lib/*.c))
CMDLIB_OBJ := $(CMDLIB_SRC:%.c=$(O)/%.o)
CMD_SRC    := $(sort $(wildcard cmd/ai-*.c))
PROGS      := $(CMD_SRC:cmd/%.c=$(BIN)/%)
UNIT_SRC   := $(sort $(wildcard tests/unit/t_*.c))
UNITS      := $(UNIT_SRC:tests/unit/%.c=$(O)/tests/%)
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
REPLAYS    := $(FUZZ_SRC:tests/fuzz/%.c=$(O)/tests/%)
SERVER     := $(O)/tests/ai-testserver
LIBAI      := $(O)/libai.a
LIBCMD     := $(O)/libcmd.a
MAN1       := $(sort $(wildcard man/*.1))
MAN5       := $(sort $(wildcard man/*.5))
MAN7       := $(sort $(wildcard man/*.7))

all: $(PROGS)

# No object is an intermediate file to delete after the link: a later make
# (make install PREFIX=..., make check) would otherwise compile it again.
.SECONDARY: $(CMD_SRC:%.c=$(O)/%.o) $(UNIT_SRC:%.c=$(O)/%.o) $(CMDLIB_OBJ)

# The flags an object was built with are part of what it depends on: a
# build directory reused with other flags (a sanitizer added, recovery
# turned off) is rebuilt rather than mixed.
FLAGS_NOW := $(CC) $(WFLAGS) $(CFLAGS) $(SANFLAGS)
ifneq ($(NEED_DEPS),)
ifneq ($(FLAGS_NOW),$(file <$(O)/.flags))
$(shell mkdir -p $(O))
$(file >$(O)/.flags,$(FLAGS_NOW))
endif
endif

$(O)/%.o: %.c $(O)/.flags
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBAI): $(COMMON_OBJ)
	@rm -f $@
	$(AR) rcs $@ $(COMMON_OBJ)

$(LIBCMD): $(CMDLIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $(CMDLIB_OBJ)

$(BIN)/%: $(O)/cmd/%.o $(LIBCMD) $(LIBAI)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBCMD) $(LIBAI) $(LIBS)

$(O)/tests/t_%: $(O)/tests/unit/t_%.o $(LIBCMD) $(LIBAI)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< -Wl,--start-group $(LIBCMD) $(LIBAI) -Wl,--end-group $(LIBS)

# Each fuzz harness also links without libFuzzer, against a main that runs
# it once per file: make check replays every seed and every kept crash.
$(O)/tests/fuzz_%: $(O)/tests/fuzz/fuzz_%.o $(O)/tests/fuzz/replay.o $(LIBAI)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(O)/tests/fuzz/replay.o $(LIBAI) $(LIBS)

.SECONDARY: $(FUZZ_SRC:%.c=$(O)/%.o) $(O)/tests/fuzz/replay.o

$(SERVER): $(O)/tests/server/ai-testserver.o
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $$(pkg-config --libs libmicrohttpd json-c) -lpthread

$(O)/tests/server/ai-testserver.o: tests/server/ai-testserver.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $$(pkg-config --cflags libmicrohttpd) -c -o $@ $<

# The fault-injecting MCP server mcp.bats runs ai-agent against.
MCPFAULT := $(O)/tests/mcp-faultserver

$(MCPFAULT): tests/server/mcp-faultserver.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $$(pkg-config --libs json-c)

# The reference MCP servers from npm, at pinned versions, in the build tree
# (never global), one copy for every build directory: mcp.bats runs ai-agent
# against them.
MCP_NPM := @modelcontextprotocol/server-everything@2026.8.31 @modelcontextprotocol/server-filesystem@2026.8.31

# Without npm or the registry, make check goes on: mcp.bats then fails those
# tests in CI (root, or $CI set) and skips them elsewhere.
build/mcp-npm/.done:
	@mkdir -p $(@D)
	@if npm install --prefix $(@D) --no-save --no-audit --no-fund --loglevel=error $(MCP_NPM); then \
		touch $@; \
	else \
		echo "make: cannot install the reference MCP servers ($(MCP_NPM)) into $(@D)" >&2; \
	fi

mcp-servers: build/mcp-npm/.done

units: $(UNITS) $(REPLAYS) $(MCPFAULT)

check: all $(UNITS) $(REPLAYS) $(SERVER) $(MCPFAULT) build/mcp-npm/.done
	@sh tests/run $(O) $(BIN)

# The sanitizer builds live beside the normal one and run the same suites:
# gcc's, then clang's, whose UBSan checks more (pointer-overflow catches
# NULL + 0, which gcc's lets pass).  Either stops at its first report.
SAN = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
sanitize:
	@$(MAKE) --no-print-directory O=build/san BIN=build/san/bin CFLAGS='-O1 -g' SANFLAGS='$(SAN)' check
	@$(MAKE) --no-print-directory sanitize-clang

sanitize-clang:
	@$(MAKE) --no-print-directory O=build/san-clang BIN=build/san-clang/bin CC=clang \
		CFLAGS='-O1 -g' SANFLAGS='$(SAN)' check

bench: all $(SERVER) $(MCPFAULT)
	@sh tests/bench/run $(O) $(BIN)

# Each harness runs on a copy of its seed corpus (tests/fuzz/corpus/NAME,
# plus any crash kept in tests/fuzz/crashes/NAME) in build/fuzz/corpus/NAME.
# Every sanitizer report aborts (-fno-sanitize-recover, in the library and
# the harness alike), so a report is a crash: libFuzzer writes the input to
# tests/fuzz/crashes/NAME/, where make check replays it until it is fixed,
# and make fuzz stops there.
# FUZZ=chunk,sse (or FUZZ="chunk sse") runs only those harnesses.
FUZZ_SECONDS ?= 20
FUZZ_RUN = $(if $(FUZZ),$(filter $(patsubst %,tests/fuzz/fuzz_%.c,$(subst $(comma), ,$(FUZZ))),$(FUZZ_SRC)),$(FUZZ_SRC))
comma := ,
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all
fuzz:
	@$(MAKE) --no-print-directory O=build/fuzz BIN=build/fuzz/bin CC=clang CFLAGS='-O1 -g' \
		SANFLAGS='-fsanitize=fuzzer-no-link $(FUZZ_SAN)' build/fuzz/libai.a
	@set -e; for f in $(FUZZ_RUN); do \
		n=$$(basename $$f .c); mkdir -p build/fuzz/corpus/$$n tests/fuzz/crashes/$$n; \
		clang $(WFLAGS) -O1 -g -Icommon -Icmd $(PKG_CFLAGS) -fsanitize=fuzzer $(FUZZ_SAN) \
			-o build/fuzz/$$n $$f build/fuzz/libai.a $(LIBS); \
		seeds=; for d in tests/fuzz/corpus/$$n tests/fuzz/crashes/$$n; do \
			[ -z "$$(ls -A $$d 2>/dev/null)" ] || seeds="$$seeds $$d"; done; \
		echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
		build/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
			-artifact_prefix=tests/fuzz/crashes/$$n/ build/fuzz/corpus/$$n $$seeds \
			2>build/fuzz/$$n.log || { tail -40 build/fuzz/$$n.log; \
			echo "fuzz: $$n failed; the input is in tests/fuzz/crashes/$$n/ (make check replays it)"; \
			exit 1; }; \
		grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done)' build/fuzz/$$n.log || true; \
	done

# The boundary is checked on the objects (nm), so both libraries come first.
lint: $(LIBAI) $(LIBCMD)
	@sh tests/lint $(O)

install: all
	mkdir -p $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7
	cp $(PROGS) $(DESTDIR)$(BINDIR)/
	cp $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	[ -z "$(MAN5)" ] || cp $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	cp $(MAN7) $(DESTDIR)$(MANDIR)/man7/
	mkdir -p $(DESTDIR)$(DATADIR)/ai-tools $(DESTDIR)$(DATADIR)/bash-completion/completions \
		$(DESTDIR)$(DATADIR)/zsh/site-functions $(DESTDIR)$(DATADIR)/fish/vendor_completions.d
	[ ! -f common/api/prices.tsv ] || cp common/api/prices.tsv $(DESTDIR)$(DATADIR)/ai-tools/
	cp completions/bash/* $(DESTDIR)$(DATADIR)/bash-completion/completions/
	cp completions/zsh/_* $(DESTDIR)$(DATADIR)/zsh/site-functions/
	cp completions/fish/*.fish $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/
	mkdir -p $(DESTDIR)$(DATADIR)/ai-tools/keys
	cp completions/keys/* $(DESTDIR)$(DATADIR)/ai-tools/keys/

uninstall:
	for p in $(PROGS); do n=$$(basename $$p); rm -f $(DESTDIR)$(BINDIR)/$$n \
		$(DESTDIR)$(MANDIR)/man1/$$n.1 $(DESTDIR)$(DATADIR)/bash-completion/completions/$$n \
		$(DESTDIR)$(DATADIR)/zsh/site-functions/_$$n \
		$(DESTDIR)$(DATADIR)/fish/vendor_completions.d/$$n.fish; done
	rm -f $(DESTDIR)$(MANDIR)/man7/ai.7 $(DESTDIR)$(MANDIR)/man5/ai.conf.5 \
		$(DESTDIR)$(DATADIR)/bash-completion/completions/_ai-common \
		$(DESTDIR)$(DATADIR)/zsh/site-functions/_ai_common \
		$(DESTDIR)$(DATADIR)/fish/vendor_completions.d/_ai-common.fish
	rm -rf $(DESTDIR)$(DATADIR)/ai-tools

clean:
	rm -rf build bin

.PHONY: mcp-servers
.PHONY: all units check sanitize sanitize-clang bench fuzz lint install uninstall clean

-include $(shell find $(O) -name '*.d' 2>/dev/null)
