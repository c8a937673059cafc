#!/bin/bash
# Writes tests/bad/lines/: one scored line (DESIGN.md §3.4: task, encoded and
# rollout fields) per file, each with one defect that its name says. Every
# stage that reads lines (vr-encode, vr-tokenize --chat, vr-rollout,
# vr-reward, vr-update, vr-eval) must refuse each with FILE:LINE (t0215).
# The files are committed; rerun this after changing it: bash make_bad_lines.sh
set -e
cd "$(dirname "$0")"
mkdir -p lines
rm -f lines/*.jsonl
GOOD='{"id":"bad/1","split":"train","task":"rec","images":["/nonexistent/a.png"],"image_sizes":[[112,112]],
"problem":"Please provide the bounding box coordinate of the region this sentence describes: the red circle.",
"solution":[10,10,50,50],"label":"the red circle",
"pixels":{"file":"/nonexistent/p.safetensors","grid_thw":[1,8,8],"input_size":[112,112],"image_size":[112,112]},
"prompt_tokens":100,"completions":[{"text":"<answer>[1,2,3,4]</answer>","tokens":[1,2,3],"logp":[-0.5,-1.0,-0.25],
"finish":"length","rewards":{"format":1,"iou":0.5},"reward":1.5,"advantage":0.7}]}'
bad() { echo "$GOOD" | jq -c "$2" >"lines/$1.jsonl"; }
bad not_an_object '[.]'
bad id_number '.id = 7'
bad images_not_list '.images = "a.png"'
bad images_entry_empty '.images = [""]'
bad problem_number '.problem = 3'
bad think_number '.think = 1'
bad completion_target_number '.completion = []'
bad image_sizes_zero '.image_sizes = [[0, 112]]'
bad image_sizes_over_2_20 '.image_sizes = [[1048577, 112]]'
bad image_sizes_two_for_one_image '.image_sizes = [[112, 112], [112, 112]]'
bad solution_5_numbers '.solution = [1, 2, 3, 4, 5]'
bad solution_object '.solution = {"x": 1}'
bad pixels_number '.pixels = 5'
bad pixels_two_for_one_image '.pixels = [.pixels, .pixels]'
bad pixels_file_empty '.pixels.file = ""'
bad grid_thw_missing 'del(.pixels.grid_thw)'
bad grid_thw_2_numbers '.pixels.grid_thw = [8, 8]'
bad grid_thw_65_frames '.pixels.grid_thw = [65, 8, 8]'
bad grid_thw_negative '.pixels.grid_thw = [1, -8, 8]'
bad grid_thw_float '.pixels.grid_thw = [1, 8.5, 8]'
bad grid_thw_odd '.pixels.grid_thw = [1, 7, 8] | .pixels.input_size = [112, 98]'
bad grid_thw_100000_square '.pixels.grid_thw = [1, 100000, 100000]'
bad grid_thw_beyond_context '.pixels.grid_thw = [1, 1000, 1000] | .pixels.input_size = [14000, 14000]'
bad input_size_not_grid '.pixels.input_size = [100, 100]'
bad image_size_zero '.pixels.image_size = [0, 112]'
bad vision_two_for_one_image '.vision = [{"file": "v", "model": "m"}, {"file": "v", "model": "m"}]'
bad vision_no_model '.vision = {"file": "v"}'
bad prompt_tokens_zero '.prompt_tokens = 0'
bad prompt_tokens_2_31 '.prompt_tokens = 2147483648'
bad completions_object '.completions = {}'
bad completion_number '.completions = [1]'
bad completion_text_number '.completions[0].text = 1'
bad token_negative '.completions[0].tokens[0] = -1'
bad token_2_31 '.completions[0].tokens[0] = 2147483648'
bad token_float '.completions[0].tokens[0] = 1.5'
bad tokens_string '.completions[0].tokens = "abc"'
bad logp_positive '.completions[0].logp[1] = 0.25'
bad logp_string '.completions[0].logp[1] = "x"'
bad logp_beyond_float '.completions[0].logp[1] = -1e39'
bad logp_shorter_than_tokens '.completions[0].logp |= .[1:]'
bad logp_without_tokens 'del(.completions[0].tokens)'
bad finish_unknown '.completions[0].finish = "stop"'
bad reward_string '.completions[0].reward = "1"'
bad advantage_null '.completions[0].advantage = null'
bad rewards_list '.completions[0].rewards = [1]'
bad rewards_term_string '.completions[0].rewards.iou = "0.5"'
printf '%s\n' "$(echo "$GOOD" | jq -c .)" | sed 's/"advantage":0.7/"advantage":1e999/' >lines/advantage_1e999.jsonl
ls lines | wc -l
