#!/bin/bash
# vr-update --dry-run prints the GPU memory plan (lib/memplan.c) of the run its
# flags describe, for a checkpoint folder (config.json only) or a vr-init
# preset, and touches nothing. The arithmetic itself is tests/unit/memplan.c's.
. "$(dirname "$0")/lib.sh"
vr-init --preset tiny --dtype f32 -o policy 2>/dev/null || exit 1
gib() { awk -v w="$1" 'index($0, "  " w) == 1 { print $(NF-1) }' "$2"; }

test_expect_success '3b, full parameters, checkpointed: every row, and it fits in 80 GiB' '
	vr-update --dry-run 80 -m 3b --beta 0 --checkpoint-activations --max-batch-tokens 8192 >plan &&
	grep -q "^parameters: 3.755 B, trained: 3.755 B$" plan &&
	test "$(gib weights plan)" = 6.99 && test "$(gib master plan)" = 13.99 &&
	test "$(gib gradients plan)" = 13.99 && test "$(gib AdamW plan)" = 27.97 &&
	! grep -q reference plan && grep -q "activations (checkpointed)" plan &&
	grep -q "^fits in 80.0 GiB" plan &&
	test ! -e 3b
'
test_expect_success 'a reference model with --beta; all activations saved without checkpointing' '
	vr-update --dry-run 80 -m 3b --beta 0.04 --max-batch-tokens 8192 >plan &&
	test "$(gib reference plan)" = 6.99 && grep -q "activations (all saved)" plan &&
	grep -q "^does NOT fit in 80.0 GiB" plan
'
test_expect_success 'LoRA trains r (in + out) per linear; image patches add vision activations' '
	vr-update --dry-run 24 -m 3b --beta 0 --lora-r 64 --checkpoint-activations >a &&
	vr-update --dry-run 24 -m 3b --beta 0 --lora-r 64 --checkpoint-activations --image-patches 4096 >b &&
	grep -q "trained: 0.130 B" a && ! grep -q master a && grep -q "LoRA adapters" a &&
	test "$(gib activations a)" != "$(gib activations b)" &&
	grep -q "^fits in 24.0 GiB" a
'
test_expect_success 'a checkpoint folder: its config.json, no weights read, no --out' '
	rm policy/model.safetensors &&
	vr-update --dry-run 1 -m policy >plan &&
	grep -q "^parameters: 0.010 B" plan && grep -q "^fits in 1.0 GiB" plan
'
test_expect_success 'neither a folder nor a preset; a bad size' '
	test_must_fail vr-update --dry-run 80 -m nosuch 2>err &&
	grep -q "nosuch: no such folder, and not a preset" err &&
	{ vr-update --dry-run 0 -m 3b 2>err; test $? = 2; } &&
	grep -q "dry-run" err
'
test_done
