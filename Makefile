# vr — build, test, install.  `make` builds bin/, `make test` runs every test
# through prove, `make check` does the same with ASan+UBSan in build/san,
# `make fuzz` runs the libFuzzer entry points (tests/fuzz) with clang.
VERSION  := 0.1.0
PREFIX   ?= /usr/local
BUILD    ?= build
BIN      ?= bin
CC       ?= cc
OPT      ?= -O2
SAN      ?=
CFLAGS_BASE := -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -Wno-format-truncation -pthread -fno-strict-aliasing -ffp-contract=off \
               -D_GNU_SOURCE -Ilib -DVR_VERSION='"$(VERSION)"' $(SAN)
# Missing Debian packages are installed before anything else is computed, so
# `make test` on a fresh machine needs nothing done by hand (share/deps.sh).
ifeq ($(filter clean deps,$(MAKECMDGOALS)),)
DEPS_OK := $(shell sh share/deps.sh --check 2>/dev/null || sh share/deps.sh >&2; echo done)
endif
PKGS     := jansson libxxhash yaml-0.1 libturbojpeg spng openblas libpcre2-8 libutf8proc cairo fontconfig
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || \
                echo -ljansson -lxxhash -lyaml -lturbojpeg -lspng -lopenblas -lpcre2-8 -lutf8proc -lcairo -lfontconfig)
CFLAGS   += $(CFLAGS_BASE) $(PKG_CFLAGS)
LDLIBS   += $(PKG_LIBS) -lm -pthread $(SAN)
# MPI (lib/dist.c, DESIGN.md §8) when mpicc is there: Open MPI's flags for
# our compiler; `make MPICC=` builds the single-process version.
MPICC    ?= $(shell command -v mpicc 2>/dev/null)
ifneq ($(MPICC),)
MPI_CFLAGS := -DVR_MPI $(shell $(MPICC) --showme:compile 2>/dev/null || $(MPICC) -show 2>/dev/null | sed 's/^[^ ]* //')
MPI_LIBS   := $(shell $(MPICC) --showme:link 2>/dev/null || $(MPICC) -show 2>/dev/null | sed 's/^[^ ]* //')
LDLIBS   += $(MPI_LIBS)
endif

