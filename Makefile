# ai-tools: one non-recursive Makefile.
#
#   make               build every program into bin/ (installs missing packages first, as root)
#   make check         unit tests, then the bats suites against the test server
#   make sanitize      the same suites on an ASan+UBSan build in build/san
#   make bench         benchmarks (print figures, never fail)
#   make fuzz          libFuzzer harnesses for FUZZ_SECONDS each (clang)
#   make lint          mandoc -Tlint and the banned-call grep
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
PKGS      = libcurl json-c libsodium sqlite3
CFLAGS   ?= -O2 -g
WFLAGS    = -std=c11 -Wall -Wextra -pedantic -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral

# The packages come first: .ci/deps installs what is missing (as root) or
# names the apt-get line to run, before pkg-config is asked for flags below,
# so that one make on a fresh machine installs and builds.  make check and
# the other test goals need the test packages too; clean needs none.  A stamp
# per build directory keeps it to one look per build.
TEST_GOALS = check sanitize bench fuzz lint units
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
# libcurl is not linked: common/http.c loads it with dlopen when a request
# first goes out, so a program that never talks to the network starts fast.
PKG_LIBS   := $(shell pkg-config --libs $(filter-out libcurl,$(PKGS)) 2>/dev/null)
ifneq ($(NEED_DEPS),)
ifneq ($(shell pkg-config --exists $(PKGS) && echo ok),ok)
$(error pkg-config finds no $(PKGS); install their development packages (on Debian: sh .ci/deps build))
endif
endif
ALL_CFLAGS = $(WFLAGS) $(CFLAGS) $(SANFLAGS) -Icommon -DAI_DATADIR='"$(DATADIR)/ai-tools"' $(PKG_CFLAGS) -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS)
LIBS      = $(PKG_LIBS) -ldl -lm -lpthread

COMMON_SRC := $(sort $(wildcard common/*.c))
COMMON_OBJ := $(COMMON_SRC:%.c=$(O)/%.o)
CMD_SRC    := $(sort $(wildcard cmd/ai-*.c))
PROGS      := $(CMD_SRC:cmd/%.c=$(BIN)/%)
UNIT_SRC   := $(sort $(wildcard tests/unit/t_*.c))
UNITS      := $(UNIT_SRC:tests/unit/%.c=$(O)/tests/%)
SERVER     := $(O)/tests/ai-testserver
LIBAI      := $(O)/libai.a
MAN1       := $(sort $(wildcard man/*.1))
MAN5       := $(sort $(wildcard man/*.5))
MAN7       := $(sort $(wildcard man/*.7))

all: $(PROGS)

$(O)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBAI): $(COMMON_OBJ)
	@rm -f $@
	$(AR) rcs $@ $(COMMON_OBJ)

$(BIN)/%: $(O)/cmd/%.o $(LIBAI)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBAI) $(LIBS)

$(O)/tests/t_%: $(O)/tests/unit/t_%.o $(LIBAI)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBAI) $(LIBS)

$(SERVER): $(O)/tests/server/ai-testserver.o
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $$(pkg-config --libs libmicrohttpd json-c) -lpthread

$(O)/tests/server/ai-testserver.o: tests/server/ai-testserver.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $$(pkg-config --cflags libmicrohttpd) -c -o $@ $<

units: $(UNITS)

check: all $(UNITS) $(SERVER)
	@sh tests/run $(O) $(BIN)

# The sanitizer build lives beside the normal one and runs the same suites.
SAN = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
sanitize:
	@$(MAKE) --no-print-directory O=build/san BIN=build/san/bin CFLAGS='-O1 -g' SANFLAGS='$(SAN)' check

bench: all $(SERVER)
	@sh tests/bench/run $(O) $(BIN)

FUZZ_SECONDS ?= 20
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
fuzz:
	@$(MAKE) --no-print-directory O=build/fuzz BIN=build/fuzz/bin CC=clang CFLAGS='-O1 -g' \
		SANFLAGS='-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all' build/fuzz/libai.a
	@set -e; for f in $(FUZZ_SRC); do \
		n=$$(basename $$f .c); mkdir -p build/fuzz/corpus/$$n; \
		clang -std=c11 -O1 -g -Icommon $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined \
			-o build/fuzz/$$n $$f build/fuzz/libai.a $(LIBS); \
		seeds=tests/fuzz/corpus/$$n; [ -d $$seeds ] || seeds=; \
		echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
		build/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			build/fuzz/corpus/$$n $$seeds 2>build/fuzz/$$n.log || { tail -40 build/fuzz/$$n.log; exit 1; }; \
	done

lint:
	@sh tests/lint

install: all
	mkdir -p $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7
	cp $(PROGS) $(DESTDIR)$(BINDIR)/
	cp $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	[ -z "$(MAN5)" ] || cp $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	cp $(MAN7) $(DESTDIR)$(MANDIR)/man7/
	mkdir -p $(DESTDIR)$(DATADIR)/ai-tools $(DESTDIR)$(DATADIR)/bash-completion/completions \
		$(DESTDIR)$(DATADIR)/zsh/site-functions $(DESTDIR)$(DATADIR)/fish/vendor_completions.d
	[ ! -f common/prices.tsv ] || cp common/prices.tsv $(DESTDIR)$(DATADIR)/ai-tools/
	cp completions/bash/* $(DESTDIR)$(DATADIR)/bash-completion/completions/
	cp completions/zsh/_* $(DESTDIR)$(DATADIR)/zsh/site-functions/
	cp completions/fish/*.fish $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/

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

.PHONY: all units check sanitize bench fuzz lint install uninstall clean

-include $(shell find $(O) -name '*.d' 2>/dev/null)
