#!/bin/bash
# Checkpoints that do not match their config, truncated files, unknown
# architectures: each gives exit 1 and one error line naming the file (and
# the tensor with its expected and actual shape). Made from a micro config
# (tests/bad/checkpoints/micro.json) so the corpus stays a few KB.
. "$(dirname "$0")/lib.sh"
MICRO=$SRC_DIR/tests/bad/checkpoints/micro.json
vr-init --config "$MICRO" --dtype f32 -o good 2>/dev/null

bad() { # name dir pattern
	test_expect_success "$1" "
		test_must_fail vr-inspect --model $2 >out 2>err &&
		test ! -s out && test \$(wc -l <err) = 1 && grep -q -- '$3' err
	"
}
test_expect_success 'the micro checkpoint loads' '
	vr-inspect --model good | jq -e ".ok and .tied and .params > 0"
'
cp -R good truncated && truncate -s -100 truncated/model.safetensors
bad 'truncated weights' truncated 'truncated/model.safetensors: tensor .visual.patch_embed.proj.weight.: data_offsets end 58176 is past the end'
cp -R good wide && jq '.hidden_size = 32 | .vision_config.out_hidden_size = 32 | .rope_scaling.mrope_section = [2, 3, 3]' "$MICRO" >wide/config.json
bad 'config wider than the weights' wide 'tensor .visual.merger.mlp.2.weight. has shape \[16, 32\], config.json implies \[32, 32\]'
cp -R good deeper && jq '.num_hidden_layers = 2' "$MICRO" >deeper/config.json
bad 'a layer missing' deeper 'tensor .model.layers.1.input_layernorm.weight. is missing (expected shape \[16\])'
cp -R good llava && jq '.model_type = "llava"' "$MICRO" >llava/config.json
bad 'unknown architecture' llava 'llava/config.json: model_type is .llava., vr runs qwen2_5_vl'
cp -R good nomt && jq 'del(.model_type)' "$MICRO" >nomt/config.json
bad 'no model_type' nomt 'model_type is missing'
cp -R good mrope && jq '.rope_scaling.mrope_section = [1, 1, 1]' "$MICRO" >mrope/config.json
bad 'mrope sections do not sum to head_dim/2' mrope 'mrope_section must sum to head_dim / 2'
cp -R good heads && jq '.num_key_value_heads = 3' "$MICRO" >heads/config.json
bad 'heads not a multiple of kv heads' heads 'multiple of num_key_value_heads'
cp -R good act && jq '.vision_config.hidden_act = "quick_gelu"' "$MICRO" >act/config.json
bad 'Qwen2-VL vision activation' act 'vision hidden_act .quick_gelu.'
cp -R good badjson && printf '{"model_type": "qwen2_5_vl",\n' >badjson/config.json
bad 'config.json not JSON' badjson 'badjson/config.json:2: invalid JSON'
mkdir noconfig && cp good/model.safetensors noconfig/
bad 'no config.json' noconfig 'noconfig/config.json: cannot read'
mkdir noweights && cp good/config.json noweights/
bad 'no weights' noweights 'noweights/model.safetensors: cannot open'
cp -R good imgid && jq '.image_token_id = 64' "$MICRO" >imgid/config.json
bad 'image token outside the vocabulary' imgid 'image_token_id is outside the vocabulary'
cp -R good eps && jq '.rms_norm_eps = -1' "$MICRO" >eps/config.json
bad 'a negative rms_norm_eps' eps 'rms_norm_eps must be a number between 0 and 1'
cp -R good theta && jq '.rope_theta = 0' "$MICRO" >theta/config.json
bad 'rope_theta 0' theta 'rope_theta must be a finite number above 1'
cp -R good layers && jq '.num_hidden_layers = 1000000000' "$MICRO" >layers/config.json
bad 'a billion layers: an error, not an abort' layers 'a size is beyond any Qwen2.5-VL'
cp -R good wrap && jq '.hidden_size = 4294967312' "$MICRO" >wrap/config.json
bad 'a size of 2^32 + 16 is not read as 16' wrap 'text sizes must be positive'
cp -R good mrope_ovf && jq '.rope_scaling.mrope_section = [2147483647, 2147483647, 2]' "$MICRO" >mrope_ovf/config.json
bad 'mrope sections whose sum overflows an int (fuzz)' mrope_ovf 'mrope_section must sum to head_dim / 2'
cp -R good mrope_wrap && jq '.rope_scaling.mrope_section = [4294967297, 1, 2]' "$MICRO" >mrope_wrap/config.json
bad 'an mrope section of 2^32 + 1 is not read as 1' mrope_wrap 'mrope_section must sum to head_dim / 2'
cp -R good patch_ovf && jq '.vision_config.patch_size = 65536 | .vision_config.spatial_merge_size = 65536' "$MICRO" >patch_ovf/config.json
bad 'patch x merge size overflowing an int (fuzz)' patch_ovf 'vision patch, merge and window sizes are inconsistent'
# a NaN in the middle of a weight: every byte of its bf16/f32 exponent set
cp -R good nan && off=$(vr-inspect nan/model.safetensors | jq -r 'select(.name == "model.norm.weight") | .offset') &&
	printf '\377\377\377\177' | dd of=nan/model.safetensors bs=1 seek=$((off + 8)) conv=notrunc 2>/dev/null
bad 'a NaN weight is refused at load, by name' nan 'tensor .model.norm.weight. holds a NaN or an infinity (element 2)'
# in a large tensor (checked in blocks over the thread pool): the first of two
# non-finite elements, in each dtype, as f32 infinity / bf16 infinity / f16 NaN
poke() { # dir tensor element bytes-per-element printf-bytes
	local off
	off=$(vr-inspect "$1/model.safetensors" | jq -r "select(.name == \"$2\") | .offset") &&
		printf "$5" | dd of="$1/model.safetensors" bs=1 seek=$((off + $3 * $4)) conv=notrunc 2>/dev/null
}
E=model.embed_tokens.weight
for spec in 'f32 4 \000\000\200\177' 'bf16 2 \200\177' 'f16 2 \001\174'; do
	set -- $spec
	vr-init --preset tiny --dtype $1 -o big$1 >/dev/null 2>&1 &&
		poke big$1 $E 9699333 $2 "$3" && poke big$1 $E 131142 $2 "$3"
	bad "$1: the first non-finite element of a 9.7M-element weight, by index" big$1 \
		"tensor .$E. holds a NaN or an infinity (element 131142)"
done
test_expect_success 'vr-rollout refuses it too, instead of sampling garbage' '
	echo "{\"id\":\"t\",\"images\":[],\"problem\":\"hi\",\"solution\":\"x\"}" >t.jsonl &&
	test_must_fail vr-rollout -m nan --max-tokens 4 t.jsonl >out 2>err && test ! -s out &&
	grep -q "holds a NaN" err
'
test_done