LIB_SRC  := $(sort $(wildcard lib/*.c lib/cpu/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CMD_SRC  := $(sort $(wildcard cmd/vr-*.c))
PROGS    := $(CMD_SRC:cmd/%.c=$(BIN)/%)
CLI_OBJ  := $(BUILD)/cmd/cli.o
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
UNITS    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%.t)
BENCH_SRC:= $(sort $(wildcard bench/*.c))
BENCHES  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
FUZZ_SRC := $(sort $(filter-out tests/fuzz/replay.c,$(wildcard tests/fuzz/*.c)))
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/%.c=%)
REPLAYS  := $(FUZZ_NAMES:%=$(BUILD)/fuzz-replay/%)
CU_SRC   := $(sort $(wildcard kernels/*.cu))
# The CUDA backend (kernels/) builds wherever nvcc is, GPU or not, for the
# A100 and H100/H200 generations, warnings as errors; its tests skip without
# a GPU. NVCC= leaves it out.
NVCC     ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
NVFLAGS  := -O2 -std=c++17 -Ilib -Ikernels -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
            -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror,-fno-strict-aliasing,-fPIC
ifneq ($(NVCC),)
ifneq ($(CU_SRC),)
CU_OBJ   := $(CU_SRC:%.cu=$(BUILD)/%.o)
CUDA_LIB ?= $(abspath $(dir $(NVCC))../lib64)
CU_LIBS  := -L$(CUDA_LIB) -Wl,-rpath,$(CUDA_LIB) -lcublasLt -lcudart_static -ldl -lrt -lstdc++
# VR_DEVICE=cuda: the seam's table on the GPU (kernels/backend.c) as a
# library the programs load on demand (lib/backend.c), beside them in $(BIN)
CUDA_SO  := $(BIN)/libvr_cuda.so
endif
endif

.PHONY: all deps test test-numbers test-arm64 units check install clean bench demo fuzz
.SECONDARY:
all: $(PROGS) $(UNITS) $(BENCHES) $(REPLAYS) $(CU_OBJ) $(CUDA_SO)

deps:
	sh share/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/%.o: %.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVFLAGS) -MMD -MP -c -o $@ $<

# tests/unit/cuda_ops.c: with nvcc, linked with the kernels (it skips at run
# time without a GPU); without, it is built to say so and skip.
ifneq ($(CU_OBJ),)
$(BUILD)/tests/unit/cuda_ops.o: CFLAGS += -DVR_CUDA -Ikernels
$(BUILD)/tests/cuda_ops.t: $(CU_OBJ) $(BUILD)/kernels/backend.o
$(BUILD)/tests/cuda_ops.t: LDLIBS += $(CU_LIBS)
endif

$(BUILD)/kernels/backend.o: CFLAGS += -fPIC -Ikernels
$(CUDA_SO): $(BUILD)/kernels/backend.o $(CU_OBJ)
	@mkdir -p $(@D)
	$(CC) -shared -o $@ $^ $(CU_LIBS) -pthread

$(BUILD)/lib/dist.o $(BUILD)/bench/dist_sum.o: CFLAGS += $(MPI_CFLAGS)

$(BUILD)/libvr.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/%: $(BUILD)/cmd/%.o $(CLI_OBJ) $(BUILD)/libvr.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%.t: $(BUILD)/tests/unit/%.o $(BUILD)/libvr.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# cli.t tests cmd/cli.c, which the programs link beside libvr.a
$(BUILD)/tests/cli.t: $(BUILD)/tests/unit/cli.o $(CLI_OBJ) $(BUILD)/libvr.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libvr.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The fuzz entry points with a plain main (tests/fuzz/replay.c), for t0990's
# replay of their seeds; VR_FUZZ_SRC finds the fixtures a harness loads.
$(BUILD)/tests/fuzz/%.o: CFLAGS += -DVR_FUZZ_SRC='"$(CURDIR)"'
$(BUILD)/fuzz-replay/%: $(BUILD)/tests/fuzz/%.o $(BUILD)/tests/fuzz/replay.o $(BUILD)/libvr.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Tests: C unit tests (TAP binaries) and shell tests (tests/t*.sh), all under prove.
test: all
	VR_BIN=$(abspath $(BIN)) VR_BUILD=$(abspath $(BUILD)) \
	  prove -j2 $(PROVE_FLAGS) --exec '' $(UNITS) $(sort $(wildcard tests/t*.sh))

# The tests that compare numbers (against transformers/PyTorch, or one run
# against another), for a second pass under another OpenBLAS kernel and ISA:
#   OPENBLAS_CORETYPE=Haswell VR_ISA=c make test-numbers
NUM_UNITS := $(addprefix $(BUILD)/tests/,qwen.t train.t train_ops.t optim.t sample.t model_load.t)
NUM_TESTS := $(addprefix tests/,t0055-same-bits.sh t0510-tokenize-golden.sh t0700-rollout.sh t0900-update-golden.sh \
               t0910-update-crash.sh t0920-update-loop.sh)
test-numbers: all
	VR_BIN=$(abspath $(BIN)) VR_BUILD=$(abspath $(BUILD)) \
	  prove -j2 $(PROVE_FLAGS) --exec '' $(NUM_UNITS) $(NUM_TESTS)

units: $(UNITS)

# arm64 (NEON): the unit tests cross-built with Debian's aarch64 compiler and
# run under qemu-user (`sh share/deps.sh --arm64` installs both and the arm64
# libraries), in build/arm64.
ARM64_CC  ?= aarch64-linux-gnu-gcc
# (one thread for OpenBLAS and for vr: their pools spin-wait, which qemu-user
# emulates so slowly that OpenBLAS never starts and cpu_ops.t takes many minutes)
ARM64_RUN ?= env OPENBLAS_NUM_THREADS=1 VR_THREADS=1 qemu-aarch64 -L /usr/aarch64-linux-gnu
test-arm64:
	PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig \
	  $(MAKE) CC=$(ARM64_CC) BUILD=build/arm64 BIN=build/arm64/bin NVCC= MPICC= units
	@echo 'test-arm64: left out (see the Makefile): $(notdir $(ARM64_SLOW))'
	prove $(PROVE_FLAGS) --exec '$(ARM64_RUN)' $(filter-out $(ARM64_SLOW),$(UNITS:$(BUILD)/%=build/arm64/%))
# tests that start threads: Debian's qemu-user 7.2 on this kind of host never
# returns from the first pthread_create (a ten-line program with one thread
# hangs too, 2026-12-07); every other test runs with VR_THREADS=1
ARM64_THREADS := $(addprefix build/arm64/tests/,encode.t pool.t)
# every unit test named from its source (a wildcard over build/arm64 would be
# read before the build and miss the tests added since the last one), less
# what runs for many minutes under emulation: fsync-heavy crash-safety tests and
# cairo drawing (no arm64 code of their own), and the training pass's float64
# finite differences (train.t, train_ops.t: run them on an arm64 machine),
# and ARM64_THREADS
ARM64_SLOW := $(addprefix build/arm64/tests/,ckpt.t publish.t draw.t train.t train_ops.t) $(ARM64_THREADS)

check:
	$(MAKE) BUILD=build/san BIN=build/san/bin OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -DVR_DEBUG_ASSERT" \
	  ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 test

# Fuzzing: each tests/fuzz/NAME.c with libFuzzer, ASan and UBSan (clang;
# the library too, in build/fuzz), run FUZZ_S seconds over its seeds by
# tests/fuzz/run.sh; the first finding fails. FUZZ=NAME... runs only those.
FUZZ_S   ?= 60
FUZZ_CC  ?= clang
FUZZ     ?= $(FUZZ_NAMES)
FUZZ_DIR := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := $(filter-out -O% -Wno-format-truncation,$(CFLAGS_BASE)) -O1 -Wno-unknown-pragmas $(FUZZ_SAN) $(PKG_CFLAGS) \
               -DVR_FUZZ_SRC='"$(CURDIR)"'
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_DIR)/%.o)

$(FUZZ_DIR)/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/libvr.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/bin/%: $(FUZZ_DIR)/tests/fuzz/%.o $(FUZZ_DIR)/libvr.a
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS) -lm -pthread

ifneq ($(filter fuzz,$(MAKECMDGOALS)),)
ifeq ($(shell command -v $(FUZZ_CC)),)
$(error make fuzz needs $(FUZZ_CC) with libFuzzer (apt-get install clang))
endif
endif
fuzz: $(FUZZ:%=$(FUZZ_DIR)/bin/%)
	sh tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_S) $(FUZZ)

bench: all
	bash bench/prep -k
	bash bench/st_open.sh -k
	bash bench/forward.sh -k
	bash bench/rollout.sh -k
	bash bench/encode -k
	bash bench/tokenize.sh -k
	bash bench/loop.sh -k
	bash bench/update.sh -k

# The demo (examples/demo/Makefile): SFT then GRPO on synthetic scenes, on a
# CPU; its table, plots and files in DEMO (default demo/). `make demo` again
# after an interruption goes on where it stopped.
DEMO ?= demo
demo: all
	$(MAKE) -f examples/demo/Makefile VR=$(abspath $(BIN)) OUT=$(DEMO)

install: $(PROGS) $(CUDA_SO)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(PROGS) $(DESTDIR)$(PREFIX)/bin
	$(if $(CUDA_SO),install -d $(DESTDIR)$(PREFIX)/lib/vr && install -m 755 $(CUDA_SO) $(DESTDIR)$(PREFIX)/lib/vr)
	install -m 644 man/man1/*.1 $(DESTDIR)$(PREFIX)/share/man/man1

clean:
	rm -rf build bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
