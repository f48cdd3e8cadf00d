# mailfs build. `make` builds build/mailfs; see README.md for the rest.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
# systemd's user units (for PREFIX=/usr: /usr/lib/systemd/user).
USERUNITDIR ?= $(PREFIX)/lib/systemd/user
DESTDIR ?=

CC ?= cc
PKG_CONFIG ?= pkg-config
PYTHON ?= python3
VERSION := 0.1.0

PKGS := fuse3 openssl sqlite3 zlib
# The pkg-config queries run when a recipe first needs them, not when the
# Makefile is read: on a bare machine `make demo` reads it before `make
# deps` has installed the packages. Each query then runs once (it
# replaces its own definition with its result).
mailfs_pkg = $(eval $(1) := $$(shell $$(PKG_CONFIG) $(2) 2>/dev/null))$($(1))
PKG_CFLAGS = $(call mailfs_pkg,PKG_CFLAGS,--cflags $(PKGS))
PKG_LIBS = $(call mailfs_pkg,PKG_LIBS,--libs $(PKGS))
CHECK_CFLAGS = $(call mailfs_pkg,CHECK_CFLAGS,--cflags check)
CHECK_LIBS = $(call mailfs_pkg,CHECK_LIBS,--libs check)

WARN := -Wall -Wextra -Werror -Wshadow -Wvla -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-unused-parameter
CFLAGS ?= -O2 -g
# The source tree by layer, from the bottom up (docs/design.md): each
# folder holds its files' headers, and includes only point down
# (tests/integration/test_layout.py checks it).
LAYERS := util proto store fs app
LAYER_DIRS := $(addprefix src/,$(LAYERS))
INCLUDES := $(addprefix -I,$(LAYER_DIRS))
vpath %.c $(LAYER_DIRS)
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -DFUSE_USE_VERSION=314 -DMAILFS_VERSION=\"$(VERSION)\" \
	$(INCLUDES) $(WARN) $(CPPFLAGS) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP
LDLIBS = $(PKG_LIBS) -lpthread

