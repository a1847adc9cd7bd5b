# p4jit — one Makefile for set-up, build, tests, demo and benchmarks.
#
#   make demo    install what is missing, build, run the quick start on the virtual device
#   make test    install what is missing, build, run every test (C, fuzz smoke, pytest)
#   make bench   the benchmark tables
#   make bench-native  the bench/test helpers (bench/native, never shipped); test and bench build it
#   make fuzz    longer libFuzzer runs (core, host frame decoder, virtual device; FUZZ_TIME s each)
#
# Set-up is idempotent: Debian packages are installed only when missing, the
# virtualenv (.venv) only when absent.

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
BUILD  := build
SIMOUT := $(abspath $(BUILD)/sim)

PKG_BIN  := p4jit/_bin
PKG_DATA := p4jit/_data

EXT_SOURCES := $(wildcard ext/*.c ext/*.h) firmware/components/p4_jit/include/p4_jit_protocol.h
CORE_SOURCES := $(wildcard firmware/components/p4_jit/src/*.c firmware/components/p4_jit/include/*.h)
SIM_SOURCES := $(shell find firmware/sim -type f \( -name '*.c' -o -name '*.h' -o -name '*.S' -o -name '*.ld' -o -name 'Makefile' \) 2>/dev/null) \
               ext/p4_spin.c ext/p4_spin.h

.PHONY: all deps venv native ext bench-native ctest fuzz fuzz-smoke cross-check pytest test demo bench clean distclean

all: ext

# ---- set-up -----------------------------------------------------------------

deps:
	@scripts/ensure-deps.sh

$(VENV)/.ready: pyproject.toml
	@$(MAKE) --no-print-directory deps
	@mkdir -p $(BUILD)
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@echo "p4jit: installing Python dependencies into $(VENV)"
	@$(VPY) -m pip install -q "setuptools>=64" wheel "numpy>=1.23" "pycparser>=2.21" "pyyaml>=6.0" \
	    "pyserial>=3.5" "pytest>=7" "pytest-xdist>=3" "ipython>=8" "ipykernel>=6" "nbclient>=0.7" \
	    "nbformat>=5" "tqdm>=4.60" "pygments>=2.12" "matplotlib>=3.5" "ipywidgets>=8" "scipy>=1.9" \
	    >$(BUILD)/pip-deps.log 2>&1 || { cat $(BUILD)/pip-deps.log; exit 1; }
	@touch $@

venv: $(VENV)/.ready

# ---- native parts: virtual device + ROM ------------------------------------

$(PKG_BIN)/p4jit-sim $(PKG_DATA)/p4jit_rom.elf: $(CORE_SOURCES) $(SIM_SOURCES) firmware/components/p4_jit/include/p4_jit_protocol.h
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory -C firmware/sim OUT=$(SIMOUT)
	@mkdir -p $(PKG_BIN) $(PKG_DATA)
	@# copy, then rename: a running sim keeps its old inode ("text file busy" otherwise)
	@cp $(SIMOUT)/p4jit-sim $(PKG_BIN)/.p4jit-sim.tmp && mv -f $(PKG_BIN)/.p4jit-sim.tmp $(PKG_BIN)/p4jit-sim
	@cp $(SIMOUT)/p4jit_rom.elf $(PKG_DATA)/.rom.tmp && mv -f $(PKG_DATA)/.rom.tmp $(PKG_DATA)/p4jit_rom.elf

native: $(PKG_BIN)/p4jit-sim $(PKG_DATA)/p4jit_rom.elf

# ---- the extension, installed editable into the venv -----------------------

$(VENV)/.editable: $(VENV)/.ready setup.py pyproject.toml | $(BUILD)
	@P4JIT_SKIP_NATIVE=1 $(VPY) -m pip install -q --no-build-isolation --no-deps -e . >$(BUILD)/pip-install.log 2>&1 \
	  || { cat $(BUILD)/pip-install.log; exit 1; }
	@touch $@

$(BUILD)/.ext: $(VENV)/.editable $(EXT_SOURCES)
	@P4JIT_SKIP_NATIVE=1 $(VPY) setup.py -q build_ext --inplace >$(BUILD)/build-ext.log 2>&1 \
	  || { cat $(BUILD)/build-ext.log; exit 1; }
	@touch $@

ext: native $(BUILD)/.ext

$(BUILD):
	@mkdir -p $(BUILD)

# ---- bench/test helpers (never shipped): build/bench/p4bench*.so ---------------

BENCH_NATIVE_SRCS := bench/native/p4bench.c ext/frame.c ext/p4_spin.c
BENCH_NATIVE := $(BUILD)/bench/.p4bench

$(BENCH_NATIVE): $(VENV)/.ready $(BENCH_NATIVE_SRCS) $(wildcard ext/*.h) firmware/components/p4_jit/include/p4_jit_protocol.h
	@mkdir -p $(BUILD)/bench
	@cc -std=c11 -O2 -shared -fPIC -Wall -Wextra -Werror -Wno-missing-field-initializers \
	    -I$$($(VPY) -c 'import sysconfig; print(sysconfig.get_paths()["include"])') \
	    -Iext -Ifirmware/components/p4_jit/include $(BENCH_NATIVE_SRCS) -ldeflate \
	    -o $(BUILD)/bench/p4bench$$($(VPY) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
	@touch $@

bench-native: $(BENCH_NATIVE)

# ---- tests ------------------------------------------------------------------

ctest: deps
	@$(MAKE) --no-print-directory -C tests/c test

fuzz-smoke: deps
	@$(MAKE) --no-print-directory -C tests/c fuzz-smoke

fuzz: deps
	@$(MAKE) --no-print-directory -C tests/c fuzz

cross-check: deps
	@$(MAKE) --no-print-directory -C tests/c cross-check

pytest: ext bench-native
	@$(VPY) -m pytest -q -p no:cacheprovider tests

test: ext ctest fuzz-smoke cross-check pytest

# ---- demo and benchmarks ----------------------------------------------------

demo: ext
	@P4JIT_PORT=$${P4JIT_PORT:-sim} $(VPY) examples/quickstart.py

bench: ext bench-native
	@$(VPY) bench/run.py

# ---- cleaning -----------------------------------------------------------------

clean:
	rm -rf $(BUILD) $(PKG_BIN) $(PKG_DATA) p4jit/*.so
	@$(MAKE) --no-print-directory -C tests/c clean 2>/dev/null || true

distclean: clean
	rm -rf $(VENV) *.egg-info
