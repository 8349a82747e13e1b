# Thin wrapper: the real build is CMake. `make run` and `make test` install
# any missing Debian packages first, so a fresh Debian 12 machine needs
# nothing else.

SHELL := /bin/bash
JOBS  ?= $(shell nproc)
CONF  ?= conf/weir.ini

# Debian 12 package names.
BUILD_PKGS := cmake make gcc pkg-config libevent-dev libssl-dev libinih-dev \
              libpcre2-dev libsystemd-dev zlib1g-dev libnghttp2-dev libbrotli-dev \
              libzstd-dev libcrypt-dev python3
# make deb: dpkg-shlibdeps (dpkg-dev) computes Depends; CPack writes the
# archive's root ownership itself (no fakeroot).
DEB_PKGS   := $(BUILD_PKGS) dpkg-dev
TEST_PKGS  := $(BUILD_PKGS) libcmocka-dev clang libclang-rt-14-dev python3 curl openssl \
              systemd util-linux groff-base dpkg-dev lintian nghttp2-client python3-h2 \
              python3-brotli python3-zstandard
BENCH_PKGS := $(BUILD_PKGS) wrk nginx-light openssl python3 nghttp2-client h2o brotli zstd linux-perf

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Installs the packages in $(1) that dpkg does not report as installed.
define install_missing
	@missing=$$(for p in $(1); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "weir: installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

.PHONY: all run test bench clean deps-build deps-test deps-bench build-release build-test \
        tsan fuzz soak install deb deps-deb

all: build-release

deps-build:
	$(call install_missing,$(BUILD_PKGS))

deps-test:
	$(call install_missing,$(TEST_PKGS))

deps-bench:
	$(call install_missing,$(BENCH_PKGS))

deps-deb:
	$(call install_missing,$(DEB_PKGS))

build-release: deps-build
	cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DWEIR_TESTS=OFF >/dev/null
	cmake --build build/release -j $(JOBS)

# make install [PREFIX=/usr/local] [DESTDIR=/tmp/stage]: the release build,
# installed (GNUInstallDirs). The configuration goes to /etc/weir/weir.ini
# only when none is there; units to PREFIX/lib/systemd/system (for
# PREFIX=/usr, pkg-config's systemdsystemunitdir). README "Install".
PREFIX ?= /usr/local
DEB_DIR ?= build/deb
install: build-release
	cmake -S . -B build/release -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build build/release -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install build/release

# make deb: $(DEB_DIR)/weir_VERSION-1_ARCH.deb (CPack), /usr prefix, release,
# with Debian's hardening flags (dpkg-buildflags, as debhelper would pass).
deb: deps-deb
	export DEB_BUILD_MAINT_OPTIONS=hardening=+all; \
	cmake -S . -B $(DEB_DIR) -DCMAKE_BUILD_TYPE=Release -DWEIR_TESTS=OFF \
	  -DCMAKE_INSTALL_PREFIX=/usr -DWEIR_DEB=ON \
	  -DCMAKE_C_FLAGS="$$(dpkg-buildflags --get CPPFLAGS) $$(dpkg-buildflags --get CFLAGS)" \
	  -DCMAKE_EXE_LINKER_FLAGS="$$(dpkg-buildflags --get LDFLAGS)" >/dev/null
	cmake --build $(DEB_DIR) -j $(JOBS)
	cd $(DEB_DIR) && cpack -G DEB
	@ls $(DEB_DIR)/*.deb

# The test build: clang (for libFuzzer), ASan + UBSan, warnings are errors.
build-test: deps-test
	CC=clang cmake -S . -B build/test -DCMAKE_BUILD_TYPE=Debug -DWEIR_SANITIZE=ON >/dev/null
	cmake --build build/test -j $(JOBS)

# The demo backend (src/demo/) in the background on the address of
# conf/weir.ini's [upstream demo], then weir in the foreground. The backend
# is stopped whenever this shell exits: weir exiting, Ctrl-C, SIGTERM.
DEMO_HOST ?= 127.0.0.1
DEMO_PORT ?= 9000
run: build-release
	@./build/release/weir-demo-app --listen $(DEMO_HOST):$(DEMO_PORT) --name demo & demo=$$!; \
	trap 'kill $$demo 2>/dev/null; wait $$demo 2>/dev/null' EXIT; \
	trap 'exit 130' INT; trap 'exit 143' TERM; \
	for i in $$(seq 50); do \
	  kill -0 $$demo 2>/dev/null || { \
	    echo "weir: the demo backend did not start (is $(DEMO_HOST):$(DEMO_PORT) taken?)" >&2; \
	    exit 1; }; \
	  (exec 3<>/dev/tcp/$(DEMO_HOST)/$(DEMO_PORT)) 2>/dev/null && break; \
	  sleep 0.1; \
	done; \
	./build/release/weir -c $(CONF)

test: build-test
	cd build/test && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

# Unit and integration tests against a ThreadSanitizer build (several tests
# run 2 workers); any race report fails the test that saw it.
tsan: deps-test
	CC=clang cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=Debug -DWEIR_TSAN=ON -DWEIR_SANITIZE=OFF -DWEIR_TESTS=ON >/dev/null
	cmake --build build/tsan -j $(JOBS)
	cd build/tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest --output-on-failure -j $(JOBS) -L 'unit|integration'

# Every fuzz target for SECONDS each (default 60), from its seed corpus.
SECONDS ?= 60
fuzz: build-test
	@for t in build/test/tests/fuzz_*; do \
	  name=$$(basename $$t); corpus=tests/fuzz/corpus/$${name#fuzz_}; \
	  echo "== $$name ($(SECONDS) s)"; \
	  sh tests/fuzz/run.sh $$t $$corpus $(SECONDS) 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY' ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

# The soak test alone (tests/soak/soak.py) for SECONDS (default 60 here;
# `make test` runs it for 20).
# The soak for SECONDS (default 60) against the release binary, so the RSS
# check (2 MiB) measures weir, not the sanitizers' allocator; `make test`
# runs it for 20 s under ASan+UBSan.
soak: build-release build-test
	WEIR_BIN=$(CURDIR)/build/release/weir WEIR_DEMO_APP=$(CURDIR)/build/release/weir-demo-app \
	  WEIR_SOAK_SECONDS=$(SECONDS) WEIR_SOAK_RSS_SLACK_KIB=2048 python3 tests/soak/soak.py

bench: deps-bench build-release
	python3 bench/run.py --weir build/release/weir
	python3 bench/h2.py --weir build/release/weir
	python3 bench/cache_burst.py --weir build/release/weir
	python3 bench/pp_keepalive.py --weir build/release/weir

clean:
	rm -rf build
