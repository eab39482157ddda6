# hubbub - the two commands a newcomer needs are `make run` and `make test`.
BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
# Recursive makes (cmake --build runs one) would print "Entering directory" lines.
MAKEFLAGS  += --no-print-directory
CMAKE_FLAGS ?=

PREFIX     ?= /usr/local
DESTDIR    ?=

.PHONY: all deps deps-all build bin asan tsan run test soak bench fuzz install deb clean

all: build

deps:
	@scripts/install-deps.sh build

deps-all:
	@scripts/install-deps.sh all

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The server binary alone (for run, install, deb): quiet, the compiler's
# output shown only if the build fails.
bin: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target hubbub >$(BUILD)/build-hubbub.log 2>&1 || { cat $(BUILD)/build-hubbub.log; exit 1; }

asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHB_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

tsan: deps
	@cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHB_TSAN=ON >/dev/null
	@cmake --build $(TSAN_BUILD) -j $(JOBS)

# Build, start on 127.0.0.1:8080 with ./data, print a token, a curl line and the demo URL.
run:
	@echo "make run: building $(BUILD)/hubbub"
	@$(MAKE) bin
	@HUBBUB_BIN=$(BUILD)/hubbub scripts/run.sh

# Every test: unit (cmocka), end-to-end (node:test) on the release and the
# ASan+UBSan builds, browser (Chromium), fuzz and bench smoke runs.
test: deps-all build asan
	@scripts/test.sh

# A large run at the size and on the build you choose (PRESENCE_LOAD_CONNS,
# HUBBUB_BIN): presence with 5,000 connections by default.
soak: deps-all build
	@scripts/soak.sh

# The binary, the systemd unit, a default config (kept if present) and the
# docs under PREFIX (default /usr/local), staged under DESTDIR if given.
install: bin
	@DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

# $(BUILD)/hubbub_<version>_<arch>.deb (scripts/make-deb.sh); prints its path.
deb: bin
	@scripts/make-deb.sh $(BUILD)

bench: deps-all build
	@bench/run.sh

fuzz: deps-all
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHB_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@fuzz/run.sh $(FUZZ_BUILD) $${FUZZ_SECONDS:-60}

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
