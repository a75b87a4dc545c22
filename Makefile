# qtool — the two commands the README starts with are `make demo` and `make test`.
SWIFT ?= swift
SWIFTC ?= swiftc
BUILD_PACKAGES := libsqlite3-dev libcurl4-openssl-dev libarchive-dev zlib1g-dev libxgboost-dev pkg-config sqlite3
# Tests also drive the completion scripts in real shells, render the HTML report in Chromium,
# build damaged and oversized archives with gzip, bzip2, xz and zip; serve's tests talk to it
# with curl (HTTPS with an openssl certificate), and schemathesis (PyPI) runs in a python3 venv;
# the Slurm tests start a single-node cluster (Tests/Cluster/slurm-up.sh) with slurm-wlm and munge;
# the README's examples run as written (ReadmeExamplesTests): jq and man in them, python3 for a pty.
TEST_PACKAGES := $(BUILD_PACKAGES) bash zsh fish chromium zip gzip bzip2 xz-utils curl python3-venv openssl slurm-wlm munge jq man-db python3
# make bench measures serve with wrk.
BENCH_PACKAGES := wrk curl
DEMO_HOME := .build/demo

.PHONY: deps test-deps demo test build release hot-order bench lint format generate clean fuzz

# Installs those of the given Debian packages that are missing.
define install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >/dev/null \
	    || { echo "apt-get failed; run as root, or install:$$missing" >&2; exit 1; }; \
	fi
endef

deps:
	$(call install_missing,$(BUILD_PACKAGES))

test-deps:
	$(call install_missing,$(TEST_PACKAGES))

build: deps
	$(SWIFT) build

# Static Swift runtime: no dynamic loading of Foundation and ICU at start-up (25 ms → 16 ms for --help).
# Every function in a section of its own, Swift and C, dependencies included, so that lld can put
# the code qtool runs most next to each other (Sources/qtool/hot-functions.order, `make hot-order`):
# a runner touches 1.7 MB of code scattered over 35 MB, and the kernel maps 64 KB around each fault.
RELEASE := -c release --static-swift-stdlib -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections
release: deps
	$(SWIFT) build $(RELEASE) --product qtool

# The main job on bundled data: a fresh store under .build/demo.
demo: release
	@rm -rf $(DEMO_HOME) && mkdir -p $(DEMO_HOME)
	@set -e; Q="$$(pwd)/.build/release/qtool"; export QTOOL_HOME="$$(pwd)/$(DEMO_HOME)" XDG_CONFIG_HOME="$$(pwd)/$(DEMO_HOME)/config"; \
	echo "\$$ qtool version"; $$Q version; echo; \
	echo "\$$ qtool data import Fixtures/demo-GOOG-1d.csv --symbol GOOG --timeframe 1d"; \
	$$Q data import Fixtures/demo-GOOG-1d.csv --symbol GOOG --timeframe 1d; \
	echo "\$$ qtool data import Fixtures/demo-BTCUSDT-1d.csv.gz --symbol BTCUSDT --timeframe 1d --source-name binance"; \
	$$Q data import Fixtures/demo-BTCUSDT-1d.csv.gz --symbol BTCUSDT --timeframe 1d --source-name binance; echo; \
	echo "\$$ qtool data list"; $$Q data list; echo; \
	echo "\$$ qtool data verify"; $$Q data verify; echo; \
	echo "\$$ qtool strategy new goog-sma --template sma_crossover --symbol GOOG -o $(DEMO_HOME)/goog-sma.yaml"; \
	$$Q strategy new goog-sma --template sma_crossover --symbol GOOG -o $(DEMO_HOME)/goog-sma.yaml; echo; \
	echo "\$$ qtool backtest run goog-sma --report $(DEMO_HOME)/goog-sma.html"; \
	$$Q backtest run goog-sma --report $(DEMO_HOME)/goog-sma.html; echo; \
	echo "\$$ qtool backtest run goog-sma --param fast=20 --param slow=50 --assert 'sharpe > 0.5'"; \
	$$Q backtest run goog-sma --param fast=20 --param slow=50 --assert 'sharpe > 0.5'; echo; \
	echo "report: $(DEMO_HOME)/goog-sma.html"

# The whole test suite: one debug build, schemathesis against a live `qtool serve` (bounded to
# about a minute), then the tests (Swift Testing) in three runs of that build: the in-process
# server's tests and the Slurm tests each run on their own, because the rest of the suite blocks
# the two threads of a 2-core machine's cooperative pool for seconds at a time, and a server
# waiting that long to answer fails tests that measure it.
# The Slurm tests (SlurmGridTests) start their own cluster; when this machine cannot start one
# they are skipped and the run says so, unless QTOOL_REQUIRE_SLURM=1 (.ci/run), which fails instead.
test: test-deps
	$(SWIFT) build --build-tests
	timeout 900 Tests/Schemathesis/run.sh .build/debug/qtool 45
	$(SWIFT) test --skip-build --disable-xctest --skip 'QtoolServerTests|SlurmGridTests'
	$(SWIFT) test --skip-build --disable-xctest --filter QtoolServerTests
	@mkdir -p .build; if Tests/Cluster/slurm-up.sh start .build/slurm-probe >/dev/null 2>.build/slurm-probe.err; then \
	  Tests/Cluster/slurm-up.sh stop .build/slurm-probe; $(SWIFT) test --skip-build --disable-xctest --filter SlurmGridTests; \
	elif [ "$${QTOOL_REQUIRE_SLURM:-0}" = 1 ]; then \
	  echo "the Slurm test cluster cannot start: $$(cat .build/slurm-probe.err)" >&2; exit 1; \
	else \
	  echo "SKIPPING the Slurm tests (SlurmGridTests): the test cluster cannot start: $$(cat .build/slurm-probe.err)"; \
	fi

# Regenerates Sources/qtool/hot-functions.order from callgrind runs of the release binary.
hot-order: release
	$(call install_missing,valgrind curl python3)
	Sources/qtool/hot-functions.sh
	@# The linker reads the list, but the build does not know it as an input: link again.
	rm -f .build/release/qtool && $(SWIFT) build $(RELEASE) --product qtool

bench: release
	$(call install_missing,$(BENCH_PACKAGES))
	$(SWIFT) build $(RELEASE) --product QtoolBench
	.build/release/QtoolBench

# Fails when a file is not formatted as .swift-format says.
lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift

# Rewrites the committed man page and completion scripts from the command tree.
generate: build
	.build/debug/qtool man > man/qtool.1
	.build/debug/qtool completions bash > completions/qtool.bash
	.build/debug/qtool completions zsh > completions/_qtool
	.build/debug/qtool completions fish > completions/qtool.fish
	@{ echo '// Generated by `make generate` from openapi.json: edit that file, not this one.'; \
	  echo 'enum OpenAPIDocument {'; echo '  static let json = ##"""'; cat Sources/QtoolServer/OpenAPI/openapi.json; \
	  echo '"""##'; echo '}'; } > Sources/QtoolServer/OpenAPI/OpenAPIDocument.swift

clean:
	rm -rf .build

# Fuzzes the parsers with libFuzzer for FUZZ_SECONDS each (Tests/Fuzz/fuzz.sh says how);
# finds are saved under Tests/Fuzz/Regressions/, which the test suite replays.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= csv rules spec dates archive
fuzz: test-deps
	SWIFT="$(SWIFT)" SWIFTC="$(SWIFTC)" FUZZ_SECONDS="$(FUZZ_SECONDS)" FUZZ_TARGETS="$(FUZZ_TARGETS)" sh Tests/Fuzz/fuzz.sh
