# mailfs build. `make` builds build/mailfs; see README.md for the rest.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DESTDIR ?=

CC ?= cc
PKG_CONFIG ?= pkg-config
PYTHON ?= python3
VERSION := 0.1.0

PKGS := fuse3 openssl
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CHECK_CFLAGS = $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS = $(shell $(PKG_CONFIG) --libs check 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-unused-parameter
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -DFUSE_USE_VERSION=314 -DMAILFS_VERSION=\"$(VERSION)\" \
	-Iinclude $(WARN) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP
LDLIBS := $(PKG_LIBS) -lpthread

B := build
LIB_SRCS := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJS := $(patsubst src/%.c,$(B)/obj/%.o,$(LIB_SRCS))
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(patsubst tests/unit/%.c,$(B)/tobj/%.o,$(UNIT_SRCS))

.PHONY: all check unit itest bench demo demo-stop deps install uninstall \
	clean format
all: $(B)/mailfs

$(B)/obj/%.o: src/%.c | $(B)/obj
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
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/unit_tests: $(UNIT_OBJS) $(B)/libmailfs.a
	$(CC) $(CFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

# Every test, unit and integration; fails on the first failing group.
check: unit itest

unit: $(B)/unit_tests
	$(B)/unit_tests

itest: $(B)/mailfs
	MAILFS=$(CURDIR)/$(B)/mailfs $(PYTHON) -m unittest discover \
		-s tests/integration -t . -v

bench: $(B)/mailfs
	MAILFS=$(CURDIR)/$(B)/mailfs $(PYTHON) bench/bench.py

deps:
	./packaging/deps.sh

demo: deps all
	./packaging/demo.sh start

demo-stop:
	./packaging/demo.sh stop

install: $(B)/mailfs
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(B)/mailfs $(DESTDIR)$(BINDIR)/mailfs
	install -m 0644 docs/mailfs.1 $(DESTDIR)$(MANDIR)/man1/mailfs.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/mailfs $(DESTDIR)$(MANDIR)/man1/mailfs.1

format:
	clang-format -i src/*.c include/*.h tests/unit/*.c

clean:
	rm -rf $(B)

-include $(wildcard $(B)/obj/*.d $(B)/tobj/*.d)