B := build
LIB_SRCS := $(filter-out src/app/main.c,$(wildcard $(addsuffix /*.c,$(LAYER_DIRS))))
LIB_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(notdir $(LIB_SRCS)))
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(patsubst tests/unit/%.c,$(B)/tobj/%.o,$(UNIT_SRCS))

.PHONY: all check unit itest bench demo demo-stop deps install uninstall \
	deb clean format fuzz fuzz-build asan-check asan-build FORCE
all: $(B)/mailfs

$(B)/obj/%.o: %.c | $(B)/obj
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/tobj/%.o: tests/unit/%.c | $(B)/tobj
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Wno-missing-prototypes -I$(B)/tobj -c -o $@ $<

# The unit test runner registers every `Suite *NAME_suite(void)` that the
# files in tests/unit define, so a new test file needs no other edit.
$(B)/tobj/suites.h: $(filter-out tests/unit/main.c,$(UNIT_SRCS)) | $(B)/tobj
	sed -n 's/^Suite \*\([a-z0-9_]*_suite\)(void)$$/SUITE(\1)/p' $^ > $@.tmp
	mv $@.tmp $@

$(B)/tobj/main.o: $(B)/tobj/suites.h

$(B)/obj $(B)/tobj:
	mkdir -p $@

$(B)/libmailfs.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(B)/mailfs: $(B)/obj/main.o $(B)/libmailfs.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/unit_tests: $(UNIT_OBJS) $(B)/libmailfs.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

# Every test, unit and integration; fails on the first failing group.
# Installs what is missing first, so that it works on a bare machine.
check: deps
	$(MAKE) unit
	$(MAKE) itest

unit: $(B)/unit_tests
	$(B)/unit_tests

itest: $(B)/mailfs
	MAILFS=$(CURDIR)/$(B)/mailfs $(PYTHON) -m unittest discover \
		-s tests/integration -t . -v

# The fastest read-only FUSE file system (bench only): the floor under mailfs's
# figures for cached mail.
$(B)/fusefloor: bench/fusefloor.c | $(B)/obj
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LDLIBS)

bench: $(B)/mailfs $(B)/fusefloor
	MAILFS=$(CURDIR)/$(B)/mailfs FUSEFLOOR=$(CURDIR)/$(B)/fusefloor \
		$(PYTHON) bench/bench.py
	MAILFS=$(CURDIR)/$(B)/mailfs FUSEFLOOR=$(CURDIR)/$(B)/fusefloor \
		$(PYTHON) bench/bench_large.py
	MAILFS=$(CURDIR)/$(B)/mailfs $(PYTHON) bench/bench_folders.py
	MAILFS=$(CURDIR)/$(B)/mailfs $(PYTHON) bench/bench_slowlink.py

# The install step (tests replace it to simulate a bare machine).
DEPS ?= ./packaging/deps.sh
deps:
	$(DEPS)

# deps runs first, alone: the build that follows is a new make that reads
# the Makefile again with the packages installed.
DEMO ?= ./packaging/demo.sh
demo: deps
	$(MAKE) all
	$(DEMO) start

demo-stop:
	./packaging/demo.sh stop

# The user unit names the binary where it is installed: @BINDIR@ is
# written in at install time (BINDIR without DESTDIR, which is only a
# staging root).
install: $(B)/mailfs
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(USERUNITDIR)
	install -m 0755 $(B)/mailfs $(DESTDIR)$(BINDIR)/mailfs
	install -m 0644 docs/mailfs.1 $(DESTDIR)$(MANDIR)/man1/mailfs.1
	sed 's|@BINDIR@|$(BINDIR)|g' packaging/systemd/mailfs@.service.in \
		> $(B)/mailfs@.service.tmp
	install -m 0644 $(B)/mailfs@.service.tmp \
		$(DESTDIR)$(USERUNITDIR)/mailfs@.service
	rm -f $(B)/mailfs@.service.tmp

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/mailfs $(DESTDIR)$(MANDIR)/man1/mailfs.1 \
		$(DESTDIR)$(USERUNITDIR)/mailfs@.service

# A Debian package built from a copy of the source tree, left in $(B)/.
deb:
	./packaging/mkdeb.sh $(VERSION) $(B)

# Fuzzing (tests/fuzz, libFuzzer): the library built again by clang
# with ASan, UBSan and coverage in $(FB), each target linked against it;
# `make fuzz` runs each target FUZZ_SECONDS and fails on any finding,
# which is kept in $(FB)/findings/. The session targets get the fake
# network of tests/fuzz/fuzz_net.c in place of net_connect().
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FB = $(B)/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
FUZZ_LIB_CFLAGS := -g -O1 $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_TARGETS := fuzz_imap_parse fuzz_names fuzz_opts fuzz_account \
	fuzz_msgdate fuzz_imap_session fuzz_pop3_session fuzz_msgstruct \
	fuzz_search fuzz_journal
FUZZ_BINS = $(addprefix $(FB)/,$(FUZZ_TARGETS))
FUZZ_NET_LDFLAGS := -Wl,--wrap=net_connect \
	-Wl,--defsym=__wrap_net_connect=fuzz_net_connect

# Always asks the build with its own flags; it rebuilds what changed.
$(FB)/libmailfs.a: FORCE
	$(MAKE) B=$(FB) CC=$(FUZZ_CC) CFLAGS="$(FUZZ_LIB_CFLAGS)" $@

$(FB)/fuzz_%: tests/fuzz/fuzz_%.c $(FB)/libmailfs.a
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE $(INCLUDES) $(WARN) -g -O1 \
		$(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_EXTRA) \
		$(FB)/libmailfs.a $(LDLIBS)

FUZZ_SESSIONS = $(FB)/fuzz_imap_session $(FB)/fuzz_pop3_session
$(FUZZ_SESSIONS): tests/fuzz/fuzz_net.c tests/fuzz/fuzz_net.h
$(FUZZ_SESSIONS): FUZZ_EXTRA = tests/fuzz/fuzz_net.c $(FUZZ_NET_LDFLAGS)

fuzz-build: $(FUZZ_BINS)

# deps runs first, alone, as for check.
fuzz: deps
	$(MAKE) fuzz-build
	tests/fuzz/run.sh $(FB) $(FUZZ_SECONDS)

# The whole suite under AddressSanitizer (leaks included) and UBSan: the
# binaries of $(ASAN_B), and tests/asan-check.sh, which fails on any
# report, including those of a daemonized mailfs (written to files).
ASAN_CC ?= clang
ASAN_B = $(B)/asan
ASAN_CFLAGS := -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer

# One build of both (two at once would race on the same objects).
asan-build:
	$(MAKE) B=$(ASAN_B) CC=$(ASAN_CC) CFLAGS="$(ASAN_CFLAGS)" \
		$(ASAN_B)/mailfs $(ASAN_B)/unit_tests

# deps runs first, alone, as for check.
asan-check: deps
	$(MAKE) asan-build
	PYTHON=$(PYTHON) tests/asan-check.sh $(ASAN_B)

FORCE:

format:
	clang-format -i src/*/*.[ch] tests/unit/*.c tests/fuzz/*.[ch]

clean:
	rm -rf $(B)

-include $(wildcard $(B)/obj/*.d $(B)/tobj/*.d)
