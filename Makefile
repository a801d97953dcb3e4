# natmesh: one GNU Makefile for every binary, test, fuzz target and benchmark.
# Quiet unless V=1. Objects and binaries land in $(BUILD); nothing else in-tree.

.DEFAULT_GOAL := all
CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2 -Werror -MMD -MP
CPPFLAGS += -D_GNU_SOURCE -Ilib -I.
PREFIX  ?= /usr/local
DESTDIR ?=
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR  ?= $(PREFIX)/share/doc/natmesh

PKGS    := libnftnl libmnl jansson libcurl libsodium libmicrohttpd sqlite3 libpq libpcap libcrypto zlib miniupnpc
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lb2 -lpthread -lm
CPPFLAGS += $(PKG_CFLAGS)

ifneq ($(SANITIZE),)
BUILD   ?= build/sanitize
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
else
BUILD   ?= build
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

# --- static libraries (a library exists only once it has sources) ---------
LIB_natmesh_SRCS  := $(wildcard lib/*.c lib/*/*.c)
LIB_natmodel_SRCS := $(wildcard nat-models/*.c)
LIB_meshwg_SRCS   := $(filter-out agent/wg/meshwg.c,$(wildcard agent/wg/*.c))
LIB_meshsvc_SRCS  := $(filter-out service/meshsvc.c,$(wildcard service/*.c))
LIB_meshsim_SRCS  := $(filter-out sim/meshsim.c,$(wildcard sim/*.c))
LIB_agent_SRCS    := $(filter-out agent/meshd/main.c,$(wildcard agent/meshd/*.c))

# link order: dependents first
LIBNAMES := agent meshsim meshsvc meshwg natmodel natmesh
LIBS := $(foreach l,$(LIBNAMES),$(if $(LIB_$(l)_SRCS),$(BUILD)/lib$(l).a))

define LIBRARY
$(BUILD)/lib$(1).a: $(call obj,$(LIB_$(1)_SRCS))
	@mkdir -p $$(@D)
	@$(if $(Q),echo "  AR      $$@")
	$(Q)rm -f $$@ && $(AR) rcs $$@ $$^
endef
$(foreach l,$(LIBNAMES),$(if $(LIB_$(l)_SRCS),$(eval $(call LIBRARY,$(l)))))

# --- programs: NAME and its own sources; built once the sources exist ------
PROG_meshstun_SRCS        := $(wildcard tools/meshstun/*.c)
PROG_natcheck_SRCS        := $(wildcard tools/natcheck/*.c)
PROG_traversal-report_SRCS := $(wildcard tools/traversal-report/*.c)
PROG_stunload_SRCS        := $(wildcard tools/bench/stunload/*.c)
PROG_svcload_SRCS         := $(wildcard tools/bench/svcload/*.c)
PROG_udpfloor_SRCS        := $(wildcard tools/bench/udpfloor/*.c)
PROG_meshwg_SRCS          := $(wildcard agent/wg/meshwg.c)
PROG_wgflood_SRCS         := $(wildcard tools/bench/wgflood/*.c)
PROG_polnft_SRCS          := $(wildcard tools/bench/polnft/*.c)
PROG_meshd_SRCS           := $(wildcard agent/meshd/main.c)
PROG_meshctl_SRCS         := $(wildcard agent/meshctl/*.c)
PROG_meshsvc_SRCS         := $(wildcard service/meshsvc.c)
PROG_meshsim_SRCS         := $(wildcard sim/meshsim.c)
PROG_udpprobe_SRCS        := $(wildcard tools/udpprobe/*.c)
# the libraries each program links, dependents first
PROG_meshstun_LIBS         := natmesh
PROG_natcheck_LIBS         := natmesh
PROG_traversal-report_LIBS := meshwg natmesh
PROG_stunload_LIBS         := natmesh
PROG_svcload_LIBS          := meshsvc natmesh
PROG_udpfloor_LIBS         := natmesh
PROG_meshwg_LIBS           := meshwg natmesh
PROG_wgflood_LIBS          := meshwg natmesh
PROG_polnft_LIBS           := agent natmesh
PROG_meshd_LIBS            := agent meshwg natmesh
PROG_meshctl_LIBS          := natmesh
PROG_meshsvc_LIBS          := meshsvc natmesh
PROG_meshsim_LIBS          := meshsim natmodel natmesh
PROG_udpprobe_LIBS         := natmodel natmesh
PROGNAMES := meshstun natcheck traversal-report stunload svcload udpfloor meshwg wgflood polnft meshd meshctl meshsvc meshsim udpprobe
libs_of = $(foreach l,$(1),$(if $(LIB_$(l)_SRCS),$(BUILD)/lib$(l).a))
PROGS := $(foreach p,$(PROGNAMES),$(if $(PROG_$(p)_SRCS),$(BUILD)/$(p)))
# installed binaries (not benchmark helpers)
INSTALL_PROGS := $(filter-out $(BUILD)/stunload $(BUILD)/svcload $(BUILD)/udpfloor $(BUILD)/wgflood $(BUILD)/polnft,$(PROGS))

define PROGRAM
$(BUILD)/$(1): $(call obj,$(PROG_$(1)_SRCS)) $(call libs_of,$(PROG_$(1)_LIBS))
	@mkdir -p $$(@D)
	@$(if $(Q),echo "  LD      $$@")
	$(Q)$(CC) $(LDFLAGS) -o $$@ $$^ $(PKG_LIBS)
endef
$(foreach p,$(PROGNAMES),$(if $(PROG_$(p)_SRCS),$(eval $(call PROGRAM,$(p)))))

# --- unit tests: tests/unit/test_MODULE.c, one Criterion binary each, named
# after the module it tests; each links every library (the linker takes only
# what the test uses).
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
define UNITTEST
$(BUILD)/tests/$(1): $(BUILD)/obj/tests/unit/$(1).o $(LIBS)
	@mkdir -p $$(@D)
	@$(if $(Q),echo "  LD      $$@")
	$(Q)$(CC) $(LDFLAGS) -o $$@ $$^ $(PKG_LIBS) -lcriterion -lm
endef
$(foreach t,$(UNIT_SRCS),$(eval $(call UNITTEST,$(basename $(notdir $(t))))))

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# --- targets ----------------------------------------------------------------
.PHONY: all deps test test-unit test-netns test-scenarios demo fuzz bench install clean
all: $(PROGS) $(UNIT_TESTS)

deps:
	$(Q)tools/install-deps

test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)BUILD=$(BUILD) tools/run-tests all

test-unit: all
	$(Q)BUILD=$(BUILD) tools/run-tests unit

test-netns: all
	$(Q)BUILD=$(BUILD) tools/run-tests netns

test-scenarios: all
	$(Q)BUILD=$(BUILD) tools/run-tests scenarios

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)BUILD=$(BUILD) tools/demo

bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)BUILD=$(BUILD) tools/bench/run $(BENCH)

# --- fuzzing: clang + libFuzzer, ASan and UBSan, its own object tree --------
FUZZ_BUILD := build/fuzz
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_LIBSRCS := $(foreach l,$(LIBNAMES),$(LIB_$(l)_SRCS))
FUZZ_CFLAGS := -O1 -g -std=gnu11 -Wall -Wextra -Werror -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRCS))
fuzz: $(FUZZ_TARGETS)
$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)clang $(CPPFLAGS) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<
$(FUZZ_BUILD)/libfuzzall.a: $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_LIBSRCS))
	$(Q)rm -f $@ && $(AR) rcs $@ $^
$(FUZZ_BUILD)/%: $(FUZZ_BUILD)/obj/tests/fuzz/%.o $(FUZZ_BUILD)/libfuzzall.a
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)clang -fsanitize=fuzzer,address,undefined -o $@ $^ $(PKG_LIBS)

# systemd units (dist/systemd) get the paths they run from; DESTDIR only
# stages the files
# man pages (man/NAME.SECTION) go to MANDIR/manSECTION, where man(1) looks
UNITS := $(wildcard dist/systemd/*.service)
MANDIR ?= $(PREFIX)/share/man
MAN1 := $(wildcard man/*.1)
MAN8 := $(wildcard man/*.8)
DOCS := $(wildcard docs/*.md)
install: $(INSTALL_PROGS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(INSTALL_PROGS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/
	$(if $(DOCS),install -d $(DESTDIR)$(DOCDIR)/docs && install -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/docs/)
	$(if $(MAN1),install -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/)
	$(if $(MAN8),install -m 0644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/)
	for u in $(UNITS); do \
		sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		    -e 's|@DOCDIR@|$(DOCDIR)|g' "$$u" >$(DESTDIR)$(UNITDIR)/$$(basename "$$u") && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename "$$u") || exit 1; \
	done

# the man pages against every binary's --help, rendered without warnings and
# installed where man(1) finds them (tests/check/man_pages.sh; also in make test)
.PHONY: check-man
check-man: all
	$(Q)BUILD=$(BUILD) bash tests/check/man_pages.sh

clean:
	rm -rf build

# objects made by pattern rules are kept, so a second `make fuzz` does nothing
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
