# bench/update_batch.sh, sourced by bench/update.sh and bench/update_mpi.sh:
# the small preset's policy and reference checkpoints and one scored batch in
# $out (PROMPTS vr-synth scenes x G completions of NEW tokens from
# vr-rollout, advantages from a fixed list since a random model scores 0,
# vision special tokens that a random model sampled made plain ones, which
# transformers would take for image slots). Made once; kept in bench/out.
#   update_batch OUT PROMPTS G NEW BATCH
update_batch() {
	local out=$1 prompts=$2 G=$3 new=$4 batch=$5 m
	local TOK=../shared/tokenizers/qwen2.5/tokenizer.json
	mkdir -p "$out"
	for m in policy:1 ref:2; do
		[ -f "$out/${m%:*}/config.json" ] ||
			bin/vr-init --preset small --dtype f32 --tokenizer $TOK --seed ${m#*:} -o "$out/${m%:*}" >/dev/null 2>&1
	done
	[ -s "$batch" ] && return 0
	rm -rf "$out/synth"
	bin/vr-synth --out "$out/synth" --seed 1 -n "$prompts" --splits train >/dev/null
	bin/vr-prep "$out/synth/train.json" | bin/vr-encode --cache "$out/cache" |
		bin/vr-rollout -m "$out/policy" -G "$G" --max-tokens "$new" --seed 1 |
		bin/vr-reward --reward format,iou 2>/dev/null >"$out/raw.jsonl"
	jq -c -s --argjson v "$(jq -c '[.vision_start_token_id,.vision_end_token_id,.vision_token_id,.image_token_id,.video_token_id]' "$out/policy/config.json")" \
		--argjson adv '[1.2,-0.4,0.7,-1.5,-0.9,0.3,1.1,-0.5]' '
		to_entries[] | .key as $i | .value | del(.degenerate) |
		.completions |= [to_entries[] | .key as $k | .value | .advantage = $adv[($i * 7 + $k) % 8] |
			.tokens |= map(if (. as $t | $v | index($t)) then 100 + . % 26 else . end)]' "$out/raw.jsonl" >"$batch.tmp"
	mv "$batch.tmp" "$batch"
}
