# Thin wrapper: the real build is CMake. `make run` and `make test` install
# any missing Debian packages first, so a fresh Debian 12 machine needs
# nothing else.

SHELL := /bin/bash
JOBS  ?= $(shell nproc)
CONF  ?= conf/weir.ini

# Debian 12 package names.
BUILD_PKGS := cmake make gcc pkg-config libevent-dev libssl-dev libinih-dev \
              libpcre2-dev libsystemd-dev zlib1g-dev
TEST_PKGS  := $(BUILD_PKGS) libcmocka-dev clang libclang-rt-14-dev python3 curl openssl
BENCH_PKGS := $(BUILD_PKGS) wrk nginx-light

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

.PHONY: all run test bench clean deps-build deps-test deps-bench build-release build-test

all: build-release

deps-build:
	$(call install_missing,$(BUILD_PKGS))

deps-test:
	$(call install_missing,$(TEST_PKGS))

deps-bench:
	$(call install_missing,$(BENCH_PKGS))

build-release: deps-build
	cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DWEIR_TESTS=OFF >/dev/null
	cmake --build build/release -j $(JOBS)

# The test build: clang (for libFuzzer), ASan + UBSan, warnings are errors.
build-test: deps-test
	CC=clang cmake -S . -B build/test -DCMAKE_BUILD_TYPE=Debug -DWEIR_SANITIZE=ON >/dev/null
	cmake --build build/test -j $(JOBS)

run: build-release
	./build/release/weir -c $(CONF)

test: build-test
	cd build/test && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

bench: deps-bench build-release
	python3 bench/run.py --weir build/release/weir

clean:
	rm -rf build
