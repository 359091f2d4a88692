# Session console. The two set-up commands: `make run` and `make test`.
GO      ?= go
BIN     := bin/console
PKGS    := ./...
BENCH_OUT   ?= bench-results.json
BENCH_QUICK ?=
BENCH_SIZES ?=

.PHONY: all build run test generate vet lint fmt-check templ-check unit bench fuzz deps deps-postgres deps-chromium deps-proxies deps-prometheus axe-update clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/console

## run: the web console on the embedded PostgreSQL in ./console-data (prints URL and first admin);
## flags of `console serve` go in ARGS: make run ARGS="--listen 127.0.0.1:9090"
run: deps-postgres build
	./$(BIN) serve $(ARGS)

## test: everything: vet, staticcheck, gofmt, templ freshness, unit + store + handler + browser tests
test: deps-postgres deps-chromium deps-proxies deps-prometheus vet lint fmt-check templ-check unit

unit:
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

generate:
	$(GO) tool templ generate

vet:
	$(GO) vet $(PKGS)

# staticcheck, pinned in go.mod as a tool
lint:
	$(GO) tool staticcheck $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Generated *_templ.go files are committed; regenerating them must change nothing.
templ-check:
	@before=$$(find . -name '*_templ.go' -not -path './.git/*' | sort | xargs -r sha256sum); \
	$(GO) tool templ generate >/dev/null 2>&1 || { $(GO) tool templ generate; exit 1; }; \
	after=$$(find . -name '*_templ.go' -not -path './.git/*' | sort | xargs -r sha256sum); \
	if [ "$$before" != "$$after" ]; then echo "templ: generated files were stale (now regenerated): commit them"; exit 1; fi

## bench: speed and memory at 10k and 1M sessions against raw pgx (BENCH_QUICK=1: 10k only)
bench: deps-postgres build
	BENCH_QUICK=$(BENCH_QUICK) BENCH_OUT=$(BENCH_OUT) BENCH_SIZES=$(BENCH_SIZES) $(GO) run ./internal/bench/cmd/bench -console $(BIN) $(BENCH_FLAGS)

## fuzz: a longer run of the cookie decoder's fuzz target
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeCookie -fuzztime 60s ./sessionstore

deps: deps-postgres deps-chromium deps-proxies deps-prometheus

## axe-update: vendor axe-core (the browser tests' accessibility checker) from npm into
## web/browser/testdata, with its version and checksums in testdata/VERSIONS (AXE_VERSION=4.x.y)
AXE_VERSION ?= 4.14.1
AXE_DIR     := web/browser/testdata
axe-update:
	@command -v npm >/dev/null 2>&1 || { echo "make: npm is needed to fetch axe-core (apt-get install npm)"; exit 1; }
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	(cd "$$tmp" && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null && tar xzf axe-core-$(AXE_VERSION).tgz) && \
	cp "$$tmp/package/axe.min.js" $(AXE_DIR)/axe.min.js && cp "$$tmp/package/LICENSE" $(AXE_DIR)/axe-core.LICENSE && \
	integrity=$$(npm view axe-core@$(AXE_VERSION) dist.integrity) && \
	sum=$$(sha256sum $(AXE_DIR)/axe.min.js | cut -d' ' -f1) && \
	printf '%s\n' \
	  "axe.min.js  axe-core $(AXE_VERSION) (npm: npm pack axe-core@$(AXE_VERSION), file package/axe.min.js; MPL-2.0, see axe-core.LICENSE)" \
	  "            sha256 $$sum" \
	  "            npm integrity $$integrity" \
	  "            refresh with: make axe-update AXE_VERSION=4.x.y" > $(AXE_DIR)/VERSIONS && \
	echo "axe-core $(AXE_VERSION) vendored into $(AXE_DIR) (sha256 $$sum)"

# PostgreSQL server binaries (initdb, postgres): present, installed with apt-get as root, or a
# clear message.
deps-postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
	   { command -v pg_config >/dev/null 2>&1 && test -x "$$(pg_config --bindir)/initdb"; }; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing the PostgreSQL server binaries (apt-get install postgresql)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || exit 1; \
	else \
	  echo "make: the PostgreSQL server binaries (initdb, postgres) are missing."; \
	  echo "      Install them (Debian/Ubuntu: sudo apt-get install postgresql), or run the console"; \
	  echo "      against an existing database with --url postgres://..."; exit 1; \
	fi

# Chromium for the browser tests: present, installed with apt-get as root, or a clear message.
deps-chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	   command -v google-chrome >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing Chromium for the browser tests (apt-get install chromium)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || exit 1; \
	else \
	  echo "make: Chromium is missing; the browser tests need it."; \
	  echo "      Install it (Debian/Ubuntu: sudo apt-get install chromium) and run make test again."; exit 1; \
	fi

# nginx and Caddy for the proxy tests (deploy/), curl for the issued curl lines: present,
# installed with apt-get as root, or a clear message. The tests run their own instances on
# loopback ports; the system services these packages install are never used.
deps-proxies:
	@missing=""; \
	{ command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx; } || missing="$$missing nginx"; \
	command -v caddy >/dev/null 2>&1 || missing="$$missing caddy"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing for the proxy tests (apt-get install$$missing)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	else \
	  echo "make: missing for the proxy tests:$$missing (nginx 1.22 and Caddy 2.6 run deploy/'s configurations)."; \
	  echo "      Install them (Debian/Ubuntu: sudo apt-get install$$missing) and run make test again."; exit 1; \
	fi

# Prometheus and promtool for the metrics test (cmd/console TestPrometheusScrape): present,
# installed with apt-get as root, or a clear message. The test runs its own Prometheus on a
# loopback port with its own configuration and data directory; the system service the
# package installs is never used.
deps-prometheus:
	@if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing Prometheus for the metrics test (apt-get install prometheus)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null || exit 1; \
	else \
	  echo "make: Prometheus (prometheus, promtool) is missing; the metrics test needs it."; \
	  echo "      Install it (Debian/Ubuntu: sudo apt-get install prometheus) and run make test again."; exit 1; \
	fi

clean:
	rm -rf bin
